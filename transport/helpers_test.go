package transport

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// listen modes for test networks.
type listenMode int

const (
	listenTCP listenMode = iota + 1
	listenQUIC
	listenBoth
)

func (m listenMode) addrs() []string {
	switch m {
	case listenTCP:
		return []string{"/ip4/127.0.0.1/tcp/0"}
	case listenQUIC:
		return []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	default:
		return []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
}

// softwareKey is an ordinary ECDSA key; *ecdsa.PrivateKey is a
// crypto.Signer like the HSM identity.
func softwareKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KQ_TRANSPORT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// committee builds one Peer per signer, without addresses.
func committee(t testing.TB, signers []crypto.Signer) []Peer {
	t.Helper()
	peers := make([]Peer, len(signers))
	for i, s := range signers {
		k, err := NewSignerKey(s)
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = Peer{ID: k.PeerID()}
	}
	return peers
}

// startNetworks starts one network per signer, all in one committee, and
// tells each the others' addresses. mutate may adjust each config.
func startNetworks(t testing.TB, signers []crypto.Signer, mode listenMode, mutate func(i int, c *Config)) []*Network {
	t.Helper()
	peers := committee(t, signers)
	nets := make([]*Network, len(signers))
	for i, s := range signers {
		cfg := Config{
			Identity:    s,
			Peers:       peers,
			ListenAddrs: mode.addrs(),
			BackoffMin:  20 * time.Millisecond,
			BackoffMax:  200 * time.Millisecond,
			Logger:      testLogger(t),
		}
		if mutate != nil {
			mutate(i, &cfg)
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatalf("New for party %d: %v", i, err)
		}
		t.Cleanup(func() { n.Close() })
		nets[i] = n
	}
	connectAll(t, nets)
	return nets
}

// connectAll gives every network the addresses of every other.
func connectAll(t testing.TB, nets []*Network) {
	t.Helper()
	for _, n := range nets {
		for _, o := range nets {
			if o != n {
				if err := n.AddAddrs(o.Self(), o.Addrs()...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func signers(t testing.TB, n int) []crypto.Signer {
	out := make([]crypto.Signer, n)
	for i := range out {
		out[i] = softwareKey(t)
	}
	return out
}

func asTSS(nets []*Network) []tss.Network {
	out := make([]tss.Network, len(nets))
	for i, n := range nets {
		out[i] = n
	}
	return out
}

// waitTest bounds waits for things that must happen; reaching it means a
// bug, not a slow machine.
const waitTest = 20 * time.Second

func bigOne() *big.Int { return big.NewInt(1) }

// sendUntilDelivered sends m from a to b until b receives it, for tests
// where the first attempts may be lost (a restarted peer, a closed
// connection).
func sendUntilDelivered(ctx context.Context, a, b *Network, m *tss.Message) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.Send(sctx, m)
		cancel()
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			got, err := b.Receive(rctx)
			cancel()
			if err == nil && got.Session == m.Session && got.Round == m.Round {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("message from %s never reached %s: %w (last send error: %v)", a.Self(), b.Self(), ctx.Err(), err)
		}
	}
}

func p384Key(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
