package offline

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/tss"
)

func TestMain(m *testing.M) {
	os.Exit(sitetest.Main(m, 8))
}

// testSite is a site with a SoftHSM2 token holding its identity, seal and
// HPKE keys, and a sealed store.
type testSite struct {
	*sitetest.Site
	HPKE *hsmshare.ECDHKey
}

func newSites(t testing.TB, n int) []*testSite {
	t.Helper()
	out := make([]*testSite, n)
	for i := range out {
		s := sitetest.NewSite(t)
		k, err := s.Token.CreateECDHKey(context.Background(), s.Identity.Label()+".hpke")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &testSite{Site: s, HPKE: k}
	}
	return out
}

func (s *testSite) peer() Peer {
	return Peer{Identity: s.Identity.PublicKey(), HPKE: s.HPKE.PublicKey()}
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newNet opens the network of s in a committee of members (s may be one of
// them) and closes it when the test ends.
func newNet(t testing.TB, s *testSite, members []*testSite, mutate ...func(*Config)) *Network {
	t.Helper()
	cfg := Config{Committee: "cold-1", Identity: s.Identity, HPKEKey: s.HPKE, Store: s.Store}
	for _, m := range members {
		cfg.Peers = append(cfg.Peers, m.peer())
	}
	for _, f := range mutate {
		f(&cfg)
	}
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func withClock(c *clock) func(*Config) { return func(cfg *Config) { cfg.Now = c.Now } }

// msg is a protocol message from n to the given parties.
func msg(n *Network, session byte, round uint32, payload string, to ...tss.PartyID) *tss.Message {
	var s tss.SessionID
	s[0] = session
	return &tss.Message{Session: s, Type: tss.MsgProtocol, From: n.Self(), To: to, Round: round, Payload: []byte(payload)}
}
