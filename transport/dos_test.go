package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/keyquorum/keyquorum/tss"
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

// TestLink_PeerThatStopsReadingIsCutOff: a committee member accepts the
// stream of a party and never reads it. Writes to it must give up at their
// deadline and reset the stream instead of blocking the link forever.
func TestLink_PeerThatStopsReadingIsCutOff(t *testing.T) {
	nets := startNetworks(t, signers(t, 2), listenTCP, func(_ int, c *Config) { c.WriteTimeout = time.Second })
	a, h := nets[0], nets[1]
	streams := make(chan network.Stream, 16)
	h.host.SetStreamHandler(ProtocolID, func(s network.Stream) { streams <- s })
	big := string(make([]byte, tss.MaxPayloadSize))
	var sendErr error
	for range 64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		sendErr = a.Send(ctx, message(a, 1, big, h))
		cancel()
		if sendErr != nil {
			break
		}
	}
	if sendErr == nil {
		t.Fatal("64 messages of 2 MiB to a peer that does not read were all written")
	}
	t.Logf("Send to the stalled peer failed: %v", sendErr)
	var s network.Stream
	select {
	case s = <-streams:
	case <-time.After(waitTest):
		t.Fatal("the peer got no stream")
	}
	// The stream was given up by its writer: after what reached the
	// peer's buffers it ends with a reset, it does not just go quiet.
	buf := make([]byte, 1<<20)
	for {
		s.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := s.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.Is(err, network.ErrReset), errors.Is(err, io.EOF):
			return
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatal("the writer never gave up on a stream its peer does not read")
		default:
			t.Fatalf("read: %v", err)
		}
	}
}

// TestSecurity_TLSOnlyByDefault: a Noise responder signs with the identity
// key (an HSM operation) before it knows who the initiator is, so Noise is
// offered only when configured. A peer that speaks only Noise cannot
// connect to a default party, and can to one that opts in.
func TestSecurity_TLSOnlyByDefault(t *testing.T) {
	t.Run("default refuses Noise", func(t *testing.T) {
		nets := startNetworks(t, signers(t, 2), listenTCP, func(i int, c *Config) {
			if i == 1 {
				c.Security = []SecurityProtocol{SecurityNoise}
			}
		})
		a, b := nets[0], nets[1]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := b.Send(ctx, message(b, 1, "noise only", a))
		var ue *tss.UnreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("a Noise-only peer reached a default party: %v", err)
		}
		expectNothing(t, a)
	})
	t.Run("opt in", func(t *testing.T) {
		nets := startNetworks(t, signers(t, 2), listenTCP, func(i int, c *Config) {
			c.Security = []SecurityProtocol{SecurityTLS, SecurityNoise}
			if i == 1 {
				c.Security = []SecurityProtocol{SecurityNoise}
			}
		})
		a, b := nets[0], nets[1]
		mustSend(t, b, message(b, 1, "noise", a))
		mustReceive(t, a)
		if s, ok := a.ConnSecurity(b.Self()); !ok || s.Protocol != SecurityNoise {
			t.Fatalf("connection security %+v, want Noise", s)
		}
	})
}
