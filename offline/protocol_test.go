package offline

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss"
)

// typeLog is a tss.Network that records the types of the messages its
// engine sends, to tell what the bundles of a phase carried.
type typeLog struct {
	*Network
	mu    sync.Mutex
	types []string
}

func (l *typeLog) Send(ctx context.Context, m *tss.Message) error {
	l.mu.Lock()
	l.types = append(l.types, fmt.Sprintf("%s/r%d", m.Type, m.Round))
	l.mu.Unlock()
	return l.Network.Send(ctx, m)
}

func (l *typeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.types
	l.types = nil
	return out
}

// bundleRecord is one bundle the courier carried.
type bundleRecord struct {
	from, to tss.PartyID
	size     int
	h        Header
}

// courier carries every bundle from each site to each other site until
// stopped, as an operator moving files would, and records them.
type courier struct {
	nets []*Network
	mu   sync.Mutex
	log  []bundleRecord
	err  error
}

func (c *courier) run(ctx context.Context) {
	for ctx.Err() == nil {
		moved := false
		for _, from := range c.nets {
			for _, to := range c.nets {
				if from == to {
					continue
				}
				b, err := from.Export(ctx, to.Self())
				if err == nil && b != nil {
					var h Header
					h, err = to.Import(ctx, b)
					c.mu.Lock()
					c.log = append(c.log, bundleRecord{from: from.Self(), to: to.Self(), size: len(b), h: h})
					c.mu.Unlock()
					moved = true
				}
				if err != nil && ctx.Err() == nil {
					c.mu.Lock()
					c.err = err
					c.mu.Unlock()
					return
				}
			}
		}
		if !moved {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func (c *courier) take() ([]bundleRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.log
	c.log = nil
	return out, c.err
}

func describe(recs []bundleRecord, names map[tss.PartyID]string) string {
	var sb strings.Builder
	total := 0
	for _, r := range recs {
		rounds := map[uint32]bool{}
		for _, c := range r.h.Contents {
			rounds[c.Round] = true
		}
		rs := slices.Sorted(func(yield func(uint32) bool) {
			for k := range rounds {
				if !yield(k) {
					return
				}
			}
		})
		fmt.Fprintf(&sb, "\n  %s->%s seq %d: %d bytes, %d messages, %d sessions-rounds, rounds %v", names[r.from], names[r.to], r.h.Sequence, r.size, r.h.Messages, len(r.h.Contents), rs)
		total += r.size
	}
	fmt.Fprintf(&sb, "\n  total %d bytes in %d bundles", total, len(recs))
	return sb.String()
}

// TestProtocol_GG20OverFiles runs a 2-of-2 GG20 keygen, a presign batch
// and an online signature between two SoftHSM2-backed sites whose engines
// speak only through bundle files, and reports the bundle sizes.
func TestProtocol_GG20OverFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("GG20 over files skipped with -short")
	}
	sites := newSites(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var nets []*Network
	var logs []*typeLog
	var engines []*tss.Engine
	names := map[tss.PartyID]string{}
	for i, s := range sites {
		n := newNet(t, s, sites)
		names[n.Self()] = string(rune('A' + i))
		pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: s.Store})
		if err != nil {
			t.Fatal(err)
		}
		pp, err := fixtures.PreParams(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := pool.Add(ctx, pp); err != nil {
			t.Fatal(err)
		}
		tl := &typeLog{Network: n}
		eng, err := tss.New(tss.Config{Network: tl, Store: s.Store, PreParams: pool, RoundTimeout: 2 * time.Minute, JoinTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ectx, ecancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = eng.Run(ectx); close(done) }()
		t.Cleanup(func() { ecancel(); <-done })
		nets, logs, engines = append(nets, n), append(logs, tl), append(engines, eng)
	}
	c := &courier{nets: nets}
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan struct{})
	go func() { c.run(cctx); close(cdone) }()
	defer func() { ccancel(); <-cdone }()

	phase := func(name string) {
		t.Helper()
		recs, err := c.take()
		if err != nil {
			t.Fatalf("%s: courier: %v", name, err)
		}
		var types []string
		for i, l := range logs {
			types = append(types, fmt.Sprintf("%s sent %v", names[nets[i].Self()], l.take()))
		}
		t.Logf("%s: %s%s", name, strings.Join(types, "; "), describe(recs, names))
	}

	ids := []tss.PartyID{nets[0].Self(), nets[1].Self()}
	slices.Sort(ids)
	start := time.Now()
	info, err := engines[0].Keygen(ctx, tss.KeygenRequest{Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen over files: %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(50 * time.Millisecond) // let the last bundles settle
	phase("keygen")

	const count = 8
	start = time.Now()
	res, err := engines[0].Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: ids, Count: count, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("presign of %d over files: %v (%+v)", count, time.Since(start).Round(time.Millisecond), res)
	time.Sleep(50 * time.Millisecond)
	phase(fmt.Sprintf("presign batch of %d", count))

	d := sha256.Sum256([]byte("cold site"))
	start = time.Now()
	sig, err := engines[0].SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: ids, Digests: [][]byte{d[:]}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.Verify(); err != nil {
		t.Fatalf("the signature made over files does not verify: %v", err)
	}
	t.Logf("online signature over files: %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(50 * time.Millisecond)
	phase("online signature")
}
