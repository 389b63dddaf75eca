// Package nettest is a conformance suite for [tss.Network] implementations.
// The same tests run against the in-memory network (transport/memnet) and
// the libp2p network (transport), so that code tested on one behaves the
// same on the other.
//
// The suite checks what the tss session layer relies on: delivery to one
// and to many recipients, fidelity of every Message field and of payloads
// up to [tss.MaxPayloadSize], refusal of larger payloads, unknown recipients
// reported as *tss.UnreachableError, Receive honouring its context, Close,
// many concurrent senders, per-sender ordering, refusal of a From naming
// another party, and backpressure (a receiver that does not read makes
// senders block instead of buffering without bound).
package nettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// Options are what a test asks of the networks it gets.
type Options struct {
	// QueueSize is the number of messages a network should hold for a
	// receiver that does not read, before senders block. Zero means the
	// implementation's default.
	QueueSize int
}

// Harness adapts one [tss.Network] implementation to the suite.
type Harness struct {
	// Networks returns n networks forming one committee, each able to
	// reach every other. It registers their cleanup with t.Cleanup; that
	// cleanup must tolerate networks the test closed already.
	Networks func(t *testing.T, n int, opt Options) []tss.Network
	// Close closes one network.
	Close func(tss.Network) error
	// ErrClosed is the error (tested with errors.Is) that Send and Receive
	// return after Close.
	ErrClosed error
	// SpoofedDrops returns how many messages addressed to the network were
	// dropped because their From named a party other than the sender.
	SpoofedDrops func(tss.Network) uint64
	// Outsider returns a party ID that is well formed for the
	// implementation but not a member of any committee Networks builds.
	Outsider func(t *testing.T) tss.PartyID
	// MaxBuffered is the largest number of 64 KiB messages one sender may
	// get accepted for a receiver that never reads, with
	// Options{QueueSize: 8}, before a Send blocks. It bounds the memory a
	// stalled receiver can cost.
	MaxBuffered int
}

// Run runs the suite as subtests of t.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"DeliversToOneRecipient", testDeliverOne},
		{"DeliversToManyRecipients", testDeliverMany},
		{"DeliversToSelf", testDeliverSelf},
		{"PreservesEveryField", testFieldFidelity},
		{"PreservesPayloads", testPayloadFidelity},
		{"ReceiverGetsACopy", testReceiverCopy},
		{"RefusesOversizedPayload", testSizeLimit},
		{"ReportsUnknownRecipient", testUnknownRecipient},
		{"ReceiveHonoursContext", testReceiveContext},
		{"CloseStopsEverything", testClose},
		{"SendToClosedPeerIsUnreachable", testSendToClosed},
		{"ManyConcurrentSenders", testConcurrency},
		{"KeepsOrderPerSender", testOrdering},
		{"DropsForeignFrom", testSpoofedFrom},
		{"BlocksSenderWhenReceiverStalls", testBackpressure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// waitLong bounds every wait for something that must happen; reaching it
// means the implementation is broken, not slow.
const waitLong = 20 * time.Second

func newSession(t *testing.T) tss.SessionID {
	t.Helper()
	var s tss.SessionID
	if _, err := rand.Read(s[:]); err != nil {
		t.Fatal(err)
	}
	return s
}

func msgTo(from tss.Network, session tss.SessionID, round uint32, payload []byte, to ...tss.Network) *tss.Message {
	m := &tss.Message{Session: session, Type: tss.MsgProtocol, From: from.Self(), Round: round, Payload: payload}
	for _, n := range to {
		m.To = append(m.To, n.Self())
	}
	return m
}

func send(t *testing.T, n tss.Network, m *tss.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := n.Send(ctx, m); err != nil {
		t.Fatalf("Send from %s: %v", n.Self(), err)
	}
}

func receive(t *testing.T, n tss.Network) *tss.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	m, err := n.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive at %s: %v", n.Self(), err)
	}
	return m
}

// equalMessages compares every field; nil and empty payloads are equal.
func equalMessages(a, b *tss.Message) error {
	switch {
	case a.Session != b.Session:
		return errors.New("session differs")
	case a.Type != b.Type:
		return fmt.Errorf("type %v, want %v", a.Type, b.Type)
	case a.From != b.From:
		return fmt.Errorf("from %s, want %s", a.From, b.From)
	case !slices.Equal(a.To, b.To):
		return fmt.Errorf("to %v, want %v", a.To, b.To)
	case a.Broadcast != b.Broadcast:
		return fmt.Errorf("broadcast %v, want %v", a.Broadcast, b.Broadcast)
	case a.Round != b.Round:
		return fmt.Errorf("round %d, want %d", a.Round, b.Round)
	case !bytes.Equal(a.Payload, b.Payload):
		return fmt.Errorf("payload of %d bytes differs from the %d bytes sent", len(a.Payload), len(b.Payload))
	}
	return nil
}

// expectProbe sends a fresh probe from `from` to `to` and checks that it is
// the next message `to` receives: anything sent earlier on the same pair
// and wrongly delivered would arrive first.
func expectProbe(t *testing.T, from, to tss.Network) {
	t.Helper()
	probe := msgTo(from, newSession(t), 7, []byte("probe"), to)
	send(t, from, probe)
	got := receive(t, to)
	if err := equalMessages(got, probe); err != nil {
		t.Fatalf("%s received something other than the probe first: %v", to.Self(), err)
	}
}

func testDeliverOne(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	m := msgTo(a, newSession(t), 1, []byte("hello"), b)
	send(t, a, m)
	if err := equalMessages(receive(t, b), m); err != nil {
		t.Fatal(err)
	}
}

func testDeliverMany(t *testing.T, h Harness) {
	ns := h.Networks(t, 3, Options{})
	a := ns[0]
	m := msgTo(a, newSession(t), 2, []byte("to all"), ns[1], ns[2])
	m.Broadcast = true
	send(t, a, m)
	for _, r := range ns[1:] {
		if err := equalMessages(receive(t, r), m); err != nil {
			t.Fatalf("at %s: %v", r.Self(), err)
		}
	}
}

func testDeliverSelf(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a := ns[0]
	m := msgTo(a, newSession(t), 3, []byte("note to self"), a)
	send(t, a, m)
	if err := equalMessages(receive(t, a), m); err != nil {
		t.Fatal(err)
	}
}

func testFieldFidelity(t *testing.T, h Harness) {
	ns := h.Networks(t, 3, Options{})
	a, b, c := ns[0], ns[1], ns[2]
	for typ := tss.MsgPropose; typ <= tss.MsgCommit; typ++ {
		for _, bc := range []bool{false, true} {
			for _, round := range []uint32{0, 1, 127, 128, 1 << 31, ^uint32(0)} {
				m := msgTo(a, newSession(t), round, []byte{byte(typ), byte(round)}, c, b)
				m.Type, m.Broadcast = typ, bc
				send(t, a, m)
				for _, r := range []tss.Network{b, c} {
					if err := equalMessages(receive(t, r), m); err != nil {
						t.Fatalf("type %v broadcast %v round %d at %s: %v", typ, bc, round, r.Self(), err)
					}
				}
			}
		}
	}
}

func testPayloadFidelity(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	for _, size := range []int{0, 1, 127, 128, 4096, 1 << 16, tss.MaxPayloadSize} {
		p := make([]byte, size)
		rand.Read(p)
		m := msgTo(a, newSession(t), 1, p, b)
		send(t, a, m)
		if err := equalMessages(receive(t, b), m); err != nil {
			t.Fatalf("payload of %d bytes: %v", size, err)
		}
	}
}

func testReceiverCopy(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	m := msgTo(a, newSession(t), 1, []byte("original"), b)
	send(t, a, m)
	copy(m.Payload, "tampered")
	m.To[0] = "someone-else"
	got := receive(t, b)
	if string(got.Payload) != "original" || got.To[0] != b.Self() {
		t.Fatalf("received message changed with the sender's copy: payload %q, to %v", got.Payload, got.To)
	}
}

func testSizeLimit(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	big := msgTo(a, newSession(t), 1, make([]byte, tss.MaxPayloadSize+1), b)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	err := a.Send(ctx, big)
	if !errors.Is(err, tss.ErrMessageTooLarge) {
		t.Fatalf("Send of %d bytes: got %v, want tss.ErrMessageTooLarge", len(big.Payload), err)
	}
	expectProbe(t, a, b)
}

func testUnknownRecipient(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	outsider := h.Outsider(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	m := &tss.Message{Session: newSession(t), Type: tss.MsgProtocol, From: a.Self(), To: []tss.PartyID{outsider}, Round: 1}
	err := a.Send(ctx, m)
	var ue *tss.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Send to outsider: got %v, want *tss.UnreachableError", err)
	}
	if !slices.Equal(ue.Parties, []tss.PartyID{outsider}) {
		t.Fatalf("UnreachableError names %v, want only %s", ue.Parties, outsider)
	}

	// A known recipient in the same message still gets it.
	m = &tss.Message{Session: newSession(t), Type: tss.MsgProtocol, From: a.Self(), To: []tss.PartyID{outsider, b.Self()}, Round: 2, Payload: []byte("x")}
	err = a.Send(ctx, m)
	if !errors.As(err, &ue) || !slices.Equal(ue.Parties, []tss.PartyID{outsider}) {
		t.Fatalf("Send to outsider and member: got %v, want *tss.UnreachableError naming only %s", err, outsider)
	}
	if err := equalMessages(receive(t, b), m); err != nil {
		t.Fatal(err)
	}
}

func testReceiveContext(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	b := ns[1]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a cancelled context: got %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive past its deadline: got %v, want context.DeadlineExceeded", err)
	}
	// Cancelling while blocked.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.Receive(ctx); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive cancelled while blocked: got %v, want context.Canceled", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Receive did not return after its context was cancelled")
	}
}

func testClose(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	blocked := make(chan error, 1)
	go func() { _, err := a.Receive(context.Background()); blocked <- err }()
	if err := h.Close(a); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, h.ErrClosed) {
			t.Fatalf("Receive blocked during Close: got %v, want %v", err, h.ErrClosed)
		}
	case <-time.After(waitLong):
		t.Fatal("Receive blocked during Close did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := a.Receive(ctx); !errors.Is(err, h.ErrClosed) {
		t.Fatalf("Receive after Close: got %v, want %v", err, h.ErrClosed)
	}
	if err := a.Send(ctx, msgTo(a, newSession(t), 1, nil, b)); !errors.Is(err, h.ErrClosed) {
		t.Fatalf("Send after Close: got %v, want %v", err, h.ErrClosed)
	}
	if err := h.Close(a); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testSendToClosed(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	send(t, a, msgTo(a, newSession(t), 1, nil, b)) // a link existed
	receive(t, b)
	if err := h.Close(b); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A network may learn of the peer's departure only when a write
	// fails, so keep sending until one Send reports it.
	deadline := time.Now().Add(waitLong)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := a.Send(ctx, msgTo(a, newSession(t), 2, []byte("anyone there?"), b))
		cancel()
		var ue *tss.UnreachableError
		if errors.As(err, &ue) {
			if !slices.Equal(ue.Parties, []tss.PartyID{b.Self()}) {
				t.Fatalf("UnreachableError names %v, want %s", ue.Parties, b.Self())
			}
			return
		}
		if err != nil {
			t.Fatalf("Send to a closed peer: got %v, want *tss.UnreachableError", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Send to a closed peer kept succeeding")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seqPayload encodes a sender index, goroutine index and sequence number.
func seqPayload(sender, g, seq int) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, uint32(sender))
	binary.BigEndian.PutUint32(b[4:], uint32(g))
	binary.BigEndian.PutUint32(b[8:], uint32(seq))
	return b
}

func testConcurrency(t *testing.T, h Harness) {
	const parties, goroutines, perG = 3, 4, 40
	ns := h.Networks(t, parties, Options{})
	session := newSession(t)
	var wg sync.WaitGroup
	errs := make(chan error, parties*goroutines)
	for i, n := range ns {
		var others []tss.Network
		for j, o := range ns {
			if j != i {
				others = append(others, o)
			}
		}
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				for s := range perG {
					if err := n.Send(ctx, msgTo(n, session, 1, seqPayload(i, g, s), others...)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	// Receive concurrently so that bounded queues never stall the senders.
	want := (parties - 1) * goroutines * perG
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := map[[2]int]int{}
			for range want {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				m, err := n.Receive(ctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("party %d: %w", i, err)
					return
				}
				s, g, seq := int(binary.BigEndian.Uint32(m.Payload)), int(binary.BigEndian.Uint32(m.Payload[4:])), int(binary.BigEndian.Uint32(m.Payload[8:]))
				if m.From != ns[s].Self() {
					errs <- fmt.Errorf("party %d: message from %s claims sender %d", i, m.From, s)
					return
				}
				if seq != next[[2]int{s, g}] {
					errs <- fmt.Errorf("party %d: from %d/%d got seq %d, want %d", i, s, g, seq, next[[2]int{s, g}])
					return
				}
				next[[2]int{s, g}]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testOrdering(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{})
	a, b := ns[0], ns[1]
	const count = 300
	session := newSession(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		for i := range count {
			if err := a.Send(ctx, msgTo(a, session, uint32(i+1), seqPayload(0, 0, i), b)); err != nil {
				return // the receive loop reports the gap
			}
		}
	}()
	for i := range count {
		m := receive(t, b)
		if m.Round != uint32(i+1) {
			t.Fatalf("message %d arrived as round %d", i+1, m.Round)
		}
	}
}

func testSpoofedFrom(t *testing.T, h Harness) {
	ns := h.Networks(t, 3, Options{})
	a, b, c := ns[0], ns[1], ns[2]
	before := h.SpoofedDrops(c)
	forged := msgTo(a, newSession(t), 1, []byte("I am b"), c)
	forged.From = b.Self()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// An implementation may refuse the forgery at once or let the
	// receiver drop it; either way it must not arrive as b's.
	_ = a.Send(ctx, forged)
	expectProbe(t, a, c)
	if got := h.SpoofedDrops(c); got != before+1 {
		// A sender-side refusal leaves the receiver's count alone.
		if got != before {
			t.Fatalf("spoofed drops at receiver went from %d to %d", before, got)
		}
		t.Logf("implementation refused the forged From at the sender")
	}
}

func testBackpressure(t *testing.T, h Harness) {
	ns := h.Networks(t, 2, Options{QueueSize: 8})
	a, b := ns[0], ns[1]
	session := newSession(t)
	payload := make([]byte, 64<<10)
	limit := h.MaxBuffered + 1
	accepted := 0
	for ; accepted <= limit; accepted++ {
		p := slices.Clone(payload)
		binary.BigEndian.PutUint32(p, uint32(accepted))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := a.Send(ctx, msgTo(a, session, 1, p, b))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("blocked Send: got %v, want an error wrapping context.DeadlineExceeded", err)
			}
			break
		}
	}
	if accepted > h.MaxBuffered {
		t.Fatalf("sender kept going: %d messages of 64 KiB accepted for a receiver that does not read (bound %d)", accepted, h.MaxBuffered)
	}
	t.Logf("Send blocked after %d accepted messages", accepted)
	// Everything accepted arrives, in order; a message whose Send timed
	// out may arrive too (it may have been in flight), but only in order.
	next := 0
	for next < accepted {
		m := receive(t, b)
		seq := int(binary.BigEndian.Uint32(m.Payload))
		if seq != next {
			t.Fatalf("after the stall, got message %d, want %d", seq, next)
		}
		next++
	}
	// The link works again once the receiver reads.
	probe := msgTo(a, newSession(t), 9, []byte("after"), b)
	send(t, a, probe)
	for {
		m := receive(t, b)
		if m.Session == probe.Session {
			break
		}
		if seq := int(binary.BigEndian.Uint32(m.Payload)); seq != next {
			t.Fatalf("after the stall, got message %d, want %d or the probe", seq, next)
		}
		next++
	}
}
