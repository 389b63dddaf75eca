package zkpedersen

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

var session = []byte("zkpedersen test session")

func TestPedersenOpening(t *testing.T) {
	sigma, _ := rand.Int(rand.Reader, secp.Q)
	l, _ := rand.Int(rand.Reader, secp.Q)
	h, _ := secp.HashToPoint([]byte("zkpedersen test h"))
	T := secp.BaseMult(sigma).Add(h.Mul(l))
	pf, err := Prove(session, h, T, sigma, l, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire.Writer{}
	pf.Encode(w)
	rd := wire.NewReader(w.Bytes())
	back := Decode(rd)
	if err := rd.Done(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(session, back, h, T); err != nil {
		t.Fatal(err)
	}
	g := secp.Generator()
	one := big.NewInt(1)
	wrong, _ := Prove(session, h, T, new(big.Int).Add(sigma, one), l, rand.Reader)
	cases := []struct {
		name    string
		session []byte
		pf      *Proof
		h, T    *secp.Point
		want    error
	}{
		{"other session", []byte("x"), pf, h, T, ErrInvalid},
		{"other T", session, pf, h, T.Add(g), ErrInvalid},
		{"other h", session, pf, g, T, ErrInvalid},
		{"wrong opening", session, wrong, h, T, ErrInvalid},
		{"tampered A", session, &Proof{A: pf.A.Add(g), Z1: pf.Z1, Z2: pf.Z2}, h, T, ErrInvalid},
		{"tampered z1", session, &Proof{A: pf.A, Z1: new(big.Int).Add(pf.Z1, one), Z2: pf.Z2}, h, T, ErrInvalid},
		{"tampered z2", session, &Proof{A: pf.A, Z1: pf.Z1, Z2: new(big.Int).Add(pf.Z2, one)}, h, T, ErrInvalid},
		{"z2 out of range", session, &Proof{A: pf.A, Z1: pf.Z1, Z2: new(big.Int).Neg(one)}, h, T, ErrMalformed},
		{"T identity", session, pf, h, secp.Identity(), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.session, tc.pf, tc.h, tc.T); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
