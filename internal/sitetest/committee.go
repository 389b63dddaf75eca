package sitetest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

// Committee is a set of sites, each running a [tss.Engine] over one in-memory
// network: the test bed for protocol tests. Every party has its own SoftHSM2
// token, sealed store and pre-parameter pool.
type Committee struct {
	t       T
	hub     *memnet.Hub
	Parties []*Party // sorted by ID, as every site orders a committee
	nextPP  int
}

// Party is one site of a [Committee].
type Party struct {
	*Site
	// Engine is the party's running engine.
	Engine *tss.Engine
	// Net is the party's network: memnet with a tamper hook.
	Net *TamperNet
	// Endpoint is the memnet endpoint under Net.
	Endpoint *memnet.Endpoint
	// Pool holds the party's Paillier pre-parameters.
	Pool *tss.PreParamsPool

	stop context.CancelFunc
	done chan struct{}
}

// NewCommittee starts n parties. cfg, if set, adjusts every party's engine
// configuration (defaults here: 60 s round timeout, 20 s join timeout).
func NewCommittee(t T, n int, cfg func(*tss.Config)) *Committee {
	t.Helper()
	c := &Committee{t: t, hub: memnet.NewHub(0)}
	for i := 0; i < n; i++ {
		site := NewSite(t)
		ep, err := c.hub.Join(site.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: site.Store})
		if err != nil {
			t.Fatal(err)
		}
		p := &Party{Site: site, Net: &TamperNet{Network: ep}, Endpoint: ep, Pool: pool}
		p.start(t, cfg)
		c.Parties = append(c.Parties, p)
	}
	slices.SortFunc(c.Parties, func(a, b *Party) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return c
}

func (p *Party) start(t T, cfgf func(*tss.Config)) {
	cfg := tss.Config{Network: p.Net, Store: p.Store, PreParams: p.Pool, RoundTimeout: 60 * time.Second, JoinTimeout: 20 * time.Second}
	if cfgf != nil {
		cfgf(&cfg)
	}
	eng, err := tss.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.Engine, p.stop, p.done = eng, cancel, done
	go func() { _ = eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Restart stops party i's engine and starts a new one over the same network
// and sealed store, as a restarted process would (nothing but the store
// survives). cfg adjusts the new engine's configuration.
func (c *Committee) Restart(i int, cfg func(*tss.Config)) *Party {
	p := c.Parties[i]
	p.stop()
	<-p.done
	p.start(c.t, cfg)
	return p
}

// RestoreStore stops party i's engine, restores its store from backup (a
// directory made by [Site.CopyStore]) and starts a new engine over it, as an
// operator restoring a backup and restarting the site would. The party's
// HSM token, with its ledgers, is untouched. cfg adjusts the new engine's
// configuration.
func (c *Committee) RestoreStore(i int, backup string, cfg func(*tss.Config)) *Party {
	c.t.Helper()
	p := c.Parties[i]
	p.stop()
	<-p.done
	p.ReplaceStore(c.t, backup)
	pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: p.Store})
	if err != nil {
		c.t.Fatal(err)
	}
	p.Pool = pool
	p.start(c.t, cfg)
	return p
}

// Stop stops party i's engine and leaves its network endpoint joined but
// unread, as a peer that stops reading would: messages to it queue up until
// its endpoint's queue is full. Restart brings the engine back.
func (c *Committee) Stop(i int) { c.Parties[i].Stop() }

// FeedPreParams gives each party n fixture pre-parameter sets, distinct
// across parties and calls (wrapping around the fixture files).
func (c *Committee) FeedPreParams(n int) {
	c.t.Helper()
	total := fixtures.PreParamsCount()
	if total == 0 {
		c.t.Fatal("no pre-parameter fixtures in testdata/preparams")
	}
	for _, p := range c.Parties {
		for i := 0; i < n; i++ {
			c.addPreParams(p, c.nextPP%total)
			c.nextPP++
		}
	}
}

// FeedPreParamsFixed gives party i fixture set i, so benchmarks compare like
// with like across runs.
func (c *Committee) FeedPreParamsFixed() {
	c.t.Helper()
	for i, p := range c.Parties {
		c.addPreParams(p, i)
	}
}

func (c *Committee) addPreParams(p *Party, i int) {
	pp, err := fixtures.PreParams(i)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.Pool.Add(context.Background(), pp); err != nil {
		c.t.Fatal(err)
	}
}

// IDs returns the parties' IDs, sorted.
func (c *Committee) IDs() []tss.PartyID {
	out := make([]tss.PartyID, len(c.Parties))
	for i, p := range c.Parties {
		out[i] = p.ID
	}
	return out
}

// Party returns the party with the given ID.
func (c *Committee) Party(id tss.PartyID) *Party {
	for _, p := range c.Parties {
		if p.ID == id {
			return p
		}
	}
	c.t.Fatalf("sitetest: no party %s", id)
	return nil
}

// Stop stops the party's engine. Its network endpoint stays open, so a test
// can go on speaking for the party on the wire (a malicious party that
// keeps copies of its state, say).
func (p *Party) Stop() {
	p.stop()
	<-p.done
}

// Tamper installs f on the party's outgoing messages (nil removes it).
func (p *Party) Tamper(f func(m *tss.Message) []*tss.Message) { p.Net.SetTamper(f) }

// TamperNet is the network of a party that may misbehave: an honest
// engine whose outgoing messages pass through a function that can rewrite,
// drop or add messages in the real wire format.
type TamperNet struct {
	tss.Network
	mu     sync.Mutex
	tamper func(m *tss.Message) []*tss.Message
}

// SetTamper installs f (nil restores honest sending).
func (n *TamperNet) SetTamper(f func(m *tss.Message) []*tss.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tamper = f
}

// Send passes m through the tamper function, if any, and sends the result.
func (n *TamperNet) Send(ctx context.Context, m *tss.Message) error {
	n.mu.Lock()
	f := n.tamper
	n.mu.Unlock()
	if f == nil {
		return n.Network.Send(ctx, m)
	}
	for _, mm := range f(m) {
		if err := n.Network.Send(ctx, mm); err != nil {
			return err
		}
	}
	return nil
}
