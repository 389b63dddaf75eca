package keyquorum_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
)

// TestAudit_WitnessesCatchARewrite: each site's checkpoint is cosigned by
// the two others over the transport. Then site b loses its audit log (an
// operator deletes or replaces it; b's HSM signs the new history as
// readily as the old): at b's next checkpoint the other sites refuse to
// cosign, raise an alert naming b, keep the evidence and record it in
// their own audit logs.
func TestAudit_WitnessesCatchARewrite(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	sites := newSites(t, 3)
	for _, s := range sites {
		s.start(t)
	}
	a, b, c := sites[0], sites[1], sites[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		cp, err := s.node.CheckpointAudit(ctx)
		if err != nil || len(cp.Cosignatures) != 2 {
			t.Fatalf("checkpoint of %s: %+v, %v; want two cosignatures", s.id, cp, err)
		}
	}
	st, err := a.node.Status(ctx)
	if err != nil || st.Audit == nil || len(st.Audit.CosignedBy) != 2 || len(st.AuditAlerts) != 0 {
		t.Fatalf("status of a: %+v, %v", st.Audit, err)
	}
	// An auditor checks b's log with b's key and its witnesses' keys.
	bv, err := b.node.AuditVerifier()
	if err != nil {
		t.Fatal(err)
	}
	var wits []note.Verifier
	for _, w := range []*site{a, c} {
		v, err := audit.NewCosignatureVerifier(keyquorum.WitnessName(w.id), w.node.IdentityPublicKey())
		if err != nil {
			t.Fatal(err)
		}
		wits = append(wits, v)
	}
	rep, err := audit.Verify(ctx, b.node.AuditLog().Dir(), audit.VerifyOptions{Log: bv, Witnesses: wits})
	if err != nil || rep.LatestCosigned == nil {
		t.Fatalf("verify b's log: %+v, %v", rep, err)
	}

	dir := b.node.AuditLog().Dir()
	b.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	_, err = b.node.CheckpointAudit(ctx)
	if err == nil || !errors.Is(err, audit.ErrRewritten) {
		t.Fatalf("checkpoint of b's new log: %v, want the witnesses' rewrite refusal", err)
	}
	for _, w := range []*site{a, c} {
		alerts := w.node.AuditAlerts()
		if len(alerts) != 1 || !strings.Contains(alerts[0], string(b.id)) || !strings.Contains(alerts[0], "truncated") {
			t.Errorf("alerts of %s: %q, want one naming b's truncated log", w.id, alerts)
		}
		entries, err := w.node.AuditLog().Tail(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			found = found || (e.Type == "audit.rewrite" && e.Fields["site"] == string(b.id))
		}
		if !found {
			t.Errorf("%s did not record the rewrite in its own audit log", w.id)
		}
	}
}
