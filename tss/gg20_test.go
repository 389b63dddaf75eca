package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

func TestGG20_PresignAndSignOnline_2of3(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	firstDone := false
	for _, signers := range subsets(c.IDs(), 2) {
		initiator := c.Party(signers[0])
		start := time.Now()
		res, err := initiator.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 3})
		if err != nil {
			t.Fatalf("presign with %v: %v", signers, err)
		}
		t.Logf("3 presignatures for %v in %s", signers, time.Since(start))
		if res.Made != 3 {
			t.Fatalf("made %d presignatures, want 3", res.Made)
		}
		// One signature, then a batch of two, initiated by the other signer.
		// The first online signature of an engine is checked the plain way
		// (no verifier table yet); the batch after PrepareOnline with the
		// table.
		first := c.Party(signers[1]).Engine
		if !firstDone && tss.HasVerifier(first, info.PublicKey) {
			t.Fatal("a verifier table exists before any online signing")
		}
		firstDone = true
		d0 := sha256.Sum256([]byte("online 0"))
		sig, err := first.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d0[:]}})
		if err != nil {
			t.Fatalf("online sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d0[:], sig)
		// That signature had the table built in the background.
		for !tss.HasVerifier(first, info.PublicKey) {
			select {
			case <-ctx.Done():
				t.Fatal("no verifier table built after an online signature")
			case <-time.After(20 * time.Millisecond):
			}
		}
		var batch [][]byte
		for i := 1; i <= 2; i++ {
			d := sha256.Sum256([]byte(fmt.Sprintf("online %d", i)))
			batch = append(batch, d[:])
		}
		if err := initiator.Engine.PrepareOnline(ctx, info.ID, ""); err != nil {
			t.Fatal(err)
		}
		if !tss.HasVerifier(initiator.Engine, info.PublicKey) {
			t.Fatal("PrepareOnline left no verifier table")
		}
		sigs, err := initiator.Engine.SignBatch(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: batch})
		if err != nil {
			t.Fatalf("batch with %v: %v", signers, err)
		}
		for i, s := range sigs {
			verifyBoth(t, info.PublicKey, batch[i], s)
		}
		// The pool is empty now.
		_, err = initiator.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d0[:]}})
		if !errors.Is(err, tss.ErrNoPresignature) {
			t.Fatalf("signing from an empty pool: got %v, want ErrNoPresignature", err)
		}
	}
	// GG18 and GG20 signatures verify under the same key.
	d := sha256.Sum256([]byte("gg18"))
	sig, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d[:]})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
}

func TestGG20_3of5_AllSubsets(t *testing.T) {
	if testing.Short() {
		t.Skip("3-of-5 over every subset is slow")
	}
	c := newCluster(t, 5, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, signers := range subsets(c.IDs(), 3) {
		if _, err := c.Party(signers[0]).Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
			t.Fatalf("presign with %v: %v", signers, err)
		}
		d := sha256.Sum256([]byte(fmt.Sprintf("3-of-5 subset %d", i)))
		sig, err := c.Party(signers[2]).Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
		if err != nil {
			t.Fatalf("online sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d[:], sig)
		// The same subset signs with GG18 under the same key.
		d18 := sha256.Sum256([]byte(fmt.Sprintf("3-of-5 gg18 %d", i)))
		sig18, err := c.Party(signers[1]).Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d18[:], Signers: signers})
		if err != nil {
			t.Fatalf("gg18 sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d18[:], sig18)
	}
}
