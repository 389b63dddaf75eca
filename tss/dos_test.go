package tss_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// The tests in this file are attacks by a legitimate committee member: a
// hostile party H with a real share, talking the real wire format, tries to
// stall or exhaust an honest party A. Each attack runs while an unrelated
// honest session (B proposes GG18 signing to A) must complete; the tests
// log that session's latency and the process's heap (runtime.MemStats
// HeapInuse after a collection, so it counts what is held, not garbage).

// dosBed is a 2-of-3 committee: A and B honest, H hostile.
type dosBed struct {
	c       *cluster
	a, b, h *testParty
	key     *tss.KeyInfo
}

func newDoSBed(t *testing.T) *dosBed {
	t.Helper()
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := &dosBed{c: c, a: c.Parties[0], b: c.Parties[1], h: c.Parties[2], key: key}
	took, err := d.honestSign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("honest session without attack: %s; heap in use %s", took.Round(time.Millisecond), mib(heapInuse()))
	return d
}

// honestSign runs the unrelated honest session: B proposes GG18 signing
// with A. It returns how long it took.
func (d *dosBed) honestSign(ctx context.Context) (time.Duration, error) {
	digest := randomDigest()
	start := time.Now()
	sig, err := d.b.Engine.Sign(ctx, tss.SignRequest{KeyID: d.key.ID, Digest: digest[:], Signers: []tss.PartyID{d.a.ID, d.b.ID}})
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	if err := sig.Verify(); err != nil {
		return took, err
	}
	return took, nil
}

// sessionsOf counts e's running sessions that initiator proposed.
func sessionsOf(e *tss.Engine, initiator tss.PartyID) int {
	n := 0
	for _, s := range e.Sessions() {
		if s.Initiator == initiator {
			n++
		}
	}
	return n
}

func randomDigest() [32]byte {
	var b [32]byte
	rand.Read(b[:])
	return sha256.Sum256(b[:])
}

// heapInuse collects garbage and returns the bytes in in-use heap spans.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// echoPayload is an echo as the wire carries it: the origin's ID with a
// 16-bit length prefix, then the 32-byte hash of the broadcast it saw.
func echoPayload(origin tss.PartyID, h [32]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(origin)))
	b = append(b, origin...)
	return append(b, h[:]...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDoS_CommitteeMember(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-of-3 keygen and several signing sessions under attack")
	}
	d := newDoSBed(t)
	all := []tss.PartyID{d.a.ID, d.b.ID, d.h.ID}
	slices.Sort(all)

	t.Run("EchoFloodForMissingRounds", func(t *testing.T) {
		// H takes part honestly in a signing session A proposes, and once
		// the rounds run it sends A 20,000 echoes for rounds that do not
		// exist. A must blame H at the first one; the state of its session
		// must not grow and B's unrelated session must go through.
		const flood = 20000
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		target := make(chan tss.SessionID, 1)
		var once sync.Once
		d.h.Tamper(func(m *tss.Message) []*tss.Message {
			if m.Type == tss.MsgProtocol && slices.Contains(m.To, d.a.ID) {
				once.Do(func() { target <- m.Session })
			}
			return []*tss.Message{m}
		})
		defer d.h.Tamper(nil)
		before := heapInuse()
		attacked := make(chan error, 1)
		go func() {
			digest := randomDigest()
			_, err := d.a.Engine.Sign(ctx, tss.SignRequest{KeyID: d.key.ID, Digest: digest[:], Signers: all})
			attacked <- err
		}()
		var sid tss.SessionID
		select {
		case sid = <-target:
		case err := <-attacked:
			t.Fatalf("attacked session ended before H sent anything: %v", err)
		}
		var sent atomic.Int64
		flooded := make(chan error, 1)
		go func() {
			for i := range flood {
				var h [32]byte
				binary.BigEndian.PutUint32(h[:], uint32(i))
				m := &tss.Message{Session: sid, Type: tss.MsgEcho, From: d.h.ID, To: []tss.PartyID{d.a.ID},
					Round: uint32(1000 + i), Payload: echoPayload(d.b.ID, h)}
				if err := d.h.Endpoint.Send(ctx, m); err != nil {
					flooded <- err
					return
				}
				sent.Add(1)
			}
			flooded <- nil
		}()
		waitFor(t, time.Minute, "the flood to start", func() bool { return sent.Load() > 100 })
		took, err := d.honestSign(ctx)
		if err != nil {
			t.Errorf("B's unrelated session failed during the echo flood: %v", err)
		}
		during := heapInuse()
		if err := <-flooded; err != nil {
			t.Errorf("flood: %v", err)
		}
		aerr := <-attacked
		t.Logf("echo flood of %d: honest session took %s; heap in use %s before, %s during (%+d)",
			flood, took.Round(time.Millisecond), mib(before), mib(during), int64(during)-int64(before))
		if held := tss.EchoesHeld(d.a.Engine); held > int64(len(all)*len(all)*10) {
			t.Errorf("A's sessions hold %d echoes; a 3-party, 10-round session has room for at most %d", held, len(all)*len(all)*10)
		}
		var ce *tss.CulpritError
		if !errors.As(aerr, &ce) || !slices.Equal(ce.Parties, []tss.PartyID{d.h.ID}) || !errors.Is(aerr, tss.ErrMalformedMessage) {
			t.Errorf("attacked session ended with %v; want a *tss.CulpritError naming %s for a malformed message", aerr, d.h.ID)
		}
	})

	t.Run("EarlyMessageFlood", func(t *testing.T) {
		// H proposes a session to A, lets A accept, never sends the start
		// and floods A with 1 MiB protocol messages for the session, which A
		// can only hold until the start comes. A must keep a small, fixed
		// amount per sender.
		const (
			flood = 300
			size  = 1 << 20
		)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		target := make(chan tss.SessionID, 1)
		d.h.Tamper(func(m *tss.Message) []*tss.Message {
			if slices.Equal(m.To, []tss.PartyID{d.a.ID}) {
				switch m.Type {
				case tss.MsgStart:
					select {
					case target <- m.Session:
					default:
					}
					return nil
				case tss.MsgProtocol:
					return nil
				}
			}
			return []*tss.Message{m}
		})
		defer d.h.Tamper(nil)
		before := heapInuse()
		hostile := make(chan error, 1)
		go func() {
			digest := randomDigest()
			_, err := d.h.Engine.Sign(ctx, tss.SignRequest{KeyID: d.key.ID, Digest: digest[:], Signers: []tss.PartyID{d.a.ID, d.h.ID}})
			hostile <- err
		}()
		sid := <-target
		payload := make([]byte, size)
		for i := range flood {
			payload[0] = byte(i)
			m := &tss.Message{Session: sid, Type: tss.MsgProtocol, From: d.h.ID, To: []tss.PartyID{d.a.ID}, Round: 1, Payload: payload}
			if err := d.h.Endpoint.Send(ctx, m); err != nil {
				t.Fatalf("flood: %v", err)
			}
		}
		took, err := d.honestSign(ctx)
		if err != nil {
			t.Errorf("B's unrelated session failed during the early-message flood: %v", err)
		}
		held := heapInuse()
		t.Logf("early flood of %d x %d KiB: honest session took %s; heap in use %s before, %s while A waits for the start (%+d)",
			flood, size>>10, took.Round(time.Millisecond), mib(before), mib(held), int64(held)-int64(before))
		if grew := int64(held) - int64(before); grew > 64<<20 {
			t.Errorf("A holds %s more after the flood; the early buffer is not bounded per sender", mib(uint64(grew)))
		}
		if sessionsOf(d.a.Engine, d.h.ID) != 1 {
			t.Errorf("A does not hold the attacked session any more; the test did not measure a waiting session")
		}
		if d.a.Engine.Stats().Overflow == 0 {
			t.Error("A dropped none of the flood")
		}
		cancel()
		<-hostile
		waitFor(t, time.Minute, "A to drop H's session", func() bool { return sessionsOf(d.a.Engine, d.h.ID) == 0 })
	})

	t.Run("SessionQuota", func(t *testing.T) {
		// H proposes 70 signing sessions to A, more than A's 64 session
		// slots, and abandons them: it never sends the start. A must hold
		// at most its per-peer quota of them and still serve B.
		const proposals = 70
		const quota = tss.DefaultMaxSessionsPerPeer
		// H's own engine would keep its sessions with A under half of
		// MaxSessionsPerPeer; a hostile H does not, so its bounds are
		// raised past the attack.
		h := d.c.Restart(2, func(cfg *tss.Config) { cfg.MaxSessions, cfg.MaxSessionsPerPeer = 4*proposals, 4*proposals })
		defer d.c.Restart(2, nil)
		d.c.Restart(0, func(cfg *tss.Config) { cfg.JoinTimeout = 2 * time.Minute })
		defer d.c.Restart(0, nil)
		h.Tamper(func(m *tss.Message) []*tss.Message {
			if slices.Equal(m.To, []tss.PartyID{d.a.ID}) && (m.Type == tss.MsgStart || m.Type == tss.MsgProtocol) {
				return nil
			}
			return []*tss.Message{m}
		})
		defer h.Tamper(nil)
		attackCtx, stopAttack := context.WithCancel(context.Background())
		defer stopAttack()
		var refused atomic.Int64
		var wg sync.WaitGroup
		for range proposals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				digest := randomDigest()
				_, err := h.Engine.Sign(attackCtx, tss.SignRequest{KeyID: d.key.ID, Digest: digest[:], Signers: []tss.PartyID{d.a.ID, d.h.ID}})
				var re *tss.RefusedError
				if errors.As(err, &re) {
					refused.Add(1)
				}
			}()
		}
		waitFor(t, time.Minute, "A to accept or refuse every proposal", func() bool {
			return int(refused.Load())+sessionsOf(d.a.Engine, d.h.ID) == proposals
		})
		held := sessionsOf(d.a.Engine, d.h.ID)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		took, err := d.honestSign(ctx)
		t.Logf("H proposed %d sessions: A holds %d, refused %d; honest session took %s (%v)", proposals, held, refused.Load(), took.Round(time.Millisecond), err)
		if err != nil {
			t.Errorf("B's session failed while H holds %d of A's sessions: %v", held, err)
		}
		if held > quota {
			t.Errorf("A holds %d sessions proposed by H; want at most %d", held, quota)
		}
		if st := d.a.Engine.Stats(); st.OverQuota < uint64(proposals-quota) {
			t.Errorf("A counted %d proposals over quota, want at least %d", st.OverQuota, proposals-quota)
		}
		stopAttack()
		wg.Wait()
		waitFor(t, time.Minute, "A to drop H's sessions", func() bool { return sessionsOf(d.a.Engine, d.h.ID) == 0 })
	})

	t.Run("EchoesDoNotExtendTheRoundTimeout", func(t *testing.T) {
		// H joins A's signing session, withholds its own messages and
		// sends A one echo every 1.2 s for broadcasts of later rounds. A
		// must time out 3 s after the last real progress, not 3 s after
		// H's last echo.
		const timeout = 3 * time.Second
		a := d.c.Restart(0, func(cfg *tss.Config) { cfg.RoundTimeout = timeout })
		defer d.c.Restart(0, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		target := make(chan tss.SessionID, 1)
		var once sync.Once
		d.h.Tamper(func(m *tss.Message) []*tss.Message {
			if m.Type == tss.MsgProtocol {
				once.Do(func() { target <- m.Session })
				return nil
			}
			return []*tss.Message{m}
		})
		defer d.h.Tamper(nil)
		var ended atomic.Bool
		attacked := make(chan error, 1)
		go func() {
			digest := randomDigest()
			_, err := a.Engine.Sign(ctx, tss.SignRequest{KeyID: d.key.ID, Digest: digest[:], Signers: all})
			ended.Store(true)
			attacked <- err
		}()
		sid := <-target
		// GG18 signing broadcasts in rounds 2 and 4 to 10; the session is
		// stuck before round 3, so B's later broadcasts never come and the
		// forged echoes contradict nothing.
		rounds := []uint32{4, 5, 6, 7, 8, 9, 10}
		sentBeforeEnd := -1
		for i, r := range rounds {
			time.Sleep(1200 * time.Millisecond)
			if ended.Load() {
				sentBeforeEnd = i
				break
			}
			var h [32]byte
			rand.Read(h[:])
			m := &tss.Message{Session: sid, Type: tss.MsgEcho, From: d.h.ID, To: []tss.PartyID{a.ID}, Round: r, Payload: echoPayload(d.b.ID, h)}
			if err := d.h.Endpoint.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		err := <-attacked
		if sentBeforeEnd < 0 {
			sentBeforeEnd = len(rounds)
		}
		t.Logf("A's session ended after H sent %d of %d echoes: %v", sentBeforeEnd, len(rounds), err)
		var te *tss.RoundTimeoutError
		if !errors.As(err, &te) || !slices.Contains(te.Parties, d.h.ID) {
			t.Errorf("got %v, want a round timeout naming %s", err, d.h.ID)
		}
		if sentBeforeEnd == len(rounds) {
			t.Errorf("A's session outlived all %d echoes: echoes reset its round timer", len(rounds))
		}
		waitFor(t, time.Minute, "every session to end", func() bool {
			return len(a.Engine.Sessions())+len(d.b.Engine.Sessions())+len(d.h.Engine.Sessions()) == 0
		})
	})

	t.Run("RefusalsToAPeerThatStopsReading", func(t *testing.T) {
		// H stops reading and sends A more malformed proposals than its
		// own inbound queue holds. A refuses each; once H's queue is full
		// every refusal waits. A must go on serving B.
		const proposals = 1200
		d.c.Stop(2)
		defer d.c.Restart(2, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for i := range proposals {
			var sid tss.SessionID
			rand.Read(sid[:])
			m := &tss.Message{Session: sid, Type: tss.MsgPropose, From: d.h.ID, To: []tss.PartyID{d.a.ID}, Payload: []byte(fmt.Sprintf("not a proposal %d", i))}
			if err := d.h.Endpoint.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		took, err := d.honestSign(ctx)
		t.Logf("after %d refusals to a peer that does not read: honest session took %s (%v); A's drop counters %+v",
			proposals, took.Round(time.Millisecond), err, d.a.Engine.Stats())
		if err != nil {
			t.Errorf("B's session failed while A refuses a peer that does not read: %v", err)
		}
		if d.a.Engine.Stats().RefusalsDropped == 0 {
			t.Error("A sent every refusal to a peer that does not read; none was dropped")
		}
	})

	// Whatever the attacks left, A gives every byte back once its
	// sessions are over: nothing leaks into the senders' budgets.
	waitFor(t, 2*time.Minute, "A's sessions to end", func() bool { return len(d.a.Engine.Sessions()) == 0 })
	waitFor(t, time.Minute, "A to release every message it held", func() bool { return tss.HeldBytes(d.a.Engine) == 0 })
}

func TestDoS_AbandonedKeygenProposals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a keygen after the attack")
	}
	// H proposes more keygens to A than its session quota and abandons
	// them before the start. A must hold at most the quota, keep its
	// pre-parameters and still run a keygen B proposes.
	const proposals = tss.DefaultMaxSessionsPerPeer + 1
	// Keygens need a pre-parameter set each, and one that starts uses its
	// set up: a party may have only a few of them running here.
	const quota = tss.MaxPreParamSessionsPerPeer
	c := newCluster(t, 3, nil)
	a, b, h := c.Parties[0], c.Parties[1], c.Parties[2]
	c.FeedPreParams(1)
	readyBefore, err := a.Pool.Ready(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// H speaks for itself on the wire: its engine is stopped so that the
	// test reads A's answers from H's endpoint.
	c.Stop(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sids := make(map[tss.SessionID]bool)
	for range proposals {
		prop := &tss.Proposal{Version: 1, Op: tss.OpKeygen, Initiator: h.ID, KeyID: fmt.Sprintf("%x", randomDigest()), Parties: tss.SortParties([]tss.PartyID{a.ID, h.ID}), Threshold: 2}
		rand.Read(prop.Nonce[:])
		payload, err := json.Marshal(prop)
		if err != nil {
			t.Fatal(err)
		}
		sid := prop.SessionID()
		sids[sid] = true
		if err := h.Endpoint.Send(ctx, &tss.Message{Session: sid, Type: tss.MsgPropose, From: h.ID, To: []tss.PartyID{a.ID}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	accepted, refused := 0, 0
	for accepted+refused < proposals {
		m, err := h.Endpoint.Receive(ctx)
		if err != nil {
			t.Fatalf("waiting for A's answers: %v", err)
		}
		switch {
		case !sids[m.Session]:
		case m.Type == tss.MsgAccept:
			accepted++
		case m.Type == tss.MsgRefuse:
			refused++
		}
	}
	held := sessionsOf(a.Engine, h.ID)
	ready, err := a.Pool.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("H proposed %d keygens: A accepted %d (holds %d) and refused %d; A has %d of %d pre-parameter sets ready", proposals, accepted, held, refused, ready, readyBefore)
	if accepted > quota || held > quota {
		t.Errorf("A accepted %d keygens proposed by H; want at most %d", accepted, quota)
	}
	if ready != readyBefore {
		t.Errorf("abandoned proposals consumed pre-parameters: %d ready, want %d", ready, readyBefore)
	}
	for sid := range sids {
		if err := h.Endpoint.Send(ctx, &tss.Message{Session: sid, Type: tss.MsgAbort, From: h.ID, To: []tss.PartyID{a.ID}, Payload: []byte("gone")}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, "A to drop H's sessions", func() bool { return sessionsOf(a.Engine, h.ID) == 0 })
	c.Restart(2, nil)
	if _, err := b.Engine.Keygen(ctx, tss.KeygenRequest{Parties: []tss.PartyID{a.ID, b.ID}, Threshold: 2}); err != nil {
		t.Fatalf("honest keygen after the attack: %v", err)
	}
	waitFor(t, time.Minute, "A to release every message it held", func() bool {
		return len(a.Engine.Sessions()) == 0 && tss.HeldBytes(a.Engine) == 0
	})
}

func TestDoS_AbandonedReshareGivesPreParamsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-of-2 keygen and a reshare")
	}
	// H proposes to reshare its key with B to a committee that adds A,
	// lets the session start, then withholds its messages and gives up.
	// A, a new member, never got as far as using its pre-parameter set:
	// it must still have it afterwards.
	c := newCluster(t, 3, nil)
	a, b, h := c.Parties[0], c.Parties[1], c.Parties[2]
	c.FeedPreParams(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key, err := h.Engine.Keygen(ctx, tss.KeygenRequest{Parties: []tss.PartyID{b.ID, h.ID}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	readyBefore, err := a.Pool.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol {
			return nil
		}
		return []*tss.Message{m}
	})
	attackCtx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	done := make(chan error, 1)
	go func() {
		_, err := h.Engine.Reshare(attackCtx, tss.ReshareRequest{KeyID: key.ID, NewParties: []tss.PartyID{a.ID, b.ID, h.ID}, NewThreshold: 2})
		done <- err
	}()
	waitFor(t, time.Minute, "A to start the reshare", func() bool {
		for _, s := range a.Engine.Sessions() {
			if s.Op == tss.OpReshare && s.Phase == "running" {
				return true
			}
		}
		return false
	})
	stopAttack()
	<-done
	waitFor(t, time.Minute, "A to end the reshare", func() bool { return len(a.Engine.Sessions()) == 0 })
	ready, err := a.Pool.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A has %d pre-parameter sets ready after the abandoned reshare, %d before", ready, readyBefore)
	if ready != readyBefore {
		t.Errorf("an abandoned reshare consumed A's pre-parameters: %d ready, want %d", ready, readyBefore)
	}
}

func TestPreParamsPool_LeaseSurvivesACrash(t *testing.T) {
	// A set handed to a session stays in the store until the session
	// consumes it right before its first use, so a crash before that gives
	// it back and a crash after it cannot hand it out again.
	ctx := context.Background()
	c := newCluster(t, 1, nil)
	site := c.Parties[0]
	c.FeedPreParams(2)
	pool := site.Pool
	ready := func(p *tss.PreParamsPool) int {
		t.Helper()
		n, err := p.Ready(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	l1, err := tss.Reserve(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := tss.Reserve(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if l1.ID() == l2.ID() {
		t.Fatal("one set was handed out twice")
	}
	if n := ready(pool); n != 0 {
		t.Fatalf("%d sets ready while both are handed out, want 0", n)
	}
	if _, err := pool.Take(ctx); !errors.Is(err, tss.ErrNoPreParams) {
		t.Fatalf("Take while both sets are handed out: %v, want ErrNoPreParams", err)
	}
	// A restarted process sees the store only: both sets, unused, ready.
	restarted, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: site.Store})
	if err != nil {
		t.Fatal(err)
	}
	if n := ready(restarted); n != 2 {
		t.Fatalf("after a crash before use, %d sets ready, want 2", n)
	}
	// Consuming deletes the set from the store before anything uses it.
	if err := l1.Consume(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ready(restarted); n != 1 {
		t.Fatalf("after a crash after use, %d sets ready, want 1", n)
	}
	ids, err := site.Store.List(ctx, "preparams")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, l1.ID()) {
		t.Fatal("a consumed set is still in the store")
	}
	l1.Release() // after Consume: nothing comes back
	l2.Release()
	if n := ready(pool); n != 1 {
		t.Fatalf("after one set was used and one given back, %d ready, want 1", n)
	}
	pp, err := pool.Take(ctx)
	if err != nil || pp == nil {
		t.Fatalf("Take of the set given back: %v", err)
	}
	if n := ready(pool); n != 0 {
		t.Fatalf("%d sets ready after Take, want 0", n)
	}
}

func TestNew_RefusesInvalidConfig(t *testing.T) {
	c := newCluster(t, 1, nil)
	p := c.Parties[0]
	for _, tc := range []struct {
		name string
		cfg  func(*tss.Config)
	}{
		{"negative round timeout", func(c *tss.Config) { c.RoundTimeout = -time.Second }},
		{"negative join timeout", func(c *tss.Config) { c.JoinTimeout = -time.Second }},
		{"negative session limit", func(c *tss.Config) { c.MaxSessions = -1 }},
		{"negative per-peer limit", func(c *tss.Config) { c.MaxSessionsPerPeer = -1 }},
		{"per-peer limit above the limit", func(c *tss.Config) { c.MaxSessions = 4; c.MaxSessionsPerPeer = 5 }},
		{"no store", func(c *tss.Config) { c.Store = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tss.Config{Network: p.Net, Store: p.Store}
			tc.cfg(&cfg)
			if _, err := tss.New(cfg); !errors.Is(err, tss.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := tss.New(tss.Config{Network: p.Net, Store: p.Store, MaxSessions: 4}); err != nil {
		t.Fatalf("a per-peer limit defaults to at most MaxSessions: %v", err)
	}
}
