package transport

import (
	"testing"

	"github.com/keyquorum/keyquorum/internal/nettest"
	"github.com/keyquorum/keyquorum/tss"
)

func harness(mode listenMode) nettest.Harness {
	return nettest.Harness{
		Networks: func(t *testing.T, n int, opt nettest.Options) []tss.Network {
			return asTSS(startNetworks(t, signers(t, n), mode, func(_ int, c *Config) {
				c.InboxSize = opt.QueueSize
				c.SendQueueSize = opt.QueueSize
			}))
		},
		Close:        func(n tss.Network) error { return n.(*Network).Close() },
		ErrClosed:    ErrClosed,
		SpoofedDrops: func(n tss.Network) uint64 { return n.(*Network).Stats().Dropped[DropSpoofedSender] },
		Outsider: func(t *testing.T) tss.PartyID {
			k, err := NewSignerKey(softwareKey(t))
			if err != nil {
				t.Fatal(err)
			}
			return k.PartyID()
		},
		MaxBuffered: 64,
	}
}

func TestConformance_TCP(t *testing.T)  { nettest.Run(t, harness(listenTCP)) }
func TestConformance_QUIC(t *testing.T) { nettest.Run(t, harness(listenQUIC)) }
