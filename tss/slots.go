package tss

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxWaitingProposals bounds the requests of this party that wait for an
// initiator slot (see initiatorSlots) at once; a request beyond it fails
// at once with ErrBusy. A waiting request holds its goroutine (about 5 KiB
// with its stack, BenchmarkWaitingRequestMemory) and nothing of the
// protocol: no presignature, no share.
const maxWaitingProposals = 1024

// initiatorSlots bounds the sessions this party initiates and runs at once
// with each other party: half of MaxSessionsPerPeer per co-signer.
//
// Every co-signer refuses, with ErrBusy, a proposal past MaxSessionsPerPeer
// sessions of the same proposer. For GG20 online signing such a refusal
// costs the initiator its presignature: it consumes its own while the
// proposal travels (see SignBatch), so concurrent requests past the
// co-signer's bound burned presignatures. A request over the initiator's
// own bound waits here instead, before it reserves anything, until a
// session with the same co-signers ends, for at most JoinTimeout and no
// longer than its context. The bound is half of the co-signer's (assuming
// the committee runs with the same MaxSessionsPerPeer) because a co-signer
// counts an online answer until its network send returns, which may be
// after the initiator got the answer and started the next session.
type initiatorSlots struct {
	mu      sync.Mutex
	limit   int
	inUse   map[PartyID]int
	waiting int
	freed   chan struct{} // closed, and replaced, when a slot frees
}

func newInitiatorSlots(maxPerPeer int) *initiatorSlots {
	return &initiatorSlots{limit: max(1, maxPerPeer/2), inUse: make(map[PartyID]int), freed: make(chan struct{})}
}

// acquire waits until a session with others fits under every co-signer's
// bound and takes a slot with each; the returned function gives them back.
// It fails with ErrBusy when maxWaitingProposals requests already wait, or
// when no slot freed within patience (the engine's JoinTimeout), and with
// ErrBusy and ctx's error when ctx ends first.
func (s *initiatorSlots) acquire(ctx context.Context, others []PartyID, patience time.Duration) (func(), error) {
	timer := time.NewTimer(patience)
	defer timer.Stop()
	s.mu.Lock()
	for {
		if s.fits(others) {
			for _, p := range others {
				s.inUse[p]++
			}
			s.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { s.release(others) }) }, nil
		}
		if s.waiting >= maxWaitingProposals {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %d requests of this party already wait for a session slot with their co-signers; retry later",
				ErrBusy, s.waiting)
		}
		s.waiting++
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: no session slot with the co-signers freed within %v (this party runs %d sessions at once with each); retry later",
				ErrBusy, patience, s.limit)
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: waiting for a session slot with the co-signers: %w", ErrBusy, ctx.Err())
		}
		s.mu.Lock()
		s.waiting--
	}
}

// fits reports whether one more session with others stays within the
// limit. Call it with s.mu held.
func (s *initiatorSlots) fits(others []PartyID) bool {
	for _, p := range others {
		if s.inUse[p] >= s.limit {
			return false
		}
	}
	return true
}

func (s *initiatorSlots) release(others []PartyID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range others {
		if s.inUse[p]--; s.inUse[p] <= 0 {
			delete(s.inUse, p)
		}
	}
	close(s.freed)
	s.freed = make(chan struct{})
}
