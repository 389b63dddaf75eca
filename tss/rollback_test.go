package tss_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// replayOnline speaks for a stopped party on the wire: it sends a copy of a
// recorded online-signing proposal with the digest replaced and a fresh
// nonce (a new session for the same presignature), and returns the answer
// of the proposal's other signer.
func replayOnline(t *testing.T, ctx context.Context, as *testParty, recorded *tss.Message, digest [32]byte) *tss.Message {
	t.Helper()
	var prop tss.Proposal
	if err := json.Unmarshal(recorded.Payload, &prop); err != nil {
		t.Fatal(err)
	}
	if len(prop.Payload) != 4+64 {
		t.Fatalf("recorded proposal signs %d bytes of payload, want one presignature", len(prop.Payload))
	}
	copy(prop.Payload[4+32:], digest[:])
	prop.Nonce[0] ^= 0xff
	return proposeRaw(t, ctx, as, recorded.To, &prop)
}

// TestGG20_RestoredStoreCannotReleaseASecondShare is the restore attack: a
// co-signer keeps its copy of a presignature, the honest site's store is
// restored from a backup taken before the presignature was used, and the
// co-signer asks for a share over a second digest with the same
// presignature. Two shares for one R give the nonce k and then the key. The
// honest site's HSM ledger still marks the presignature used: it refuses,
// naming it.
func TestGG20_RestoredStoreCannotReleaseASecondShare(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
		t.Fatal(err)
	}
	backup := b.CopyStore(t)

	var (
		mu       sync.Mutex
		proposal *tss.Message
	)
	a.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgPropose {
			mu.Lock()
			cp := *m
			cp.Payload = append([]byte(nil), m.Payload...)
			proposal = &cp
			mu.Unlock()
		}
		return []*tss.Message{m}
	})
	d1 := sha256.Sum256([]byte("withdrawal 1"))
	sig1, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d1[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d1[:], sig1)
	a.Tamper(nil)

	b = c.RestoreStore(1, backup, nil)
	if st := poolIDs(t, b, ctx, spec); st.Ready != 0 {
		t.Fatalf("after the restore b counts %d ready presignatures; the used one must stay used", st.Ready)
	}
	// A batch in the format from before ledgers cannot show whether it was
	// used: it is discarded when found.
	old := tss.PoolKey(spec, info.Epoch) + ".00112233445566778899aabbccddeeff"
	v1 := append([]byte("KQPB\x01"), 0, 0, 0, 0)
	if err := b.Store.Put(ctx, "presig", old, 1, v1); err != nil {
		t.Fatal(err)
	}
	b = c.Restart(1, nil)
	if st := poolIDs(t, b, ctx, spec); st.Ready != 0 {
		t.Fatalf("b counts %d ready presignatures with an old-format batch in its store", st.Ready)
	}
	if recs, _ := b.Store.List(ctx, "presig"); slices.Contains(recs, old) {
		t.Fatalf("the old-format batch %s was not discarded: %v", old, recs)
	}

	a.Stop()
	mu.Lock()
	recorded := proposal
	mu.Unlock()
	d2 := sha256.Sum256([]byte("withdrawal 2"))
	answer := replayOnline(t, ctx, a, recorded, d2)
	if answer.Type != tss.MsgRefuse {
		t.Fatalf("b answered the second use of a presignature with %s (%d bytes), want a refusal", answer.Type, len(answer.Payload))
	}
	reason := string(answer.Payload)
	if !strings.HasPrefix(reason, "presignature_used\n") {
		t.Fatalf("refusal %q does not say the presignature was used", reason)
	}
	var prop tss.Proposal
	if err := json.Unmarshal(recorded.Payload, &prop); err != nil {
		t.Fatal(err)
	}
	id := prop.Payload[4 : 4+8]
	if !strings.Contains(reason, hex.EncodeToString(id)) {
		t.Fatalf("refusal %q does not name presignature %x", reason, id)
	}
}

// TestGG20_RestoredStoresReconcileBringsNothingBack restores both signers'
// stores to before a signature: neither may use the presignature again, and
// reconciliation, which only ever removes, agrees on an empty pool.
func TestGG20_RestoredStoresReconcileBringsNothingBack(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	backupA, backupB := a.CopyStore(t), b.CopyStore(t)
	d1 := sha256.Sum256([]byte("before the restore"))
	sig1, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d1[:]}})
	if err != nil {
		t.Fatal(err)
	}
	a = c.RestoreStore(0, backupA, nil)
	b = c.RestoreStore(1, backupB, nil)
	for _, p := range []*testParty{a, b} {
		if st := poolIDs(t, p, ctx, spec); st.Ready != 1 {
			t.Fatalf("after the restore %s counts %d ready presignatures, want 1", p.ID, st.Ready)
		}
	}
	if n, err := a.Engine.Reconcile(ctx, spec); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v", n, err)
	}
	d2 := sha256.Sum256([]byte("after the restore"))
	sig2, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d2[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d2[:], sig2)
	if sig1.R == sig2.R {
		t.Fatal("two signatures share R")
	}
	_, err = a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d2[:]}})
	if !errors.Is(err, tss.ErrNoPresignature) {
		t.Fatalf("third signature: got %v, want ErrNoPresignature", err)
	}
}

// TestGG20_ReshareCommitDeletesOldPresignatures: presignatures are made
// with one epoch's shares; once a reshare commits, the old shares are gone
// and so must be every presignature made with them, records and ledgers,
// on every party.
func TestGG20_ReshareCommitDeletesOldPresignatures(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a, b := c.Parties[0], c.Parties[1]
	info, err := a.Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Engine.Reshare(ctx, tss.ReshareRequest{KeyID: info.ID, NewParties: c.IDs(), NewThreshold: 2}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testParty{a, b} {
		if recs, err := p.Store.List(ctx, "presig"); err != nil || len(recs) != 0 {
			t.Fatalf("%s still stores presignature batches %v (%v) after the reshare", p.ID, recs, err)
		}
		if names, err := p.Store.Ledgers(ctx); err != nil || len(names) != 0 {
			t.Fatalf("%s still has ledgers %v (%v) after the reshare", p.ID, names, err)
		}
	}
	d := sha256.Sum256([]byte("after the reshare"))
	_, err = a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if !errors.Is(err, tss.ErrNoPresignature) {
		t.Fatalf("signing with the old epoch's pool: got %v, want ErrNoPresignature", err)
	}
	// The new epoch presigns and signs.
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
		t.Fatal(err)
	}
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
}
