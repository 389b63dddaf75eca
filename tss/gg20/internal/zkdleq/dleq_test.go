package zkdleq

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

var session = []byte("zkdleq test session")

func TestDLEQ(t *testing.T) {
	x, _ := rand.Int(rand.Reader, secp.Q)
	R := secp.BaseMult(big.NewInt(777))
	X, Y := secp.BaseMult(x), R.Mul(x)
	pf, err := Prove(session, R, X, Y, x, rand.Reader)
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
	if err := Verify(session, back, R, X, Y); err != nil {
		t.Fatal(err)
	}
	g := secp.Generator()
	one := big.NewInt(1)
	x2 := new(big.Int).Add(x, one)
	falsePf, _ := Prove(session, R, X, R.Mul(x2), x, rand.Reader) // Y for another x
	cases := []struct {
		name    string
		session []byte
		pf      *Proof
		R, X, Y *secp.Point
		want    error
	}{
		{"other session", []byte("x"), pf, R, X, Y, ErrInvalid},
		{"other X", session, pf, R, X.Add(g), Y, ErrInvalid},
		{"other Y", session, pf, R, X, Y.Add(g), ErrInvalid},
		{"other R", session, pf, R.Add(g), X, Y, ErrInvalid},
		{"unequal logarithms", session, falsePf, R, X, R.Mul(x2), ErrInvalid},
		{"tampered A1", session, &Proof{A1: pf.A1.Add(g), A2: pf.A2, Z: pf.Z}, R, X, Y, ErrInvalid},
		{"tampered A2", session, &Proof{A1: pf.A1, A2: pf.A2.Add(g), Z: pf.Z}, R, X, Y, ErrInvalid},
		{"tampered z", session, &Proof{A1: pf.A1, A2: pf.A2, Z: new(big.Int).Add(pf.Z, one)}, R, X, Y, ErrInvalid},
		{"z out of range", session, &Proof{A1: pf.A1, A2: pf.A2, Z: new(big.Int).Add(pf.Z, secp.Q)}, R, X, Y, ErrMalformed},
		{"Y identity", session, pf, R, X, secp.Identity(), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.session, tc.pf, tc.R, tc.X, tc.Y); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
