package transport

import (
	"context"
	"testing"
	"time"
)

// TestInbound_FloodingPeerDoesNotStarveOthers: a committee member sends
// faster than the receiver reads until its own inbound queue is full. The
// queue is per peer, so another member's message is still accepted at once
// and handed out after at most one of the flood's.
func TestInbound_FloodingPeerDoesNotStarveOthers(t *testing.T) {
	nets := startNetworks(t, signers(t, 3), listenTCP, func(_ int, c *Config) { c.InboxSize = 8 })
	a, b, h := nets[0], nets[1], nets[2]
	payload := string(make([]byte, 64<<10))
	flooded := 0
	for ; flooded < 10000; flooded++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := h.Send(ctx, message(h, 1, payload, a))
		cancel()
		if err != nil {
			break
		}
	}
	t.Logf("the flooding peer's Send blocked after %d messages", flooded)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Send(ctx, message(b, 2, "honest", a)); err != nil {
		t.Fatalf("an honest peer cannot send while another floods: %v", err)
	}
	eventually(t, "the honest message is in the inbox", func() bool { return a.inbox.Len(b.self) == 1 })
	for i := range 2 {
		if m := mustReceive(t, a); m.From == b.Self() {
			t.Logf("the honest message came out of Receive number %d", i+1)
			return
		}
	}
	t.Fatal("the honest message waits behind the flood")
}
