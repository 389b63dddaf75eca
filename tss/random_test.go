package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/tss"
)

// siteRand is a party's Config.Rand in these tests: the party's own
// hsmshare.Random (its SoftHSM2 token mixed with the OS), with a switch that
// makes it fail as a broken HSM generator would.
type siteRand struct {
	r    *hsmshare.Random
	fail atomic.Bool
}

var errBrokenGenerator = errors.New("test: generator broken")

func (s *siteRand) Read(p []byte) (int, error) {
	if s.fail.Load() {
		return 0, errBrokenGenerator
	}
	return s.r.Read(p)
}

// randCluster starts n parties whose Config.Rand is their token's Random.
func randCluster(t *testing.T, n int) (*cluster, map[tss.PartyID]*siteRand) {
	t.Helper()
	var mu sync.Mutex
	rands := map[tss.PartyID]*siteRand{}
	c := newCluster(t, n, func(cfg *tss.Config) {
		sr := &siteRand{}
		cfg.Rand = sr
		mu.Lock()
		rands[cfg.Network.Self()] = sr
		mu.Unlock()
	})
	for _, p := range c.Parties {
		r, err := p.Token.Random(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rands[p.ID].r = r
	}
	return c, rands
}

// TestSessions_DrawFromConfigRand checks that keygen, GG18 signing,
// presigning and resharing take their randomness from every participant's Config.Rand
// (here the HSM-mixed hsmshare.Random).
func TestSessions_DrawFromConfigRand(t *testing.T) {
	c, rands := randCluster(t, 3)
	c.FeedPreParams(2) // keygen, and the new committee of the reshare
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := func() map[tss.PartyID]uint64 {
		m := map[tss.PartyID]uint64{}
		for id, r := range rands {
			m[id] = r.r.Stats().Bytes
		}
		return m
	}
	check := func(what string, b map[tss.PartyID]uint64, ids ...tss.PartyID) {
		t.Helper()
		for _, id := range ids {
			// At least the 48-byte seed of the session's own DRBG.
			if got := rands[id].r.Stats().Bytes - b[id]; got < 48 {
				t.Fatalf("%s: party %s drew %d bytes from its Random, want at least 48", what, id, got)
			}
		}
	}
	b := before()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	check("keygen", b, c.IDs()...)

	signers := []tss.PartyID{c.Parties[0].ID, c.Parties[1].ID}
	digest := sha256.Sum256([]byte("entropy"))
	b = before()
	sig, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, digest[:], sig)
	check("sign", b, signers...)

	b = before()
	if _, err := c.Parties[0].Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
		t.Fatal(err)
	}
	check("presign", b, signers...)

	b = before()
	if _, err := c.Parties[0].Engine.Reshare(ctx, tss.ReshareRequest{KeyID: info.ID, NewParties: c.IDs(), NewThreshold: 3}); err != nil {
		t.Fatal(err)
	}
	check("reshare", b, c.IDs()...)
}

// TestSessions_FailingRandFailsCleanly breaks one party's generator: the
// initiator's own failure is returned at once, a participant's makes the
// session fail with an error (never a panic, which tss-lib would raise on
// a failed read inside its goroutines), and the committee signs again once
// the generator works.
func TestSessions_FailingRandFailsCleanly(t *testing.T) {
	c, rands := randCluster(t, 3)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	digest := sha256.Sum256([]byte("entropy"))
	req := tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers}

	rands[a.ID].fail.Store(true)
	if _, err := a.Engine.Sign(ctx, req); !errors.Is(err, errBrokenGenerator) {
		t.Fatalf("sign with the initiator's generator broken: %v, want its error", err)
	}
	rands[a.ID].fail.Store(false)

	rands[b.ID].fail.Store(true)
	if _, err := a.Engine.Sign(ctx, req); err == nil {
		t.Fatal("sign with a participant's generator broken succeeded")
	} else {
		t.Logf("participant's generator broken: %v", err)
	}
	rands[b.ID].fail.Store(false)

	sig, err := a.Engine.Sign(ctx, req)
	if err != nil {
		t.Fatalf("sign once the generator works again: %v", err)
	}
	verifyBoth(t, info.PublicKey, digest[:], sig)
}
