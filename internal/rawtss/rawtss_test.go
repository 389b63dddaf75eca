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

func TestReshare2of3(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen and resharing take tens of seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pre := make([]keygen.LocalPreParams, 6)
	for i := range pre {
		pp, err := fixtures.PreParams(i)
		if err != nil {
			t.Fatal(err)
		}
		pre[i] = *pp
	}
	old, err := rawtss.Keygen(ctx, pre[:3], 1)
	if err != nil {
		t.Fatal(err)
	}
	pub := &ecdsa.PublicKey{Curve: tss.S256(), X: old[0].ECDSAPub.X(), Y: old[0].ECDSAPub.Y()}
	fresh, err := rawtss.Reshare(ctx, old, 1, pre[3:], 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 3 {
		t.Fatalf("%d new shares, want 3", len(fresh))
	}
	for i, k := range fresh {
		if k.ECDSAPub.X().Cmp(pub.X) != 0 || k.ECDSAPub.Y().Cmp(pub.Y) != 0 {
			t.Fatalf("new share %d is for another public key", i)
		}
		if i > 0 && fresh[i-1].ShareID.Cmp(k.ShareID) >= 0 {
			t.Fatal("new shares are not in party order")
		}
	}
	// Any two new shares interpolate to the old private key: x·G = pub.
	n := tss.S256().Params().N
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		x := new(big.Int)
		for _, i := range pair {
			j := pair[0] + pair[1] - i
			ki, kj := fresh[i].ShareID, fresh[j].ShareID
			lambda := new(big.Int).Sub(kj, ki)
			lambda.ModInverse(lambda.Mod(lambda, n), n).Mul(lambda, kj)
			x.Add(x, lambda.Mul(lambda, fresh[i].Xi)).Mod(x, n)
		}
		px, py := tss.S256().ScalarBaseMult(x.Bytes())
		if px.Cmp(pub.X) != 0 || py.Cmp(pub.Y) != 0 {
			t.Fatalf("new shares %v do not interpolate to the key", pair)
		}
	}
}
