package keyquorum

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// TestCheckReshare_PendingShareSignsOnlyTheConfirmation: a signing
// session with a pending share (Epoch set) is joined only for the
// confirmation digest of a reshare this site accepted, for that key and
// epoch and without a path. Anything else is what a committee member
// holding a pending share would propose to get a digest signed that no
// policy allowed.
func TestCheckReshare_PendingShareSignsOnlyTheConfirmation(t *testing.T) {
	ctx := context.Background()
	n := &Node{party: "self", log: slog.New(slog.DiscardHandler), reshares: newReshares()}
	committee := tss.SortParties([]tss.PartyID{"self", "other", "third"})
	reshare := &tss.Proposal{Op: tss.OpReshare, KeyID: "k1", Initiator: "other", Parties: committee,
		OldParties: committee, NewParties: committee, Threshold: 2, Payload: []byte(`{"old_epoch":1}`)}
	confirm, epoch, err := tss.ReshareConfirmation(reshare)
	if err != nil || epoch != 2 {
		t.Fatal(epoch, err)
	}
	sign := func(keyID string, digest [32]byte, epoch uint64, path string) *tss.Proposal {
		return &tss.Proposal{Op: tss.OpSign, KeyID: keyID, Initiator: "other", Parties: committee[:2], Payload: digest[:], Epoch: epoch, Path: path}
	}
	other := sha256.Sum256([]byte("a withdrawal nobody approved"))

	if err := n.checkReshare(ctx, sign("k1", confirm, 2, "")); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("confirmation of a reshare this site never accepted: %v; want ErrBadRequest", err)
	}
	if err := n.checkReshare(ctx, reshare); !errors.Is(err, ErrReshareNotAuthorized) {
		t.Fatalf("unauthorized reshare: %v; want ErrReshareNotAuthorized", err)
	}
	n.reshares.auths["k1"] = ReshareAuthorization{KeyID: "k1", NewParties: committee, NewThreshold: 2, Expires: time.Now().Add(time.Hour)}
	if err := n.checkReshare(ctx, reshare); err != nil {
		t.Fatalf("authorized reshare: %v", err)
	}
	for _, tc := range []struct {
		name string
		prop *tss.Proposal
	}{
		{"another digest", sign("k1", other, 2, "")},
		{"the confirmation at a derived path", sign("k1", confirm, 2, "m/0")},
		{"the confirmation with another epoch", sign("k1", confirm, 3, "")},
		{"the confirmation for another key", sign("k2", confirm, 2, "")},
	} {
		if err := n.checkReshare(ctx, tc.prop); !errors.Is(err, tss.ErrBadRequest) {
			t.Errorf("pending share asked to sign %s: %v; want ErrBadRequest", tc.name, err)
		}
	}
	if err := n.checkReshare(ctx, sign("k1", confirm, 2, "")); err != nil {
		t.Fatalf("the confirmation of the accepted reshare: %v", err)
	}
	if err := n.checkReshare(ctx, sign("k1", other, 0, "")); err != nil {
		t.Fatalf("a signature with the active share is the signing policy's to decide: %v", err)
	}
}
