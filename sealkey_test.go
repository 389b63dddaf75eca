package keyquorum_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/fixtures"
)

// TestNode_RotateSealKey re-seals a site's store under a new seal key
// twice: each time the old key is gone from the token, the site opens
// again with the new one (found through the store), and its sealed
// records still open (the pre-parameter set is read back whole).
func TestNode_RotateSealKey(t *testing.T) {
	ctx := context.Background()
	cfg := siteConfig(t, takeToken(t))
	cfg.Offline = true
	n, err := keyquorum.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fixtures.PreParamsJSON(0)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := keyquorum.ParsePreParams(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ImportPreParams(ctx, pp); err != nil {
		t.Fatal(err)
	}
	prev := keyquorum.DefaultSealKeyLabel
	for _, want := range []string{keyquorum.DefaultSealKeyLabel + ".2", keyquorum.DefaultSealKeyLabel + ".3"} {
		res, err := n.RotateSealKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.OldLabel != prev || res.NewLabel != want || res.OldID == res.NewID || !res.OldDestroyed {
			t.Fatalf("rotation: %+v; want %s -> %s, old destroyed", res, prev, want)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		tok, err := hsmshare.Open(ctx, cfg.HSM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.SealKey(ctx, prev); !errors.Is(err, hsmshare.ErrKeyNotFound) {
			t.Fatalf("old seal key %q after the rotation: %v; want ErrKeyNotFound", prev, err)
		}
		if err := tok.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err = keyquorum.Open(ctx, cfg); err != nil {
			t.Fatalf("reopen after rotating to %s: %v", want, err)
		}
		// The pre-parameter set and the transport's QUIC secret.
		if got, err := keyquorum.OpenSealedRecords(ctx, n, "preparams", "transport"); err != nil || got != 2 {
			t.Fatalf("records that open under %s: %d, %v; want 2", want, got, err)
		}
		prev = want
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
