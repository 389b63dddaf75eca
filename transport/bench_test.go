package transport

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

// benchPair returns two connected networks of one kind.
func benchPair(b *testing.B, kind string) (tss.Network, tss.Network) {
	b.Helper()
	if kind == "memnet" {
		hub := memnet.NewHub(0)
		x, _ := hub.Join("a")
		y, _ := hub.Join("b")
		b.Cleanup(func() { x.Close(); y.Close() })
		return x, y
	}
	mode, sec := listenTCP, []SecurityProtocol{SecurityTLS}
	switch kind {
	case "tcp-noise":
		sec = []SecurityProtocol{SecurityNoise}
	case "quic":
		mode, sec = listenQUIC, nil
	}
	nets := startNetworks(b, signers(b, 2), mode, func(_ int, c *Config) { c.Security = sec })
	// Open the streams both ways before timing.
	ctx := context.Background()
	for _, p := range [][2]*Network{{nets[0], nets[1]}, {nets[1], nets[0]}} {
		if err := sendUntilDelivered(ctx, p[0], p[1], message(p[0], 0, "warm up", p[1])); err != nil {
			b.Fatal(err)
		}
	}
	return nets[0], nets[1]
}

var benchKinds = []string{"memnet", "tcp-tls", "tcp-noise", "quic"}

// BenchmarkRoundTrip measures one 100-byte message from a to b and back.
func BenchmarkRoundTrip(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			x, y := benchPair(b, kind)
			ctx := context.Background()
			ping := &tss.Message{Type: tss.MsgProtocol, From: x.Self(), To: []tss.PartyID{y.Self()}, Round: 1, Payload: make([]byte, 100)}
			pong := &tss.Message{Type: tss.MsgProtocol, From: y.Self(), To: []tss.PartyID{x.Self()}, Round: 1, Payload: make([]byte, 100)}
			errc := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := y.Receive(ctx); err != nil {
						errc <- err
						return
					}
					if err := y.Send(ctx, pong); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			b.ResetTimer()
			for range b.N {
				if err := x.Send(ctx, ping); err != nil {
					b.Fatal(err)
				}
				if _, err := x.Receive(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkThroughput measures one-way streaming of small messages from
// one sending goroutine to a receiver that reads as fast as it can.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{100, 4096} {
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("%s/%dB", kind, size), func(b *testing.B) {
				x, y := benchPair(b, kind)
				ctx := context.Background()
				m := &tss.Message{Type: tss.MsgProtocol, From: x.Self(), To: []tss.PartyID{y.Self()}, Round: 1, Payload: make([]byte, size)}
				errc := make(chan error, 1)
				b.SetBytes(int64(size))
				b.ResetTimer()
				go func() {
					for range b.N {
						if _, err := y.Receive(ctx); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				for range b.N {
					if err := x.Send(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
