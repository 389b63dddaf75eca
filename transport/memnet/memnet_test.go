package memnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

// TestEndpoint_FloodingSenderDoesNotStarveOthers: a sender that fills its
// queue at a receiver blocks, while another sender's message is accepted
// at once and comes out of Receive after at most one of the flood's.
func TestEndpoint_FloodingSenderDoesNotStarveOthers(t *testing.T) {
	hub := memnet.NewHub(8)
	var eps []*memnet.Endpoint
	for _, id := range []tss.PartyID{"QmAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "QmBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "QmCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"} {
		ep, err := hub.Join(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		eps = append(eps, ep)
	}
	a, b, flood := eps[0], eps[1], eps[2]
	msg := func(from *memnet.Endpoint, round uint32) *tss.Message {
		return &tss.Message{Type: tss.MsgProtocol, From: from.Self(), To: []tss.PartyID{a.Self()}, Round: round}
	}
	sent := 0
	for ; sent < 100; sent++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := flood.Send(ctx, msg(flood, 1))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent != 8 {
		t.Fatalf("the flooding sender got %d messages queued, want 8", sent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := b.Send(ctx, msg(b, 2)); err != nil {
		t.Fatalf("an honest sender is blocked by another's flood: %v", err)
	}
	for i := range 2 {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.From == b.Self() {
			t.Logf("the honest message came out of Receive number %d", i+1)
			return
		}
	}
	t.Fatal("the honest message waits behind the flood")
}
