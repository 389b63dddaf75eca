package mtacheck

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/fixtures"
)

func TestIsCiphertext(t *testing.T) {
	n := big.NewInt(15)
	nn := big.NewInt(225)
	for _, tc := range []struct {
		c    int64
		want bool
	}{{0, false}, {1, true}, {3, false}, {5, false}, {224, true}, {225, false}, {226, false}, {-1, false}} {
		if got := IsCiphertext(big.NewInt(tc.c), n, nn); got != tc.want {
			t.Errorf("IsCiphertext(%d) = %v, want %v", tc.c, got, tc.want)
		}
	}
	if IsCiphertext(nil, n, nn) {
		t.Error("nil is a ciphertext")
	}
}

// TestPlaintext_NegativeMask is the attack the plaintext bound stops: Bob
// answers Alice's Enc(a) with Enc(a·b − mask) for a mask above a·b, which
// is Enc(N − (mask − a·b)), and a proof for y = −mask. tss-lib v2.0.2's
// AliceEnd accepts the proof and hands back the wrapped plaintext reduced
// mod q, which differs from a·b − mask mod q depending on a: Bob learns
// about Alice's secret from whether the signature verifies. The bound
// refuses the plaintext; an honest one passes.
func TestPlaintext_NegativeMask(t *testing.T) {
	pp, err := fixtures.PreParams(0)
	if err != nil {
		t.Fatal(err)
	}
	sk := pp.PaillierSK
	pk := &sk.PublicKey
	ec := tss.S256()
	session := []byte("negative mask")
	a := big.NewInt(0xC0FFEE)
	b, _ := new(big.Int).SetString("d1ce0ff1ce0fbadc0ffee0ddf00d1235", 16)
	cA, err := pk.Encrypt(rand.Reader, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		y       *big.Int // Bob's additive mask β'
		refused bool
	}{
		{"β' = −(a+1)·b", new(big.Int).Neg(new(big.Int).Mul(new(big.Int).Add(a, big.NewInt(1)), b)), true},
		{"honest β' = q⁵ − 1", new(big.Int).Sub(new(big.Int).Exp(Q, big.NewInt(5), nil), big.NewInt(1)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.y
			cY, r, err := pk.EncryptAndReturnRandomness(rand.Reader, new(big.Int).Mod(y, pk.N))
			if err != nil {
				t.Fatal(err)
			}
			cB, err := pk.HomoMult(b, cA)
			if err != nil {
				t.Fatal(err)
			}
			if cB, err = pk.HomoAdd(cB, cY); err != nil {
				t.Fatal(err)
			}
			pf, err := mta.ProveBob(session, ec, pk, pp.NTildei, pp.H1i, pp.H2i, cA, cB, b, y, r, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mta.AliceEnd(session, ec, pk, pf, pp.H1i, pp.H2i, cA, cB, pp.NTildei, sk); err != nil {
				t.Fatalf("tss-lib refuses the proof (%v); the attack is not reproduced", err)
			}
			if err := BobProof(pf, Moduli{N: pk.N, NN: pk.NSquare(), NTilde: pp.NTildei}); err != nil {
				t.Fatalf("the proof's values are out of range (%v); only the plaintext bound should catch this", err)
			}
			alpha, err := sk.Decrypt(cB)
			if err != nil {
				t.Fatal(err)
			}
			err = Plaintext(alpha)
			if tc.refused != errors.Is(err, ErrRange) {
				t.Fatalf("Plaintext: got %v, want refused = %v", err, tc.refused)
			}
		})
	}
}
