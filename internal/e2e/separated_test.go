package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/netns"
	"github.com/keyquorum/keyquorum/internal/proctest"
)

// linkDelay is the netem delay on each site's link when the kernel has
// sch_netem: a round trip between two sites then takes at least 50 ms.
const linkDelay = 25 * time.Millisecond

// TestSeparatedHosts runs the three kqnode sites in three network
// namespaces joined by a bridge (internal/netns), so that each site has
// its own network stack and address and they reach each other only over
// veth links, with 25 ms of tc netem delay each way when the kernel has
// sch_netem. It runs a 2-of-3 keygen, then GG18 signing, GG20 presigning
// and GG20 one-round signing with every pair, and logs each operation's
// latency as the client saw it and as the initiating site measured it.
//
// Without netem the namespaces are still used, without delay, and the
// test says so. It needs root and iproute2 and skips otherwise.
// Namespaces, links and processes are removed when the test ends, passed
// or failed.
func TestSeparatedHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, network-namespace test")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	delay := linkDelay
	if err := netns.NetemAvailable(); err != nil {
		t.Logf("NO DELAY APPLIED: cannot add %v of tc netem delay per link (%v); the sites still run in separate namespaces, without delay", linkDelay, err)
		delay = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := kqnodeBinary(t)

	// Cleanups run last-registered first: processes (proctest) stop, then
	// the namespaces go (netns.Setup), then this check runs.
	var topo *netns.Topology
	t.Cleanup(func() { checkNamespacesRemoved(t, topo) })
	topo = netns.Setup(t, netns.Options{Parties: 3, Delay: delay})
	cluster := proctest.New(t)
	t.Logf("namespaces %s (hub %s), %v of delay per link", nsNames(topo), topo.Hub, topo.Delay)

	root := t.TempDir()
	var sites []*site
	for i, name := range []string{"a", "b", "c"} {
		p := topo.Parties[i]
		listen := fmt.Sprintf("/ip4/%s/tcp/4001", p.Addr)
		sites = append(sites, newSite(t, bin, root, name, listen, p.Namespace, 3+i))
	}
	peers := writePeers(t, filepath.Join(root, "peers.json"), sites...)
	for _, s := range sites {
		s.start(ctx, t, cluster, peers)
	}
	for _, s := range sites {
		st := s.status(t)
		if want := "/ip4/" + topo.Parties[slices.Index(sites, s)].Addr.String() + "/tcp/4001"; !slices.Contains(st.ListenAddrs, want) {
			t.Fatalf("%s listens on %v, want %s", s.name, st.ListenAddrs, want)
		}
	}

	k := keygen(t, sites[0], sites...)
	logSiteTime(t, sites[0], "keygen")
	l := newLedger()
	for _, p := range pairs(sites) {
		k.sign(t, l, "gg18", p...)
		logSiteTime(t, p[0], "gg18 sign")
	}
	for _, p := range pairs(sites) {
		// Each site of the pair signs from its own pool.
		for _, signers := range [][]*site{{p[0], p[1]}, {p[1], p[0]}} {
			k.presign(t, 2, signers...)
			logSiteTime(t, signers[0], "presign 2")
			for range 2 {
				k.sign(t, l, "gg20", signers...)
				logSiteTime(t, signers[0], "gg20 sign")
			}
			k.samePools(t, 0, signers...)
		}
	}
	k.sign(t, l, "gg18", sites...)
	logSiteTime(t, sites[0], "gg18 sign by abc")

	// The connections between the sites ran over the namespaces' links.
	for _, s := range sites {
		for _, p := range s.status(t).Peers {
			if p.Reachable == nil || !*p.Reachable || p.LastSeen == nil {
				t.Fatalf("%s's view of peer %s: %+v", s.name, p.PeerID, p)
			}
			t.Logf("%s to %s: %v, secured by %s", s.name, p.PeerID, p.Addrs, p.Security)
		}
	}
	t.Logf("%d GG18 and %d GG20 signatures across namespaces verified, no r twice (delay per link %v)", l.gg18, l.gg20, topo.Delay)
}

// logSiteTime logs how long the site's latest finished operation took by
// its own clock (without the client's process start).
func logSiteTime(t *testing.T, s *site, what string) {
	t.Helper()
	st := s.status(t)
	if len(st.Finished) == 0 {
		t.Fatalf("%s reports no finished operation after %s", s.name, what)
	}
	op := st.Finished[len(st.Finished)-1]
	if op.Error != "" {
		t.Fatalf("%s's latest operation failed: %+v", s.name, op)
	}
	t.Logf("  %s at %s: %d ms (%s %s)", what, s.name, op.ElapsedMS, op.Kind, op.Detail)
}

func nsNames(topo *netns.Topology) []string {
	var out []string
	for _, p := range topo.Parties {
		out = append(out, p.Namespace)
	}
	return out
}

// checkNamespacesRemoved fails the test if a namespace of topo is still
// there once every cleanup ran.
func checkNamespacesRemoved(t *testing.T, topo *netns.Topology) {
	if topo == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	left, err := netns.Namespaces(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	for _, name := range append(nsNames(topo), topo.Hub) {
		if slices.Contains(left, name) {
			t.Errorf("namespace %s is still there after the test", name)
		}
	}
}
