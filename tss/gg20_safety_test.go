package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/tss/gg20"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// gg20Cluster makes a 2-of-3 key and returns the cluster, the key and a
// context for the test.
func gg20Cluster(t *testing.T, cfg func(*tss.Config)) (*cluster, *tss.KeyInfo, context.Context) {
	t.Helper()
	c := newCluster(t, 3, cfg)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c, info, ctx
}

func poolIDs(t *testing.T, p *testParty, ctx context.Context, spec tss.PoolSpec) tss.PoolStatus {
	t.Helper()
	st, err := p.Engine.PoolStatus(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGG20_PresignatureUsedOnceAcrossCrash(t *testing.T) {
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) { cfg.RoundTimeout = 10 * time.Second })
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	if st := poolIDs(t, b, ctx, spec); st.Ready != 2 {
		t.Fatalf("b holds %d presignatures, want 2", st.Ready)
	}
	// b durably consumes its presignature, then "crashes" before its share
	// leaves: the result is lost and its engine stops.
	b.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgResult {
			return nil
		}
		return []*tss.Message{m}
	})
	d := sha256.Sum256([]byte("first use"))
	_, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	var te *tss.RoundTimeoutError
	if !errors.As(err, &te) || len(te.Parties) != 1 || te.Parties[0] != b.ID {
		t.Fatalf("got %v, want a timeout naming %s", err, b.ID)
	}
	b.Tamper(nil)
	b = c.Restart(1, func(*tss.Config) {}) // a fresh engine over the same sealed store
	// After the restart b holds one presignature: the consumed one is gone
	// from its disk, and a holds one (its copy of the used one is gone too).
	if st := poolIDs(t, b, ctx, spec); st.Ready != 1 {
		t.Fatalf("after restart b holds %d presignatures, want 1", st.Ready)
	}
	if st := poolIDs(t, a, ctx, spec); st.Ready != 1 {
		t.Fatalf("a holds %d presignatures, want 1", st.Ready)
	}
	// The remaining presignature is the same one on both and signs.
	d2 := sha256.Sum256([]byte("second use"))
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d2[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d2[:], sig)
	if st := poolIDs(t, b, ctx, spec); st.Ready != 0 || st.Used != 1 {
		t.Fatalf("b's pool after the second use: %+v", st)
	}
}

func TestGG20_PresignaturesAreBoundToSignersAndPath(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b, cc := c.Parties[0], c.Parties[1], c.Parties[2]
	ab := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: ab, Path: "m/0/1", Count: 1}); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("bound"))
	for _, req := range []tss.OnlineRequest{
		{KeyID: info.ID, Signers: ab, Path: "", Digests: [][]byte{d[:]}},
		{KeyID: info.ID, Signers: ab, Path: "m/0/2", Digests: [][]byte{d[:]}},
		{KeyID: info.ID, Signers: []tss.PartyID{a.ID, cc.ID}, Path: "m/0/1", Digests: [][]byte{d[:]}},
	} {
		if _, err := a.Engine.SignOnline(ctx, req); !errors.Is(err, tss.ErrNoPresignature) {
			t.Fatalf("signers %v path %q: got %v, want ErrNoPresignature", req.Signers, req.Path, err)
		}
	}
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: ab, Path: "m/0/1", Digests: [][]byte{d[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, sig.PublicKey, d[:], sig)
	if string(sig.PublicKey) == string(info.PublicKey) {
		t.Fatal("signature under m/0/1 reports the root key")
	}
}

func TestGG20_AbortedRoundBurnsAndReconcileDiscards(t *testing.T) {
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) {
		cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
			if p.Op == tss.OpOnline && string(p.Evidence) != "ok" {
				return errors.New("not approved")
			}
			return nil
		}
	})
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	// a's own policy passes (lenient engine), b refuses: a's copy is burnt.
	a = c.Restart(0, func(cfg *tss.Config) { cfg.Policy = nil })
	d := sha256.Sum256([]byte("refused"))
	_, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	var re *tss.RefusedError
	if !errors.As(err, &re) || re.Party != b.ID {
		t.Fatalf("got %v, want a refusal by %s", err, b.ID)
	}
	if st := poolIDs(t, a, ctx, spec); st.Ready != 1 || st.Used != 1 {
		t.Fatalf("a's pool after the aborted round: %+v", st)
	}
	if st := poolIDs(t, b, ctx, spec); st.Ready != 2 {
		t.Fatalf("b's pool after refusing: %+v", st)
	}
	// Reconciliation discards b's copy of the burnt presignature.
	if _, err := a.Engine.Reconcile(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if st := poolIDs(t, b, ctx, spec); st.Ready != 1 || st.Discarded != 1 {
		t.Fatalf("b's pool after reconciliation: %+v", st)
	}
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}, Evidence: []byte("ok")})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
}

func TestGG20_BadOnlineShareIsBlamed(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	b.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgResult {
			m.Payload[31] ^= 1
		}
		return []*tss.Message{m}
	})
	// Once checked the plain way, once with the verifier table: both name b.
	for _, table := range []bool{false, true} {
		if table {
			if err := a.Engine.PrepareOnline(ctx, info.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if tss.HasVerifier(a.Engine, info.PublicKey) != table {
			t.Fatalf("verifier table present: %v, want %v", !table, table)
		}
		d := sha256.Sum256([]byte("cheat"))
		_, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
		var ce *tss.CulpritError
		if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != b.ID || !errors.Is(err, gg20.ErrBadShare) {
			t.Fatalf("table %v: got %v, want ErrBadShare blaming %s", table, err, b.ID)
		}
	}
}

func TestGG20_PrepareOnline(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	e := c.Parties[0].Engine
	if err := e.PrepareOnline(ctx, "no-such-key", ""); !errors.Is(err, tss.ErrUnknownKey) {
		t.Fatalf("unknown key: got %v, want ErrUnknownKey", err)
	}
	if err := e.PrepareOnline(ctx, info.ID, "m/0'/1"); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("hardened path: got %v, want ErrBadRequest", err)
	}
	if err := e.PrepareOnline(ctx, info.ID, "m/0/7"); err != nil {
		t.Fatal(err)
	}
	pub, err := secp256k1.ParsePubKey(info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	child, _, _, err := hd.Derive(pub, info.ChainCode, hd.Path{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	if !tss.HasVerifier(e, child.SerializeCompressed()) || tss.HasVerifier(e, info.PublicKey) {
		t.Fatal("PrepareOnline for m/0/7 must build the table of the derived key only")
	}
}

func TestGG20_CheatingPresignerIsBlamed(t *testing.T) {
	// A signer that corrupts its round-5 or round-6 bundle is named by the
	// honest initiator.
	for _, round := range []uint32{5, 6} {
		c, info, ctx := gg20Cluster(t, nil)
		a, b := c.Parties[0], c.Parties[1]
		signers := []tss.PartyID{a.ID, b.ID}
		b.Tamper(func(m *tss.Message) []*tss.Message {
			if m.Type == tss.MsgProtocol && m.Round == round {
				m.Payload[len(m.Payload)-40] ^= 0x55
			}
			return []*tss.Message{m}
		})
		_, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1})
		var ce *tss.CulpritError
		if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != b.ID {
			t.Fatalf("round %d: got %v, want blame on %s", round, err, b.ID)
		}
		t.Logf("round %d: %v", round, err)
	}
}
