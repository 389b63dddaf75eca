package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/tss/gg20"
)

// coalesceHold is a co-signer Policy that holds the first online request
// it is asked about until release is closed. A co-signer checks the
// proposals of one initiator in order, so the initiator's second session
// waits behind the first, and the requests sent after those two wait at
// the initiator and leave together in one session. It refuses a request
// whose evidence is "refuse".
type coalesceHold struct {
	calls   atomic.Int64
	held    chan struct{}
	release chan struct{}
	// seen records, per request the policy decided, its batch position.
	mu   sync.Mutex
	seen []string
}

func newCoalesceHold() *coalesceHold {
	return &coalesceHold{held: make(chan struct{}, 1), release: make(chan struct{})}
}

func (h *coalesceHold) config(cfg *tss.Config) {
	self := cfg.Network.Self()
	cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
		if p.Op != tss.OpOnline || p.Initiator == self {
			return nil
		}
		if _, i, n, ok := p.BatchItem(); ok {
			h.mu.Lock()
			h.seen = append(h.seen, fmt.Sprintf("%d/%d %s", i, n, p.Evidence))
			h.mu.Unlock()
		}
		if h.calls.Add(1) == 1 {
			h.held <- struct{}{}
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if string(p.Evidence) == "refuse" {
			return errors.New("this request is not approved")
		}
		return nil
	}
}

type coalescedResult struct {
	digest [32]byte
	sig    *tss.Signature
	err    error
}

// signHeldThenCoalesced sends two requests, which the co-signer holds, and
// then one request per evidence; once those all wait at the initiator it
// lets the co-signer go. It returns every request's result, the two first.
func signHeldThenCoalesced(t *testing.T, ctx context.Context, a *testParty, h *coalesceHold, info *tss.KeyInfo, signers []tss.PartyID, evidence []string) []coalescedResult {
	t.Helper()
	res := make([]coalescedResult, 2+len(evidence))
	var wg sync.WaitGroup
	send := func(i int, ev string) {
		res[i].digest = sha256.Sum256(fmt.Appendf(nil, "%s request %d", t.Name(), i))
		wg.Go(func() {
			res[i].sig, res[i].err = a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers,
				Digests: [][]byte{res[i].digest[:]}, Evidence: []byte(ev)})
		})
	}
	send(0, "ok")
	select {
	case <-h.held:
	case <-ctx.Done():
		t.Fatal("the co-signer was never asked about the first request")
	}
	send(1, "ok")
	waitFor(t, time.Minute, "the second session to start", func() bool { return a.Engine.CoalesceStats().Sessions == 2 })
	for i, ev := range evidence {
		send(2+i, ev)
	}
	waitFor(t, time.Minute, "the requests to wait at the initiator", func() bool {
		return a.Engine.CoalesceStats().Waiting == uint64(len(evidence))
	})
	close(h.release)
	wg.Wait()
	return res
}

// TestGG20_ConcurrentRequestsAreCoalesced: requests that arrive while the
// initiator's online sessions with a co-signer run leave together in one
// session, and each gets a valid signature over its own digest with an r
// of its own.
func TestGG20_ConcurrentRequestsAreCoalesced(t *testing.T) {
	const waiting = 8
	h := newCoalesceHold()
	c, info, ctx := gg20Cluster(t, h.config)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2 + waiting}); err != nil {
		t.Fatal(err)
	}
	evidence := make([]string, waiting)
	for i := range evidence {
		evidence[i] = fmt.Sprintf("ok %d", i)
	}
	res := signHeldThenCoalesced(t, ctx, a, h, info, signers, evidence)
	rs := make(map[[32]byte]int)
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if r.sig.Digest != r.digest {
			t.Fatalf("request %d got the signature of another digest", i)
		}
		verifyBoth(t, info.PublicKey, r.digest[:], r.sig)
		if j, dup := rs[r.sig.R]; dup {
			t.Fatalf("requests %d and %d share r", j, i)
		}
		rs[r.sig.R] = i
	}
	st := a.Engine.CoalesceStats()
	if st.Sessions != 3 || st.Requests != 2+waiting || st.Largest != waiting || st.Waiting != 0 {
		t.Errorf("coalescing: %+v; want the two held requests alone and the %d that waited in one session", st, waiting)
	}
	// The co-signer's Policy decided each waiting request on its own,
	// with its own evidence.
	h.mu.Lock()
	seen := h.seen
	h.mu.Unlock()
	// They left in the order they arrived, which the test does not fix.
	for i := range waiting {
		found := 0
		for j := range waiting {
			for _, s := range seen {
				if s == fmt.Sprintf("%d/%d ok %d", j, waiting, i) {
					found++
				}
			}
		}
		if found != 1 {
			t.Errorf("the co-signer's policy saw request \"ok %d\" of the coalesced session %d times; it saw %q", i, found, seen)
		}
	}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers}
	if st := poolIDs(t, a, ctx, spec); st.Used != 2+waiting || st.Burned != 0 || st.Ready != 0 || st.Reserved != 0 {
		t.Errorf("initiator's pool: %+v; want every presignature used, none burned", st)
	}
}

// TestGG20_CoalescedRefusalFailsOnlyItsRequest: a co-signer's Policy that
// refuses one request of a coalesced session fails that request alone,
// with the co-signer's refusal; the co-signer keeps that presignature
// unused, as for a refused session, and the initiator counts it burned.
func TestGG20_CoalescedRefusalFailsOnlyItsRequest(t *testing.T) {
	h := newCoalesceHold()
	c, info, ctx := gg20Cluster(t, h.config)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 6}); err != nil {
		t.Fatal(err)
	}
	res := signHeldThenCoalesced(t, ctx, a, h, info, signers, []string{"ok", "refuse", "ok", "ok"})
	for i, r := range res {
		if i == 3 {
			var re *tss.RefusedError
			if !errors.As(r.err, &re) || re.Party != b.ID || !errors.Is(r.err, tss.ErrPolicy) {
				t.Fatalf("refused request: %v; want ErrPolicy from %s", r.err, b.ID)
			}
			continue
		}
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		verifyBoth(t, info.PublicKey, r.digest[:], r.sig)
	}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers}
	if st := poolIDs(t, a, ctx, spec); st.Used != 6 || st.Burned != 1 || st.Ready != 0 {
		t.Errorf("initiator's pool: %+v; want 6 used, the refused one burned", st)
	}
	spec.Initiator = a.ID
	if st := poolIDs(t, b, ctx, spec); st.Ready != 1 {
		t.Errorf("co-signer's copy of the pool: %+v; want the refused request's presignature left unused", st)
	}
}

// TestGG20_HostileAnswerToCoalescedSessionIsBlamed: a co-signer that
// answers a coalesced session with a request missing, one too many, or
// shares moved to other requests is named as the culprit; requests whose
// shares are right still sign.
func TestGG20_HostileAnswerToCoalescedSessionIsBlamed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// edit rewrites the co-signer's answer to the 3-request session
		// (entries of 33 bytes: 0x00 and a share).
		edit func(p []byte) []byte
		// bad is how many of the three requests must fail (which ones
		// depends on the order they arrived in).
		bad      int
		sentinel error
	}{
		{"missing request", func(p []byte) []byte { return p[:66] }, 3, tss.ErrMalformedMessage},
		{"extra request", func(p []byte) []byte { return append(p, p[:33]...) }, 3, tss.ErrMalformedMessage},
		{"truncated share", func(p []byte) []byte { return p[:len(p)-1] }, 3, tss.ErrMalformedMessage},
		{"unknown entry kind", func(p []byte) []byte { p[33] = 7; return p }, 3, tss.ErrMalformedMessage},
		{"shares swapped", func(p []byte) []byte {
			q := append([]byte(nil), p...)
			copy(q[0:33], p[33:66])
			copy(q[33:66], p[0:33])
			return q
		}, 2, gg20.ErrBadShare},
		{"refusal claimed, share kept", func(p []byte) []byte {
			text := "policy\nnot approved"
			q := append([]byte{1, 0, byte(len(text))}, text...)
			return append(q, p[33:]...)
		}, 1, tss.ErrPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCoalesceHold()
			c, info, ctx := gg20Cluster(t, h.config)
			a, b := c.Parties[0], c.Parties[1]
			signers := []tss.PartyID{a.ID, b.ID}
			if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 5}); err != nil {
				t.Fatal(err)
			}
			b.Tamper(func(m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgResult && len(m.Payload) == 3*33 {
					m.Payload = tc.edit(append([]byte(nil), m.Payload...))
				}
				return []*tss.Message{m}
			})
			res := signHeldThenCoalesced(t, ctx, a, h, info, signers, []string{"ok", "ok", "ok"})
			failed := 0
			for i, r := range res {
				if r.err == nil {
					if r.sig == nil || r.sig.Digest != r.digest {
						t.Fatalf("request %d: no signature of its own digest", i)
					}
					verifyBoth(t, info.PublicKey, r.digest[:], r.sig)
					continue
				}
				if i < 2 {
					t.Fatalf("request %d, alone in its session: %v", i, r.err)
				}
				failed++
				if !errors.Is(r.err, tc.sentinel) {
					t.Fatalf("request %d: %v; want %v", i, r.err, tc.sentinel)
				}
				if tc.sentinel == tss.ErrPolicy {
					continue // a refusal is the co-signer's right
				}
				var ce *tss.CulpritError
				if !errors.As(r.err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != b.ID {
					t.Fatalf("request %d: %v; want %s named as the culprit", i, r.err, b.ID)
				}
				if r.sig != nil {
					t.Fatalf("request %d failed but returned a signature", i)
				}
			}
			if failed != tc.bad {
				t.Fatalf("%d of the coalesced requests failed; want %d", failed, tc.bad)
			}
		})
	}
}

// TestGG20_WaitingRequestEndsWithItsContext: a request waiting to be
// coalesced ends with its own context, as busy, and the others still sign.
func TestGG20_WaitingRequestEndsWithItsContext(t *testing.T) {
	h := newCoalesceHold()
	c, info, ctx := gg20Cluster(t, h.config)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 3}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		d := sha256.Sum256(fmt.Appendf(nil, "held %d", i))
		wg.Go(func() {
			_, errs[i] = a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
		})
		if i == 0 {
			<-h.held
		}
	}
	waitFor(t, time.Minute, "the second session to start", func() bool { return a.Engine.CoalesceStats().Sessions == 2 })
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	d := sha256.Sum256([]byte("waiting"))
	_, err := a.Engine.SignOnline(short, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if !errors.Is(err, tss.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting request: %v; want ErrBusy and its context's deadline", err)
	}
	if st := a.Engine.CoalesceStats(); st.Waiting != 0 {
		t.Errorf("still waiting after its context ended: %+v", st)
	}
	close(h.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("held request %d: %v", i, err)
		}
	}
	if st := poolIDs(t, a, ctx, tss.PoolSpec{KeyID: info.ID, Signers: signers}); st.Ready != 1 || st.Burned != 0 {
		t.Errorf("pool: %+v; want the cancelled request to have reserved nothing", st)
	}
}
