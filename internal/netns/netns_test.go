package netns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/netns"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

const (
	envIndex  = "KQ_NODE_INDEX"
	envShared = "KQ_NODE_SHARED"
	envAddr   = "KQ_NODE_ADDR"
	rounds    = 20
)

func TestMain(m *testing.M) {
	if c, ok := proctest.FromEnv(); ok && c.Role == "node" {
		if err := node(c); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// node is one party in its own namespace: an identity in its own SoftHSM2
// token, a libp2p network on its namespace address. Party 0 measures round
// trips to the others; the others echo every message back.
func node(c proctest.Child) error {
	ctx := context.Background()
	idx, _ := strconv.Atoi(os.Getenv(envIndex))
	tok, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: c.Module, TokenLabel: c.TokenLabel, PINSource: "file:" + c.PINFile})
	if err != nil {
		return err
	}
	defer tok.Close()
	id, err := tok.CreateIdentity(ctx, "identity")
	if err != nil {
		return err
	}
	self, err := transport.PartyIDFromPublicKey(id.PublicKey())
	if err != nil {
		return err
	}
	fmt.Println("PEER", self)

	peerFile := filepath.Join(os.Getenv(envShared), "peers.json")
	var peers []transport.Peer
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if peers, err = transport.LoadPeerFile(peerFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
	}
	addr := os.Getenv(envAddr)
	n, err := transport.New(transport.Config{Identity: id, Peers: peers,
		ListenAddrs: []string{"/ip4/" + addr + "/tcp/4001", "/ip4/" + addr + "/udp/4001/quic-v1"}})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Println("LISTENING", n.Addrs())

	if idx != 0 {
		for {
			m, err := n.Receive(ctx)
			if err != nil {
				return err
			}
			m.To, m.From = []tss.PartyID{m.From}, self
			if err := n.Send(ctx, m); err != nil {
				return err
			}
		}
	}
	for _, p := range peers {
		if p.PartyID() == self {
			continue
		}
		ping := func(round uint32) (time.Duration, error) {
			m := &tss.Message{Type: tss.MsgProtocol, From: self, To: []tss.PartyID{p.PartyID()}, Round: round, Payload: make([]byte, 100)}
			start := time.Now()
			if err := n.Send(ctx, m); err != nil {
				return 0, err
			}
			r, err := n.Receive(ctx)
			if err != nil {
				return 0, err
			}
			if r.From != p.PartyID() || r.Round != round {
				return 0, fmt.Errorf("echo from %s round %d, want %s round %d", r.From, r.Round, p.PartyID(), round)
			}
			return time.Since(start), nil
		}
		first, err := ping(0) // includes connecting, handshake and identify
		if err != nil {
			return err
		}
		var rtts []time.Duration
		for i := range rounds {
			d, err := ping(uint32(i + 1))
			if err != nil {
				return err
			}
			rtts = append(rtts, d)
		}
		slices.Sort(rtts)
		sec, _ := n.ConnSecurity(p.PartyID())
		fmt.Printf("RTT %s first=%d min=%d p50=%d transport=%s kex=%s\n", p.PartyID(), first.Microseconds(),
			rtts[0].Microseconds(), rtts[len(rtts)/2].Microseconds(), sec.Transport, sec.KeyExchange)
	}
	fmt.Println("DONE")
	select {}
}

// TestTopology_RoundTripBetweenNamespaces starts three parties, each an OS
// process in its own network namespace with its own SoftHSM2 token, and
// measures the round trip of one 100-byte message between them, without
// added delay and with 25 ms of netem delay on each party's link.
func TestTopology_RoundTripBetweenNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, network-namespace test")
	}
	// Subtest names become temp directory names, and SoftHSM2's
	// configuration file cannot hold a path with "=" in it.
	for _, delay := range []time.Duration{0, 25 * time.Millisecond} {
		t.Run(fmt.Sprintf("Delay%v", delay), func(t *testing.T) {
			topo := netns.Setup(t, netns.Options{Parties: 3, Delay: delay})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			names, err := netns.Namespaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append([]netns.Party{{Namespace: topo.Hub}}, topo.Parties...) {
				if !slices.Contains(names, p.Namespace) {
					t.Fatalf("namespace %s missing from %v", p.Namespace, names)
				}
			}

			// Registered after Setup: its cleanup kills the processes
			// before the namespaces are deleted.
			cluster := proctest.New(t)
			shared := t.TempDir()
			var procs []*proctest.Proc
			for i, p := range topo.Parties {
				spec, err := proctest.SelfSpec(fmt.Sprintf("party%d", i), "TestTopology_RoundTripBetweenNamespaces", "node")
				if err != nil {
					t.Fatal(err)
				}
				spec.HSM, spec.Netns = true, p.Namespace
				spec.Env = append(spec.Env, envIndex+"="+strconv.Itoa(i), envShared+"="+shared, envAddr+"="+p.Addr.String())
				proc, err := cluster.Start(ctx, spec)
				if err != nil {
					t.Fatal(err)
				}
				procs = append(procs, proc)
			}
			var peers []transport.Peer
			for i, proc := range procs {
				line, err := proc.WaitForLine(ctx, "PEER ")
				if err != nil {
					t.Fatal(err)
				}
				id, err := transport.PeerIDFromParty(tss.PartyID(strings.TrimPrefix(line, "PEER ")))
				if err != nil {
					t.Fatal(err)
				}
				a := topo.Parties[i].Addr.String()
				peers = append(peers, transport.Peer{ID: id, Addrs: []ma.Multiaddr{
					ma.StringCast("/ip4/" + a + "/tcp/4001"), ma.StringCast("/ip4/" + a + "/udp/4001/quic-v1")}})
			}
			data, err := json.Marshal(peers)
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(shared, "peers.json.tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(shared, "peers.json")); err != nil {
				t.Fatal(err)
			}

			for _, peer := range peers[1:] {
				line, err := procs[0].WaitForLine(ctx, "RTT "+peer.ID.String())
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("party0 → %s", line)
				f := fields(line)
				p50, err := strconv.Atoi(f["p50"])
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				// netem makes this a lower bound that a slow machine cannot
				// break: every packet waits Delay on each party's link.
				if min := 2 * delay; time.Duration(p50)*time.Microsecond < min {
					t.Fatalf("round trip %dµs is below the %v the delay guarantees: netem is not in effect", p50, min)
				}
			}
			if _, err := procs[0].WaitForLine(ctx, "DONE"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func fields(line string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestNew_RejectsBadOptions(t *testing.T) {
	for _, o := range []netns.Options{{Parties: 0}, {Parties: 201}, {Parties: 1, Delay: -1}} {
		if _, err := netns.New(context.Background(), o); err == nil {
			t.Fatalf("New(%+v) succeeded", o)
		}
	}
}

// TestSweep_RemovesNamespacesOfDeadRuns: a namespace named after a process
// that no longer exists is removed; one of a live process is kept.
func TestSweep_RemovesNamespacesOfDeadRuns(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deadPID := exitedPID(t)
	stale := fmt.Sprintf("%s%d-1-hub", netns.Prefix, deadPID)
	live := fmt.Sprintf("%s%d-999999-hub", netns.Prefix, os.Getpid())
	for _, name := range []string{stale, live} {
		if err := runIP(ctx, "netns", "add", name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { runIP(context.Background(), "netns", "del", name) })
	}
	if _, err := netns.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := netns.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, stale) {
		t.Fatalf("stale namespace %s survived the sweep", stale)
	}
	if !slices.Contains(names, live) {
		t.Fatalf("the sweep removed %s of a live process", live)
	}
}

// TestClose_RemovesEverything: after Close no namespace of the topology is
// left, even when building failed half-way (simulated by closing twice and
// by a topology whose namespaces were partly removed already).
func TestClose_RemovesEverything(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := netns.New(ctx, netns.Options{Parties: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed one namespace already: Close still removes the rest.
	if err := runIP(ctx, "netns", "del", topo.Parties[0].Namespace); err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	names, err := netns.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(topo.Parties, netns.Party{Namespace: topo.Hub}) {
		if slices.Contains(names, p.Namespace) {
			t.Fatalf("namespace %s left after Close", p.Namespace)
		}
	}
}

func exitedPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

func runIP(ctx context.Context, args ...string) error {
	cmd := execCommand(ctx, "ip", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New(string(out))
	}
	return nil
}
