package rawtss_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

func TestKeygenAndSign2of3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pre := make([]keygen.LocalPreParams, 3)
	for i := range pre {
		pp, err := fixtures.PreParams(i)
		if err != nil {
			t.Fatal(err)
		}
		pre[i] = *pp
	}
	keys, err := rawtss.Keygen(ctx, pre, 1)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("raw"))
	m := new(big.Int).SetBytes(digest[:])
	sigs, err := rawtss.Sign(ctx, keys, 1, []int{0, 2}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &ecdsa.PublicKey{Curve: tss.S256(), X: keys[0].ECDSAPub.X(), Y: keys[0].ECDSAPub.Y()}
	for _, s := range sigs {
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(s.R), new(big.Int).SetBytes(s.S)) {
			t.Fatal("signature does not verify")
		}
	}
	if _, err := rawtss.Sign(ctx, keys, 1, []int{0}, m, nil); err == nil {
		t.Fatal("one signer signed for a 2-of-3 key")
	}
}
