package tss_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// TestSign_ConcurrentSessionsRunTheirRoundsTogether: independent GG18
// sessions of one initiator are in their rounds at the same time, not one
// after another. The co-signer holds its messages from round 2 on until
// the test has seen every session at the initiator past round 1; anything
// that ran sessions one at a time (a lock held across a round, one worker
// for all sessions) would leave all but one still joining or in round 1
// and the test would wait for ever, bounded by its context.
func TestSign_ConcurrentSessionsRunTheirRoundsTogether(t *testing.T) {
	const sessions = 3
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a, b := c.Parties[0], c.Parties[1]
	info, err := a.Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	defer open()
	b.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol && m.Round >= 2 {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return []*tss.Message{m}
	})
	signers := []tss.PartyID{a.ID, b.ID}
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			d := sha256.Sum256(fmt.Appendf(nil, "concurrent %d", i))
			if _, err := a.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d[:], Signers: signers}); err != nil {
				errs <- fmt.Errorf("signature %d: %w", i, err)
			}
		})
	}
	wait, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	for {
		past := 0
		for _, s := range a.Engine.Sessions() {
			if s.Op == tss.OpSign && s.Phase == "running" && s.Round >= 2 {
				past++
			}
		}
		if past == sessions {
			break
		}
		select {
		case <-wait.Done():
			open()
			wg.Wait()
			t.Fatalf("only %d of %d concurrent sessions got past round 1 while the co-signer held round 2: sessions run one at a time", past, sessions)
		case <-time.After(10 * time.Millisecond):
		}
	}
	open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
