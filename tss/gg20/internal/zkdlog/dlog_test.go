package zkdlog

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

var session = []byte("zkdlog test session")

func TestDlog(t *testing.T) {
	x, _ := rand.Int(rand.Reader, secp.Q)
	X := secp.BaseMult(x)
	pf, err := Prove(session, X, x, rand.Reader)
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
	if err := Verify(session, back, X); err != nil {
		t.Fatal(err)
	}
	g := secp.Generator()
	one := big.NewInt(1)
	wrong, _ := Prove(session, X, new(big.Int).Add(x, one), rand.Reader)
	cases := []struct {
		name    string
		session []byte
		pf      *Proof
		X       *secp.Point
		want    error
	}{
		{"other session", []byte("x"), pf, X, ErrInvalid},
		{"other X", session, pf, X.Add(g), ErrInvalid},
		{"wrong witness", session, wrong, X, ErrInvalid},
		{"tampered A", session, &Proof{A: pf.A.Add(g), Z: pf.Z}, X, ErrInvalid},
		{"tampered z", session, &Proof{A: pf.A, Z: new(big.Int).Add(pf.Z, one)}, X, ErrInvalid},
		{"z = q", session, &Proof{A: pf.A, Z: new(big.Int).Set(secp.Q)}, X, ErrMalformed},
		{"A identity", session, &Proof{A: secp.Identity(), Z: pf.Z}, X, ErrMalformed},
		{"X identity", session, pf, secp.Identity(), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.session, tc.pf, tc.X); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
