package tss_test

import (
	"os"
	"strings"

	"go.uber.org/goleak"

	"context"
	"fmt"
	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/tss"
	"slices"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/transport/memnet"
)

type testParty struct {
	site  *sitetest.Site
	net   *tamperNet
	id    tss.PartyID
	eng   *tss.Engine
	ep    *memnet.Endpoint
	store tss.Store
	pool  *tss.PreParamsPool
	stop  context.CancelFunc
	done  chan struct{} // closed when the engine's Run returns
}

type cluster struct {
	t       testing.TB
	hub     *memnet.Hub
	parties []*testParty
	nextPP  int
}

func newCluster(t testing.TB, n int, cfg func(*tss.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, hub: memnet.NewHub(0)}
	for i := 0; i < n; i++ {
		c.addParty(cfg)
	}
	// Order parties by ID, as every site orders a committee.
	slices.SortFunc(c.parties, func(a, b *testParty) int { return strings.Compare(string(a.id), string(b.id)) })
	return c
}

func (c *cluster) addParty(cfgf func(*tss.Config)) *testParty {
	t := c.t
	site := sitetest.NewSite(t)
	id := site.ID
	ep, err := c.hub.Join(id)
	if err != nil {
		t.Fatal(err)
	}
	st := site.Store
	pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	tn := &tamperNet{Network: ep}
	cfg := tss.Config{Network: tn, Store: st, PreParams: pool, RoundTimeout: 60 * time.Second, JoinTimeout: 20 * time.Second}
	if cfgf != nil {
		cfgf(&cfg)
	}
	eng, err := tss.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &testParty{site: site, net: tn, id: id, eng: eng, ep: ep, store: st, pool: pool, stop: cancel, done: make(chan struct{})}
	done := p.done
	go func() { _ = eng.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ep.Close()
	})
	c.parties = append(c.parties, p)
	return p
}

// feedPreParams gives each party n fixture pre-parameter sets (distinct
// across parties and calls, wrapping around the fixture files).
func (c *cluster) feedPreParams(n int) {
	c.t.Helper()
	total := fixtures.PreParamsCount()
	if total == 0 {
		c.t.Fatal("no pre-parameter fixtures in testdata/preparams")
	}
	for _, p := range c.parties {
		for i := 0; i < n; i++ {
			pp, err := fixtures.PreParams(c.nextPP % total)
			if err != nil {
				c.t.Fatal(err)
			}
			c.nextPP++
			if err := p.pool.Add(context.Background(), pp); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func (c *cluster) ids() []tss.PartyID {
	var out []tss.PartyID
	for _, p := range c.parties {
		out = append(out, p.id)
	}
	return out
}

// tamper installs f on the party's outgoing messages.
func (p *testParty) tamper(f func(m *tss.Message) []*tss.Message) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.tamper = f
}

func TestMain(m *testing.M) {
	code := sitetest.Main(m, 40)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// party returns the test party with the given ID.
func (c *cluster) party(id tss.PartyID) *testParty {
	for _, p := range c.parties {
		if p.id == id {
			return p
		}
	}
	c.t.Fatalf("no party %s", id)
	return nil
}

// restartWith stops party i's engine and starts a new one on the same
// network and store with a changed configuration.
func (c *cluster) restartWith(i int, cfgf func(*tss.Config)) *testParty {
	t := c.t
	p := c.parties[i]
	p.stop()
	<-p.done
	cfg := tss.Config{Network: p.net, Store: p.store, PreParams: p.pool, RoundTimeout: 60 * time.Second, JoinTimeout: 20 * time.Second}
	cfgf(&cfg)
	eng, err := tss.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.eng, p.stop, p.done = eng, cancel, make(chan struct{})
	done := p.done
	go func() { _ = eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// feedPreParamsFixed gives party i fixture set i, so benchmarks compare like
// with like across runs.
func (c *cluster) feedPreParamsFixed() {
	c.t.Helper()
	for i, p := range c.parties {
		pp, err := fixtures.PreParams(i)
		if err != nil {
			c.t.Fatal(err)
		}
		if err := p.pool.Add(context.Background(), pp); err != nil {
			c.t.Fatal(err)
		}
	}
}
