package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// pauseCounter is a Pauser that counts the pauses it is asked for and how
// many are open.
type pauseCounter struct {
	mu     sync.Mutex
	asked  int
	open   int
	closed int
}

func (p *pauseCounter) Pause() func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked++
	p.open++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.open--
			p.closed++
		})
	}
}

func (p *pauseCounter) state() (asked, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked, p.open
}

// TestEngine_PausesBackgroundWorkWhileItSigns checks that each party
// pauses its Config.PauseWhileSigning from the check of a signing proposal
// (GG18 and GG20 online, as initiator and as co-signer) until its session
// ends, whether it signs or refuses, and never for keygen or presigning.
func TestEngine_PausesBackgroundWorkWhileItSigns(t *testing.T) {
	var mu sync.Mutex
	pausers := map[tss.PartyID]*pauseCounter{}
	refuse := false
	var policyErrs []error
	c := newCluster(t, 3, func(cfg *tss.Config) {
		self := cfg.Network.Self()
		pc := &pauseCounter{}
		mu.Lock()
		pausers[self] = pc
		mu.Unlock()
		cfg.PauseWhileSigning = pc
		cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
			_, open := pc.state()
			signing := p.Op == tss.OpSign || p.Op == tss.OpOnline
			mu.Lock()
			defer mu.Unlock()
			if signing != (open > 0) {
				policyErrs = append(policyErrs, errors.New(string(self)+": "+string(p.Op)+" checked with "+
					map[bool]string{true: "a pause open", false: "no pause open"}[open > 0]))
			}
			if refuse && p.Op == tss.OpOnline && p.Initiator != self {
				return errors.New("online signing refused for the test")
			}
			return nil
		}
	})
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ids := c.IDs()
	signers := []tss.PartyID{ids[0], ids[1]}
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Parties[0].Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if asked, _ := pausers[id].state(); asked != 0 {
			t.Fatalf("%s paused %d times for keygen and presigning, want none", id, asked)
		}
	}

	// allResumed waits until every pause the signers were asked for has
	// ended (a co-signer's session ends after the initiator returns), and
	// returns how many each was asked for.
	allResumed := func(what string) []int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var asked []int
			open := 0
			for _, id := range signers {
				a, o := pausers[id].state()
				asked = append(asked, a)
				open += o
			}
			if open == 0 {
				return asked
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d pauses still open after ten seconds", what, open)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	d := sha256.Sum256([]byte("paused"))
	if _, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d[:], Signers: signers}); err != nil {
		t.Fatal(err)
	}
	gg18 := allResumed("GG18 signing")
	if _, err := c.Parties[0].Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}}); err != nil {
		t.Fatal(err)
	}
	gg20 := allResumed("GG20 online signing")
	mu.Lock()
	refuse = true
	mu.Unlock()
	if _, err := c.Parties[0].Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}}); err == nil {
		t.Fatal("online signing refused by the co-signer succeeded")
	}
	refused := allResumed("refused GG20 online signing")
	for i := range signers {
		if gg18[i] == 0 || gg20[i] == gg18[i] || refused[i] == gg20[i] {
			t.Errorf("%s: pauses asked after GG18 %d, GG20 %d, refused GG20 %d: want more after each", signers[i], gg18[i], gg20[i], refused[i])
		}
	}
	if asked, _ := pausers[ids[2]].state(); asked != 0 {
		t.Errorf("%s, not a signer, paused %d times", ids[2], asked)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range policyErrs {
		t.Error(err)
	}
}
