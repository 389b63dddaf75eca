package keyquorum_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/tss"
)

// TestNode_PoolRegistryIsBounded: every pool a site records it maintains
// for good, so another committee member must not be able to make it record
// pools without bound: a pool is recorded only once a presigning session
// for it succeeded, and pools other sites initiate are capped per key and
// per initiator.
func TestNode_PoolRegistryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	sites := newSites(t, 3)
	a, b, h := sites[0], sites[1], sites[2]
	a.cfg.MaxPoolsPerKey = 3
	a.cfg.MaxPoolsPerInitiator = 2
	b.cfg.Policy = func(_ context.Context, p *tss.Proposal) error {
		if p.Op == tss.OpPresign && strings.HasPrefix(p.Path, "m/9/") {
			return errors.New("no presignatures under m/9")
		}
		return nil
	}
	for _, s := range sites {
		s.start(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, h), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	pools := func(s *site) []string {
		t.Helper()
		st, err := s.node.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range st.Keys {
			if k.KeyID == key.ID {
				for _, p := range k.Pools {
					out = append(out, p.Path)
				}
			}
		}
		return out
	}
	presign := func(s *site, path string, signers ...*site) error {
		_, err := s.node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: ids(signers...), Path: path})
		return err
	}

	t.Run("ProposalsThatFailAreNotRecorded", func(t *testing.T) {
		// H proposes presigning for new paths with A and B; B refuses
		// each, so no session ever runs.
		for i := range 5 {
			if err := presign(h, fmt.Sprintf("m/9/%d", i), a, b, h); err == nil {
				t.Fatal("a presigning session B refuses succeeded")
			}
		}
		if got := pools(a); len(got) != 0 {
			t.Errorf("A records pools of sessions that never ran: %v", got)
		}
	})
	t.Run("PoolsOneSiteInitiatesAreCapped", func(t *testing.T) {
		for i := range 4 {
			if err := presign(h, fmt.Sprintf("m/1/%d", i), a, h); err != nil {
				t.Fatal(err)
			}
		}
		if got := pools(a); len(got) != 2 {
			t.Errorf("A records %d pools H initiated, want MaxPoolsPerInitiator = 2: %v", len(got), got)
		}
	})
	t.Run("PoolsOfOneKeyAreCapped", func(t *testing.T) {
		for i := range 2 {
			if err := presign(b, fmt.Sprintf("m/2/%d", i), a, b); err != nil {
				t.Fatal(err)
			}
		}
		if got := pools(a); len(got) != 3 {
			t.Errorf("A records %d pools of the key, want MaxPoolsPerKey = 3: %v", len(got), got)
		}
	})
	t.Run("PoolsASiteInitiatesAreRecorded", func(t *testing.T) {
		if err := presign(a, "m/3/0", a, b); err != nil {
			t.Fatal(err)
		}
		if got := pools(a); len(got) != 4 {
			t.Errorf("A records %d pools, want its own on top of the 3 others: %v", len(got), got)
		}
	})
}

func TestOpen_RefusesNegativePoolLimits(t *testing.T) {
	for _, cfg := range []keyquorum.Config{
		{StoreDir: t.TempDir(), Offline: true, MaxPoolsPerKey: -1},
		{StoreDir: t.TempDir(), Offline: true, MaxPoolsPerInitiator: -1},
	} {
		if _, err := keyquorum.Open(context.Background(), cfg); !errors.Is(err, keyquorum.ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
