package tss_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"github.com/keyquorum/keyquorum/tss"
	"math/big"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

func TestKeygenAndSign_2of3(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.feedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	info, err := c.parties[0].eng.Keygen(ctx, tss.KeygenRequest{Parties: c.ids(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen took %s, key %s", time.Since(start), info.ID)
	for _, p := range c.parties {
		got, err := p.eng.Key(ctx, info.ID)
		if err != nil {
			t.Fatalf("%s: %v", p.id, err)
		}
		if string(got.PublicKey) != string(info.PublicKey) {
			t.Fatalf("%s has another public key", p.id)
		}
	}
	digest := sha256.Sum256([]byte("withdraw 1 BTC"))
	for _, signers := range [][]tss.PartyID{{"party-a", "party-b"}, {"party-a", "party-c"}, {"party-b", "party-c"}} {
		start = time.Now()
		var initiator *testParty
		for _, p := range c.parties {
			if p.id == signers[1] {
				initiator = p
			}
		}
		sig, err := initiator.eng.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers})
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
