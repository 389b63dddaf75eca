package tss_test

import (
	"context"
	"fmt"
	"github.com/keyquorum/keyquorum/tss"
	"io/fs"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/transport/memnet"
)

// mapStore is a scaffold used only until the HSM-backed store is wired in.
type mapStore struct {
	mu sync.Mutex
	m  map[string]map[uint64][]byte
}

func newMapStore() *mapStore { return &mapStore{m: map[string]map[uint64][]byte{}} }

func (s *mapStore) Put(_ context.Context, kind, id string, v uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := kind + "/" + id
	if s.m[k] == nil {
		s.m[k] = map[uint64][]byte{}
	}
	s.m[k][v] = slices.Clone(data)
	return nil
}
func (s *mapStore) Get(_ context.Context, kind, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.m[kind+"/"+id]
	if len(vs) == 0 {
		return nil, 0, fs.ErrNotExist
	}
	var best uint64
	for v := range vs {
		if v > best {
			best = v
		}
	}
	return slices.Clone(vs[best]), best, nil
}
func (s *mapStore) GetVersion(_ context.Context, kind, id string, v uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[kind+"/"+id][v]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return slices.Clone(d), nil
}
func (s *mapStore) Versions(_ context.Context, kind, id string) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.m[kind+"/"+id]
	if len(vs) == 0 {
		return nil, fs.ErrNotExist
	}
	var out []uint64
	for v := range vs {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
func (s *mapStore) Prune(_ context.Context, kind, id string, keep uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.m[kind+"/"+id] {
		if v < keep {
			delete(s.m[kind+"/"+id], v)
		}
	}
	return nil
}
func (s *mapStore) Delete(_ context.Context, kind, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, kind+"/"+id)
	return nil
}
func (s *mapStore) DeleteMany(ctx context.Context, kind string, ids []string) error {
	for _, id := range ids {
		_ = s.Delete(ctx, kind, id)
	}
	return nil
}
func (s *mapStore) List(_ context.Context, kind string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, vs := range s.m {
		if len(vs) > 0 && len(k) > len(kind) && k[:len(kind)+1] == kind+"/" {
			out = append(out, k[len(kind)+1:])
		}
	}
	sort.Strings(out)
	return out, nil
}

type testParty struct {
	net   *tamperNet
	id    tss.PartyID
	eng   *tss.Engine
	ep    *memnet.Endpoint
	store tss.Store
	pool  *tss.PreParamsPool
	stop  context.CancelFunc
	done  chan error
}

type cluster struct {
	t       *testing.T
	hub     *memnet.Hub
	parties []*testParty
	nextPP  int
}

func newCluster(t *testing.T, n int, cfg func(*tss.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, hub: memnet.NewHub(0)}
	for i := 0; i < n; i++ {
		c.addParty(tss.PartyID(fmt.Sprintf("party-%c", 'a'+i)), cfg)
	}
	return c
}

func (c *cluster) addParty(id tss.PartyID, cfgf func(*tss.Config)) *testParty {
	t := c.t
	ep, err := c.hub.Join(id)
	if err != nil {
		t.Fatal(err)
	}
	st := newMapStore()
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
	p := &testParty{net: tn, id: id, eng: eng, ep: ep, store: st, pool: pool, stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-p.done
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
