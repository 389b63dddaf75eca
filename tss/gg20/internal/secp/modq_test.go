package secp

import (
	"bytes"
	"math/big"
	"testing"
)

// TestModQ_MatchesBigInt checks ModQ's arithmetic against math/big on the
// scalars of ctScalars, pairwise.
func TestModQ_MatchesBigInt(t *testing.T) {
	scalars := ctScalars(t)
	mod := func(x *big.Int) *big.Int { return x.Mod(x, Q) }
	for _, a := range scalars {
		if got, want := NewModQ(a).Int(), mod(new(big.Int).Set(a)); got.Cmp(want) != 0 {
			t.Fatalf("NewModQ(%x) = %x, want %x", a, got, want)
		}
		for _, b := range scalars {
			cases := []struct {
				name      string
				got, want *big.Int
			}{
				{"add", NewModQ(a).Add(NewModQ(b)).Int(), mod(new(big.Int).Add(a, b))},
				{"sub", NewModQ(a).Sub(NewModQ(b)).Int(), mod(new(big.Int).Sub(a, b))},
				{"mul", NewModQ(a).Mul(NewModQ(b)).Int(), mod(new(big.Int).Mul(a, b))},
			}
			for _, c := range cases {
				if c.got.Cmp(c.want) != 0 {
					t.Fatalf("%s(%x, %x) = %x, want %x", c.name, a, b, c.got, c.want)
				}
			}
		}
	}
	z := NewModQ(big.NewInt(7))
	z.Wipe()
	if !z.IsZero() || new(ModQ).Int().Sign() != 0 {
		t.Fatal("Wipe or the zero value is not 0")
	}
}

func TestModQFromBytes_RejectsOutOfRange(t *testing.T) {
	qm1 := new(big.Int).Sub(Q, big.NewInt(1)).FillBytes(make([]byte, 32))
	if z, ok := ModQFromBytes(qm1); !ok || z.Int().Cmp(new(big.Int).SetBytes(qm1)) != 0 {
		t.Fatal("q−1 rejected or changed")
	}
	for name, b := range map[string][]byte{
		"q":        Q.FillBytes(make([]byte, 32)),
		"2^256−1":  bytes.Repeat([]byte{0xff}, 32),
		"31 bytes": make([]byte, 31),
		"33 bytes": make([]byte, 33),
	} {
		if _, ok := ModQFromBytes(b); ok {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestMulAdd_MatchesBigInt(t *testing.T) {
	scalars := ctScalars(t)
	for i, e := range scalars {
		x, a := scalars[(i+5)%len(scalars)], scalars[(i+11)%len(scalars)]
		want := new(big.Int).Mul(e, x)
		want.Add(want, a).Mod(want, Q)
		if got := MulAdd(e, x, a); got.Cmp(want) != 0 {
			t.Fatalf("MulAdd(%x, %x, %x) = %x, want %x", e, x, a, got, want)
		}
	}
}
