package keyquorum_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	keyquorum "github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/tss"
)

// TestNode_RefusesOperationsItHasNoPolicyFor: the engine underneath a
// node can run threshold Schnorr sessions, but a node has no intent,
// policy or audit path for them yet. A compromised site that proposes one
// is refused by every other node, which names the reason, and nothing is
// generated.
func TestNode_RefusesOperationsItHasNoPolicyFor(t *testing.T) {
	sites := newSites(t, 3)
	for _, s := range sites {
		s.start(t)
	}
	a := sites[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := keyquorum.CompromisedEngine(a.node).SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids(sites...), Threshold: 2})
	var refused *tss.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("a Schnorr keygen proposed to nodes: %v, want a refusal", err)
	}
	if !errors.Is(err, keyquorum.ErrOperationNotEnabled) && !strings.Contains(err.Error(), "not enabled on a keyquorum node") {
		t.Fatalf("the refusal %v does not say the operation is not enabled", err)
	}
}
