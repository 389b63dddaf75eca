package nettest_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/keyquorum/keyquorum/internal/nettest"
	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

var hubCount atomic.Int64

func TestMemnet(t *testing.T) {
	nettest.Run(t, nettest.Harness{
		Networks: func(t *testing.T, n int, opt nettest.Options) []tss.Network {
			hub := memnet.NewHub(opt.QueueSize)
			id := hubCount.Add(1)
			out := make([]tss.Network, n)
			for i := range n {
				e, err := hub.Join(tss.PartyID(fmt.Sprintf("hub%d-party%d", id, i)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				out[i] = e
			}
			return out
		},
		Close:        func(n tss.Network) error { return n.(*memnet.Endpoint).Close() },
		ErrClosed:    memnet.ErrClosed,
		SpoofedDrops: func(n tss.Network) uint64 { return n.(*memnet.Endpoint).Spoofed() },
		Outsider:     func(t *testing.T) tss.PartyID { return "not-on-any-hub" },
		MaxBuffered:  8,
	})
}
