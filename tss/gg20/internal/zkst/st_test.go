package zkst

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

var session = []byte("zkst test session")

func fixture(t *testing.T) (*Statement, *big.Int, *big.Int) {
	t.Helper()
	sigma, _ := rand.Int(rand.Reader, secp.Q)
	l, _ := rand.Int(rand.Reader, secp.Q)
	h, _ := secp.HashToPoint([]byte("zkst test h"))
	R := secp.BaseMult(big.NewInt(424242))
	return &Statement{R: R, H: h, S: R.Mul(sigma), T: secp.BaseMult(sigma).Add(h.Mul(l))}, sigma, l
}

func TestST_ProveVerifyAndEncoding(t *testing.T) {
	st, sigma, l := fixture(t)
	pf, err := Prove(session, st, sigma, l, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire.Writer{}
	pf.Encode(w)
	r := wire.NewReader(w.Bytes())
	back := Decode(r)
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(session, back, st); err != nil {
		t.Fatal(err)
	}
}

func TestST_RejectsProofForOtherValues(t *testing.T) {
	st, sigma, l := fixture(t)
	pf, _ := Prove(session, st, sigma, l, rand.Reader)
	one := big.NewInt(1)
	g := secp.Generator()
	// S and T with different σ: a prover that knows both openings still fails.
	sigma2 := new(big.Int).Add(sigma, one)
	bad := &Statement{R: st.R, H: st.H, S: st.R.Mul(sigma2), T: st.T}
	badPf, _ := Prove(session, bad, sigma2, l, rand.Reader)
	cases := []struct {
		name    string
		session []byte
		pf      *Proof
		st      *Statement
		want    error
	}{
		{"other session", []byte("x"), pf, st, ErrInvalid},
		{"other S", session, pf, &Statement{R: st.R, H: st.H, S: st.S.Add(g), T: st.T}, ErrInvalid},
		{"other T", session, pf, &Statement{R: st.R, H: st.H, S: st.S, T: st.T.Add(g)}, ErrInvalid},
		{"other R", session, pf, &Statement{R: st.R.Add(g), H: st.H, S: st.S, T: st.T}, ErrInvalid},
		{"other h", session, pf, &Statement{R: st.R, H: g, S: st.S, T: st.T}, ErrInvalid},
		{"S and T with different sigma", session, badPf, bad, ErrInvalid},
		{"tampered A1", session, &Proof{A1: pf.A1.Add(g), A2: pf.A2, Z1: pf.Z1, Z2: pf.Z2}, st, ErrInvalid},
		{"tampered A2", session, &Proof{A1: pf.A1, A2: pf.A2.Add(g), Z1: pf.Z1, Z2: pf.Z2}, st, ErrInvalid},
		{"tampered z1", session, &Proof{A1: pf.A1, A2: pf.A2, Z1: new(big.Int).Add(pf.Z1, one), Z2: pf.Z2}, st, ErrInvalid},
		{"tampered z2", session, &Proof{A1: pf.A1, A2: pf.A2, Z1: pf.Z1, Z2: new(big.Int).Add(pf.Z2, one)}, st, ErrInvalid},
		{"z1 = q", session, &Proof{A1: pf.A1, A2: pf.A2, Z1: new(big.Int).Set(secp.Q), Z2: pf.Z2}, st, ErrMalformed},
		{"A1 identity", session, &Proof{A1: secp.Identity(), A2: pf.A2, Z1: pf.Z1, Z2: pf.Z2}, st, ErrMalformed},
		{"S identity", session, pf, &Statement{R: st.R, H: st.H, S: secp.Identity(), T: st.T}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.session, tc.pf, tc.st); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
