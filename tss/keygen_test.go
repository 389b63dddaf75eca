package tss_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"github.com/keyquorum/keyquorum/tss"
	"math/big"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

func TestKeygenAndSign_2of3(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen took %s, key %s", time.Since(start), info.ID)
	for _, p := range c.Parties {
		got, err := p.Engine.Key(ctx, info.ID)
		if err != nil {
			t.Fatalf("%s: %v", p.ID, err)
		}
		if string(got.PublicKey) != string(info.PublicKey) {
			t.Fatalf("%s has another public key", p.ID)
		}
		// The stored share says when it was made.
		if got.Created.IsZero() || got.Created.Before(start.Add(-time.Second)) || time.Since(got.Created) > time.Hour {
			t.Fatalf("%s: key created %v, want the time of this keygen (%v)", p.ID, got.Created, start)
		}
	}
	digest := sha256.Sum256([]byte("withdraw 1 BTC"))
	a, b, cc := c.Parties[0].ID, c.Parties[1].ID, c.Parties[2].ID
	for _, signers := range [][]tss.PartyID{{a, b}, {a, cc}, {b, cc}} {
		start = time.Now()
		var initiator *testParty
		for _, p := range c.Parties {
			if p.ID == signers[1] {
				initiator = p
			}
		}
		sig, err := initiator.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers})
		if err != nil {
			t.Fatalf("sign with %v: %v", signers, err)
		}
		t.Logf("sign with %v took %s", signers, time.Since(start))
		verifyBoth(t, info.PublicKey, digest[:], sig)
	}
}

// verifyBoth checks a signature with Go's crypto/ecdsa (generic curve
// arithmetic) and with decred's secp256k1.
func verifyBoth(t *testing.T, pubBytes, digest []byte, sig *tss.Signature) {
	t.Helper()
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		t.Fatal(err)
	}
	var r, s secp256k1.ModNScalar
	r.SetByteSlice(sig.R[:])
	s.SetByteSlice(sig.S[:])
	if !secpecdsa.NewSignature(&r, &s).Verify(digest, pub) {
		t.Fatal("secp256k1 rejects the signature")
	}
	goPub := &ecdsa.PublicKey{Curve: secp256k1.S256(), X: pub.X(), Y: pub.Y()}
	if !ecdsa.Verify(goPub, digest, new(big.Int).SetBytes(sig.R[:]), new(big.Int).SetBytes(sig.S[:])) {
		t.Fatal("crypto/ecdsa rejects the signature")
	}
}

func TestReshare_2of3To3of5(t *testing.T) {
	c := newCluster(t, 5, nil)
	c.FeedPreParams(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old := c.IDs()[:3]
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: old, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	newInfo, err := c.Parties[0].Engine.Reshare(ctx, tss.ReshareRequest{KeyID: info.ID, NewParties: c.IDs(), NewThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reshare took %s", time.Since(start))
	if string(newInfo.PublicKey) != string(info.PublicKey) || newInfo.Threshold != 3 || len(newInfo.Parties) != 5 || newInfo.Epoch != 2 ||
		newInfo.Created.IsZero() || newInfo.Created.Before(info.Created) {
		t.Fatalf("unexpected key after reshare: %+v", newInfo)
	}
	digest := sha256.Sum256([]byte("after reshare"))
	sig, err := c.Parties[4].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()[2:]})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, digest[:], sig)
	// The old 2-of-3 shares are gone: two old signers no longer suffice.
	if _, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()[:2]}); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("two signers after a 3-of-5 reshare: got %v, want ErrBadRequest", err)
	}
	for _, p := range c.Parties {
		vs, err := p.Store.Versions(ctx, "share", info.ID)
		if err != nil || len(vs) != 1 || vs[0] != 2 {
			t.Fatalf("%s share versions %v, %v; want only epoch 2", p.ID, vs, err)
		}
		if ids, _ := p.Store.List(ctx, "share.pending"); len(ids) != 0 {
			t.Fatalf("%s still has pending shares %v", p.ID, ids)
		}
	}
}
