package tss_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/keyquorum/keyquorum/tss"
)

// TestGG20_DrainedPresignaturesNeverSign: a drained pool is empty on the
// party that drained it, stays empty after a restart that reads the store
// again (each presignature was marked used in the HSM ledger, not only
// forgotten), cannot sign, and the initiator's reconciliation then
// empties the co-signer's copy too. A co-signer that drains its copy of
// another initiator's pool changes nothing on the initiator.
func TestGG20_DrainedPresignaturesNeverSign(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	for _, p := range []*testParty{a, b} {
		if _, err := p.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 3}); err != nil {
			t.Fatal(err)
		}
	}
	aPool := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	bPool := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: b.ID}

	n, err := a.Engine.Drain(ctx, tss.PoolSpec{KeyID: info.ID, Signers: signers})
	if err != nil || n != 3 {
		t.Fatalf("a drains its pool: %d, %v; want 3 discarded", n, err)
	}
	if st := poolIDs(t, a, ctx, aPool); st.Ready != 0 || st.Discarded != 3 || st.Used != 0 {
		t.Fatalf("a's pool after the drain: %+v; want none ready, 3 discarded", st)
	}
	if st := poolIDs(t, b, ctx, bPool); st.Ready != 3 {
		t.Fatalf("b's own pool after a drained a's: %+v; want its 3 untouched", st)
	}
	a = c.Restart(0, nil)
	if st := poolIDs(t, a, ctx, aPool); st.Ready != 0 {
		t.Fatalf("a's pool after a restart: %+v; a drained presignature came back", st)
	}
	d := sha256.Sum256([]byte("after the drain"))
	if _, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}}); !errors.Is(err, tss.ErrNoPresignature) {
		t.Fatalf("a signing from its drained pool: %v; want ErrNoPresignature", err)
	}
	if st := poolIDs(t, b, ctx, aPool); st.Ready != 3 {
		t.Fatalf("b's copy of a's pool before reconciliation: %+v; want 3", st)
	}
	if _, err := a.Engine.Reconcile(ctx, aPool); err != nil {
		t.Fatal(err)
	}
	if st := poolIDs(t, b, ctx, aPool); st.Ready != 0 || st.Discarded != 3 {
		t.Fatalf("b's copy of a's pool after a reconciled: %+v; want 3 discarded", st)
	}

	// b drains its copy of a's (now empty) pool and of nothing else: its
	// own pool still signs.
	if n, err := b.Engine.Drain(ctx, aPool); err != nil || n != 0 {
		t.Fatalf("b drains its empty copy of a's pool: %d, %v", n, err)
	}
	sig, err := b.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if err != nil {
		t.Fatalf("b signing from its own pool: %v", err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
	if _, err := b.Engine.Drain(ctx, tss.PoolSpec{KeyID: "00", Signers: signers}); err == nil {
		t.Fatal("draining a pool of an unknown key succeeded")
	}
}
