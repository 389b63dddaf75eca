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

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	sessions []sessionEnd
	rounds   map[tss.Operation]map[uint32]int
	refused  []error
}

type sessionEnd struct {
	op        tss.Operation
	initiator bool
	err       error
}

func (r *recorder) SessionEnded(op tss.Operation, initiator bool, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, sessionEnd{op, initiator, err})
}

func (r *recorder) RoundDone(op tss.Operation, round uint32, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rounds[op] == nil {
		r.rounds[op] = map[uint32]int{}
	}
	r.rounds[op][round]++
}

func (r *recorder) Refused(from tss.PartyID, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, reason)
}

// ended returns the sessions of op that ended, waiting a little for the
// participants' goroutines, which report after the initiator returned.
func (r *recorder) ended(t *testing.T, op tss.Operation, want int) []sessionEnd {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var out []sessionEnd
		for _, s := range r.sessions {
			if s.op == op {
				out = append(out, s)
			}
		}
		r.mu.Unlock()
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestObserver_ReportsSessionsRoundsRefusalsAndBurnedPresignatures(t *testing.T) {
	var mu sync.Mutex
	recs := map[tss.PartyID]*recorder{}
	refuseOnline := map[tss.PartyID]bool{}
	c := newCluster(t, 3, func(cfg *tss.Config) {
		self := cfg.Network.Self()
		rec := &recorder{rounds: map[tss.Operation]map[uint32]int{}}
		mu.Lock()
		recs[self] = rec
		mu.Unlock()
		cfg.Observer = rec
		cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
			mu.Lock()
			defer mu.Unlock()
			if p.Op == tss.OpOnline && p.Initiator != self && refuseOnline[self] {
				return errors.New("online signing refused for the test")
			}
			return nil
		}
	})
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ids := c.IDs()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		ends := recs[id].ended(t, tss.OpKeygen, 1)
		if len(ends) != 1 || ends[0].err != nil || ends[0].initiator != (i == 0) {
			t.Fatalf("keygen as seen by party %d: %+v, want one success, initiator=%v", i, ends, i == 0)
		}
		recs[id].mu.Lock()
		rounds := recs[id].rounds[tss.OpKeygen]
		recs[id].mu.Unlock()
		// Rounds are numbered as the protocol's messages are (keygen
		// sends rounds 1 to 4): each one left is reported once.
		if len(rounds) < 2 || rounds[1] != 1 {
			t.Errorf("party %d: keygen rounds %v, want round 1 and the later ones reported once each", i, rounds)
		}
		for r, n := range rounds {
			if n != 1 {
				t.Errorf("party %d: keygen round %d reported %d times", i, r, n)
			}
		}
	}

	signers := []tss.PartyID{ids[0], ids[1]}
	if _, err := c.Parties[0].Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ends := recs[ids[i]].ended(t, tss.OpPresign, 1)
		if len(ends) == 0 {
			t.Fatalf("party %d saw no presigning session end", i)
		}
		for r := uint32(1); r <= 6; r++ {
			recs[ids[i]].mu.Lock()
			got := recs[ids[i]].rounds[tss.OpPresign][r]
			recs[ids[i]].mu.Unlock()
			if got != len(ends) {
				t.Errorf("party %d: presign round %d reported %d times, want once per session (%d)", i, r, got, len(ends))
			}
		}
	}

	// Party 1 refuses online signing: party 0 consumed its presignature
	// before the refusal came back, so it is burned.
	mu.Lock()
	refuseOnline[ids[1]] = true
	mu.Unlock()
	d := sha256.Sum256([]byte("burned"))
	_, err = c.Parties[0].Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	var refused *tss.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("online signing refused by party 1: %v, want a *tss.RefusedError", err)
	}
	st, err := c.Parties[0].Engine.PoolStatus(ctx, tss.PoolSpec{KeyID: info.ID, Signers: signers})
	if err != nil {
		t.Fatal(err)
	}
	if st.Burned != 1 || st.Used != 1 || st.Ready != 1 {
		t.Fatalf("initiator's pool after the refused online signing: %+v, want 1 burned, 1 used, 1 ready", st)
	}
	recs[ids[1]].mu.Lock()
	nref := len(recs[ids[1]].refused)
	var reason error
	if nref > 0 {
		reason = recs[ids[1]].refused[0]
	}
	recs[ids[1]].mu.Unlock()
	if nref != 1 || !errors.Is(reason, tss.ErrPolicy) {
		t.Fatalf("party 1 reported %d refusals (first: %v), want 1 wrapping ErrPolicy", nref, reason)
	}
	ends := recs[ids[0]].ended(t, tss.OpOnline, 1)
	if len(ends) != 1 || !ends[0].initiator || !errors.As(ends[0].err, &refused) {
		t.Fatalf("initiator's online sessions: %+v, want one refused", ends)
	}

	// A successful online signature: the participant reports its answer
	// (a proposal refused before it answered is a refusal, not a session).
	mu.Lock()
	refuseOnline[ids[1]] = false
	mu.Unlock()
	if _, err := c.Parties[0].Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}}); err != nil {
		t.Fatal(err)
	}
	ends = recs[ids[1]].ended(t, tss.OpOnline, 1)
	if len(ends) != 1 || ends[0].initiator || ends[0].err != nil {
		t.Fatalf("participant's online sessions: %+v, want one successful answer", ends)
	}
}
