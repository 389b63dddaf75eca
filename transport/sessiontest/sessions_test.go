// Package sessiontest runs keyquorum's protocol engine (package tss) over
// the libp2p transport: every party has its own SoftHSM2 token holding its
// identity key and seal key, its own sealed store, and its own libp2p host
// on 127.0.0.1.
package sessiontest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

func TestMain(m *testing.M) {
	code := sitetest.Main(m, 6)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type party struct {
	site *sitetest.Site
	net  tss.Network
	eng  *tss.Engine
	pool *tss.PreParamsPool
}

// newSites builds n sites: token, identity, seal key and store each.
func newSites(t testing.TB, n int) []*sitetest.Site {
	t.Helper()
	sites := make([]*sitetest.Site, n)
	for i := range sites {
		sites[i] = sitetest.NewSite(t)
	}
	return sites
}

// startParties starts an engine per site, talking over libp2p (kind
// "libp2p": TCP and QUIC listeners, the dialer picks QUIC) or memnet (kind
// "memnet"). stop ends the engines and closes the networks; it also runs at
// cleanup.
func startParties(t testing.TB, sites []*sitetest.Site, kind string) (ps []*party, stop func()) {
	t.Helper()
	var peers []transport.Peer
	for _, s := range sites {
		id, err := transport.PeerIDFromParty(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, transport.Peer{ID: id})
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		stops = nil
	}
	t.Cleanup(stop)
	hub := memnet.NewHub(0)
	var libp2pNets []*transport.Network
	for _, s := range sites {
		p := &party{site: s}
		switch kind {
		case "memnet":
			ep, err := hub.Join(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, func() { ep.Close() })
			p.net = ep
		case "libp2p", "libp2p-tcp", "libp2p-quic":
			listen := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
			switch kind {
			case "libp2p-tcp":
				listen = listen[:1]
			case "libp2p-quic":
				listen = listen[1:]
			}
			ln, err := transport.New(transport.Config{Identity: s.Identity, Peers: peers, ListenAddrs: listen})
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, func() { ln.Close() })
			libp2pNets = append(libp2pNets, ln)
			p.net = ln
		default:
			t.Fatalf("unknown network kind %q", kind)
		}
		ps = append(ps, p)
	}
	for _, a := range libp2pNets {
		for _, b := range libp2pNets {
			if a != b {
				if err := a.AddAddrs(b.Self(), b.Addrs()...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, p := range ps {
		pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: p.site.Store})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := tss.New(tss.Config{Network: p.net, Store: p.site.Store, PreParams: pool,
			RoundTimeout: time.Minute, JoinTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { eng.Run(ctx); close(done) }()
		stops = append(stops, func() { cancel(); <-done })
		p.eng, p.pool = eng, pool
	}
	slices.SortFunc(ps, func(a, b *party) int { return strings.Compare(string(a.site.ID), string(b.site.ID)) })
	return ps, stop
}

// feedPreParams gives each party one fixture set of Paillier pre-parameters.
func feedPreParams(t testing.TB, ps []*party) {
	t.Helper()
	for i, p := range ps {
		pp, err := fixtures.PreParams(i % fixtures.PreParamsCount())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.pool.Add(context.Background(), pp); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(ps []*party) []tss.PartyID {
	var out []tss.PartyID
	for _, p := range ps {
		out = append(out, p.site.ID)
	}
	return out
}

// TestKeygenAndSign_2of3 generates a 2-of-3 key and signs with every pair
// of parties, every message going over libp2p between hosts whose
// identities are keys in their own SoftHSM2 tokens.
func TestKeygenAndSign_2of3(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen takes tens of seconds under the race detector")
	}
	ps, _ := startParties(t, newSites(t, 3), "libp2p")
	feedPreParams(t, ps)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	info, err := ps[0].eng.Keygen(ctx, tss.KeygenRequest{Parties: ids(ps), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen over libp2p took %v", time.Since(start))
	for _, p := range ps {
		k, err := p.eng.Key(ctx, info.ID)
		if err != nil || string(k.PublicKey) != string(info.PublicKey) {
			t.Fatalf("%s: key %v, %v", p.site.ID, k, err)
		}
	}
	digest := sha256.Sum256([]byte("withdraw 1 BTC over libp2p"))
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		signers := []tss.PartyID{ps[pair[0]].site.ID, ps[pair[1]].site.ID}
		start := time.Now()
		sig, err := ps[pair[1]].eng.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers})
		if err != nil {
			t.Fatalf("sign with %v: %v", pair, err)
		}
		t.Logf("sign with parties %v over libp2p took %v", pair, time.Since(start))
		if err := sig.Verify(); err != nil {
			t.Fatal(err)
		}
		if string(sig.PublicKey) != string(info.PublicKey) {
			t.Fatal("signature under another key")
		}
	}
	for _, p := range ps {
		sec, ok := p.net.(*transport.Network).ConnSecurity(ps[(slices.Index(ps, p)+1)%3].site.ID)
		if !ok || !sec.PostQuantum {
			t.Fatalf("%s: connection security %+v", p.site.ID, sec)
		}
	}
}

// BenchmarkSign_2of3 signs one digest with two of three parties (GG18
// signing through the tss engine) in one process, over memnet and over
// libp2p on loopback, with the same key and stores: the difference is
// what the network stack adds per signature.
func BenchmarkSign_2of3(b *testing.B) {
	sites := newSites(b, 3)
	ps, stop := startParties(b, sites, "memnet")
	feedPreParams(b, ps)
	ctx := context.Background()
	info, err := ps[0].eng.Keygen(ctx, tss.KeygenRequest{Parties: ids(ps), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	current := "memnet"
	// memnet twice, first and last, to see the drift of a shared machine.
	for _, kind := range []string{"memnet", "libp2p-tcp", "libp2p-quic", "memnet"} {
		if kind != current {
			stop()
			ps, stop = startParties(b, sites, kind)
			current = kind
		}
		b.Run(kind, func(b *testing.B) {
			signers := []tss.PartyID{ps[0].site.ID, ps[1].site.ID}
			for range b.N {
				if _, err := ps[0].eng.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
