package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/tss"
)

// committee is three loopback sites with one 2-of-3 key, shared by the
// scenarios of TestProcesses.
type committee struct {
	ctx     context.Context
	root    string
	cluster *proctest.Cluster
	peers   string
	sites   []*site // a, b, c
	key     *key
	ledger  *ledger
}

func (c *committee) startAll(t *testing.T, sites ...*site) {
	t.Helper()
	for _, s := range sites {
		s.start(c.ctx, t, c.cluster, c.peers)
	}
}

// TestProcesses runs three kqnode sites as separate OS processes on
// 127.0.0.1, each with its own SoftHSM2 token directory, home and sealed
// store, and one 2-of-3 keygen that every scenario reuses: signing with
// every pair (GG18 and GG20), a site outside the committee, sites killed
// with SIGKILL and restarted, GG20's once-only rule across a crash, and
// across a restore of the sites' stores from a backup.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: three kqnode processes and a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := kqnodeBinary(t)
	c := &committee{ctx: ctx, root: t.TempDir(), cluster: proctest.New(t), ledger: newLedger()}
	for i, name := range []string{"a", "b", "c"} {
		listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCP(t))
		c.sites = append(c.sites, newSite(t, bin, c.root, name, listen, "", i))
	}
	c.peers = writePeers(t, filepath.Join(c.root, "peers.json"), c.sites...)
	c.startAll(t, c.sites...)
	c.key = keygen(t, c.sites[0], c.sites...)
	for _, s := range c.sites {
		st := s.status(t)
		if len(st.Keys) != 1 || st.Keys[0].KeyID != c.key.KeyID || st.Keys[0].PublicKey != c.key.PublicKey {
			t.Fatalf("%s's keys after keygen: %+v", s.name, st.Keys)
		}
	}

	t.Run("EveryPairSigns", func(t *testing.T) { everyPairSigns(t, c) })
	t.Run("OutsiderIsRefused", func(t *testing.T) { outsiderIsRefused(t, c) })
	t.Run("KilledSitesAndRestart", func(t *testing.T) { killedSitesAndRestart(t, c) })
	t.Run("PresignatureOnceAcrossCrash", func(t *testing.T) { presignatureOnceAcrossCrash(t, c) })
	t.Run("StoreRestore", func(t *testing.T) { storeRestore(t, c) })
	t.Logf("%d GG18 and %d GG20 signatures verified, no r twice", c.ledger.gg18, c.ledger.gg20)
}

// everyPairSigns: GG18 with every pair, then GG20 presigning and one-round
// signing with every pair, each initiated by either member from its own
// pool, across processes over libp2p.
func everyPairSigns(t *testing.T, c *committee) {
	k := c.key
	for _, p := range pairs(c.sites) {
		k.sign(t, c.ledger, "gg18", p[0], p[1])
		k.sign(t, c.ledger, "gg18", p[1], p[0])
	}
	for _, p := range pairs(c.sites) {
		q := []*site{p[1], p[0]}
		k.presign(t, 1, p...)
		k.presign(t, 1, q...)
		k.sign(t, c.ledger, "gg20", q...)
		k.sign(t, c.ledger, "gg20", p...)
		for _, set := range [][]*site{p, q} {
			k.samePools(t, 0, set...)
			for _, s := range set {
				if u := s.pool(t, k.KeyID, set).Used; u != 1 {
					t.Fatalf("%s used %d presignatures of %s's pool %s, want 1", s.name, u, set[0].name, names(set))
				}
			}
		}
	}
}

// outsiderIsRefused: a fourth site with its own token and an identity
// that is not in the committee's peer file knows the committee's addresses
// and proposes a keygen to it. The committee's gaters refuse its
// connections after the security handshake, so the proposal fails naming
// the committee sites, and nothing of it reaches a committee session.
func outsiderIsRefused(t *testing.T, c *committee) {
	a, b := c.sites[0], c.sites[1]
	before := make([]status, len(c.sites))
	for i, s := range c.sites {
		before[i] = s.status(t)
	}
	o := newSite(t, kqnodeBinary(t), c.root, "outsider", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCP(t)), "", 6)
	// The outsider's own peer file lists the committee and itself; the
	// committee's does not list it.
	peers := writePeers(t, filepath.Join(c.root, "outsider-peers.json"), append(slices.Clone(c.sites), o)...)
	o.start(c.ctx, t, c.cluster, peers)
	t.Cleanup(func() { o.kill(t) })

	eb, r := o.fails(t, "keygen", "--threshold", "2", "--parties", strings.Join([]string{a.peerID, b.peerID, o.peerID}, ","))
	if eb.Code != "unreachable" && eb.Code != "timeout" {
		t.Fatalf("outsider's keygen: %+v, want unreachable or timeout", eb)
	}
	for _, s := range []*site{a, b} {
		if !slices.Contains(eb.Parties, s.peerID) {
			t.Fatalf("outsider's keygen error does not name %s: %+v", s.name, eb)
		}
	}
	t.Logf("outsider's keygen refused after %v: %s", r.elapsed.Round(time.Millisecond), eb.Error)
	// Signing with the committee's key: the outsider holds no share, so it
	// cannot even form a proposal.
	d := sha256.Sum256([]byte("outsider"))
	if eb, _ := o.fails(t, c.key.signArgs(d, "gg18", []*site{o, a})...); eb.Code != "unknown_key" {
		t.Fatalf("outsider's sign: %+v, want unknown_key", eb)
	}

	// The committee: its gaters logged the refusal of the outsider's peer
	// ID; nothing was joined, started or stored because of it.
	refused := 0
	for i, s := range c.sites {
		if slices.ContainsFunc(strings.Split(s.proc.Output(), "\n"), func(line string) bool {
			return strings.Contains(line, "refused connection from a peer outside the committee") &&
				strings.Contains(line, "peer="+o.peerID+" ")
		}) {
			refused++
		}
		st := s.status(t)
		for _, j := range st.Joined {
			if string(j.Initiator) == o.peerID || slices.Contains(j.Parties, tss.PartyID(o.peerID)) {
				t.Fatalf("%s joined a session of the outsider: %+v", s.name, j)
			}
		}
		if !slices.EqualFunc(st.Joined, before[i].Joined, func(x, y keyquorum.JoinedSession) bool { return x.At.Equal(y.At) }) ||
			len(st.Keys) != 1 || len(st.Operations) != 0 {
			t.Fatalf("%s changed while the outsider tried: joined %d -> %d, keys %d, operations %+v",
				s.name, len(before[i].Joined), len(st.Joined), len(st.Keys), st.Operations)
		}
		for _, p := range st.Peers {
			if string(p.PeerID) == o.peerID {
				t.Fatalf("%s lists the outsider as a peer", s.name)
			}
		}
	}
	if refused < 2 {
		t.Fatalf("%d committee sites logged refusing the outsider %s, want at least a and b", refused, o.peerID)
	}
	// The committee still works.
	c.key.sign(t, c.ledger, "gg18", a, b)
}

// killedSitesAndRestart: with warm GG20 pools for every pair, c is killed
// with SIGKILL and a and b still sign (GG18, and GG20 from the pool); then
// b is killed too and signing fails naming b; both restart, reload their
// sealed shares and presignatures (no keygen), and every subset signs with
// GG18 and GG20. Presignature counts show nothing was used twice or lost
// on one side only.
func killedSitesAndRestart(t *testing.T, c *committee) {
	k := c.key
	a, b, sc := c.sites[0], c.sites[1], c.sites[2]
	ab, ba, ac, bc := []*site{a, b}, []*site{b, a}, []*site{a, sc}, []*site{b, sc}
	k.presign(t, 1, ab...)
	k.presign(t, 1, ba...)
	k.presign(t, 1, ac...)
	k.presign(t, 1, bc...)

	sc.kill(t)
	k.sign(t, c.ledger, "gg18", a, b)
	k.sign(t, c.ledger, "gg20", ba...)
	k.samePools(t, 0, ba...)
	k.samePools(t, 1, ab...)

	b.kill(t)
	for _, tc := range []struct {
		protocol string
		signers  []*site
		missing  []*site
	}{
		{"gg18", ab, []*site{b}},
		{"gg20", ab, []*site{b}},
		{"gg20", ac, []*site{sc}},
		{"gg18", []*site{a, b, sc}, []*site{b, sc}},
	} {
		d := sha256.Sum256([]byte("nobody to sign with " + tc.protocol + names(tc.signers)))
		eb, r := a.fails(t, k.signArgs(d, tc.protocol, tc.signers)...)
		if eb.Code != "unreachable" && eb.Code != "timeout" {
			t.Fatalf("%s by %s with %s down: %+v, want unreachable or timeout", tc.protocol, names(tc.signers), names(tc.missing), eb)
		}
		for _, m := range tc.missing {
			if !slices.Contains(eb.Parties, m.peerID) {
				t.Fatalf("%s by %s: the error does not name the killed site %s: %+v", tc.protocol, names(tc.signers), m.name, eb)
			}
		}
		t.Logf("%s by %s with %s killed failed after %v (%s): %s", tc.protocol, names(tc.signers), names(tc.missing),
			r.elapsed.Round(time.Millisecond), eb.Code, eb.Error)
	}
	// a's presignatures were not touched by the failed attempts.
	if p := a.pool(t, k.KeyID, ab); p.Ready != 1 || p.Reserved != 0 {
		t.Fatalf("a's pool ab after the failed attempts: %+v, want 1 ready", p.PoolStatus)
	}
	if p := a.pool(t, k.KeyID, ac); p.Ready != 1 || p.Reserved != 0 {
		t.Fatalf("a's pool ac after the failed attempts: %+v, want 1 ready", p.PoolStatus)
	}

	c.startAll(t, b, sc)
	for _, s := range []*site{b, sc} {
		st := s.status(t)
		if len(st.Keys) != 1 || st.Keys[0].KeyID != k.KeyID || st.Keys[0].PublicKey != k.PublicKey || st.Keys[0].Epoch != 1 {
			t.Fatalf("%s after restart holds %+v, want key %s at epoch 1", s.name, st.Keys, k.KeyID)
		}
	}
	// Every site holds the presignatures it held before the kill, and
	// the two sides of every pool agree.
	k.samePools(t, 1, ab...)
	k.samePools(t, 1, ac...)
	k.samePools(t, 1, bc...)

	all := []*site{a, b, sc}
	for _, set := range append(pairs(all), all) {
		k.sign(t, c.ledger, "gg18", set...)
	}
	// The presignatures made before the kill sign after the restart, once.
	k.sign(t, c.ledger, "gg20", ab...)
	k.sign(t, c.ledger, "gg20", ac...)
	k.sign(t, c.ledger, "gg20", bc...)
	for _, p := range pairs(all) {
		k.samePools(t, 0, p...)
		d := sha256.Sum256([]byte("empty pool " + names(p)))
		if eb, _ := p[0].fails(t, k.signArgs(d, "gg20", p)...); eb.Code != "no_presignature" {
			t.Fatalf("gg20 by %s with an empty pool: %+v, want no_presignature", names(p), eb)
		}
	}
	bac := []*site{b, a, sc}
	k.presign(t, 1, bac...)
	k.sign(t, c.ledger, "gg20", bac...)
	k.samePools(t, 0, bac...)
}

// presignatureOnceAcrossCrash: GG20's once-only rule across a crash, with
// deterministic timing. The online round is: the initiator x sends its
// request to y, durably consumes its own presignature P, and waits for y's
// share. y is stopped with SIGSTOP first, so x consumes P and then waits;
// when x's status shows P used, x is killed with SIGKILL, and y (which
// never read the request and still holds P) is killed too. So after the
// restart x holds Q and y holds P and Q, all of x's pool.
//
// y cannot spend P: a pool's presignatures are spent only by the site that
// made them, and x's HSM ledger marks P used. x restarts with pool
// maintenance (--pool-target 1, which its one ready presignature already
// meets, so nothing is made), reconciles its pool with y at start, and y
// discards P without any signing attempt; Q signs. Every presignature
// signs at most once (the ledger checks that no r appears twice) and the
// pools end equal on both sites.
func presignatureOnceAcrossCrash(t *testing.T, c *committee) {
	k := c.key
	x, y := c.sites[0], c.sites[1]
	xy, yx := []*site{x, y}, []*site{y, x}

	k.presign(t, 2, xy...)
	crashAfterConsume(t, c, x, y)
	c.startAll(t, x, y)
	holdAfterCrash(t, k, x, y)
	// y holds P and Q but spends neither: they are x's.
	d := sha256.Sum256([]byte("y spends x's presignature"))
	if eb, _ := y.fails(t, k.signArgs(d, "gg20", yx)...); eb.Code != "no_presignature" {
		t.Fatalf("gg20 by y after the crash: %+v, want no_presignature (y has no pool of its own)", eb)
	}
	x.restartWith(c.ctx, t, c.cluster, x.name+"-maintaining", c.peers, "--pool-target", "1")
	deadline := time.Now().Add(time.Minute)
	for {
		px, py := x.pool(t, k.KeyID, xy), y.pool(t, k.KeyID, xy)
		if px.Ready == 1 && py.Ready == 1 {
			if py.Discarded != 1 || px.Discarded != 0 || px.Making != 0 {
				t.Fatalf("after reconciliation: x %+v, y %+v; want y to have discarded the presignature x consumed", px.PoolStatus, py.PoolStatus)
			}
			t.Logf("reconciled: y discarded 1 presignature, both hold 1")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pools not reconciled within a minute: x %+v, y %+v", px.PoolStatus, py.PoolStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Without maintenance again, so that nothing refills the pool once Q
	// is used.
	x.restartWith(c.ctx, t, c.cluster, x.name+"-again", c.peers)
	k.sign(t, c.ledger, "gg20", xy...)
	k.samePools(t, 0, xy...)
	for _, set := range [][]*site{xy, yx} {
		d := sha256.Sum256([]byte("empty " + names(set)))
		if eb, _ := set[0].fails(t, k.signArgs(d, "gg20", set)...); eb.Code != "no_presignature" {
			t.Fatalf("%s with an empty pool: %+v, want no_presignature", set[0].name, eb)
		}
	}
}

// crashAfterConsume stops y, lets x start a GG20 signature with y and
// consume its presignature, then kills both with SIGKILL. x holds one
// presignature fewer than y afterwards.
func crashAfterConsume(t *testing.T, c *committee, x, y *site) {
	t.Helper()
	k := c.key
	xy := []*site{x, y}
	k.samePools(t, 2, xy...)
	used := x.pool(t, k.KeyID, xy).Used
	if err := y.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped { // a failure before the kill: let y go on
			y.proc.Signal(syscall.SIGCONT)
		}
	}()
	d := sha256.Sum256(fmt.Appendf(nil, "interrupted %d", time.Now().UnixNano()))
	signCtx, cancelSign := context.WithCancel(c.ctx)
	defer cancelSign()
	signed := make(chan result, 1)
	go func() { signed <- x.runContext(signCtx, t, k.signArgs(d, "gg20", xy)...) }()

	// x consumes its copy right after sending the request, then waits up to
	// the round timeout for y's share, which cannot come.
	deadline := time.Now().Add(roundTimeout / 2)
	for {
		p := x.pool(t, k.KeyID, xy)
		if p.Used == used+1 {
			if p.Ready != 1 || p.Reserved != 0 {
				t.Fatalf("x consumed a presignature but its pool is %+v", p.PoolStatus)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("x did not consume its presignature within %v (pool %+v)", roundTimeout/2, p.PoolStatus)
		}
		time.Sleep(20 * time.Millisecond)
	}
	x.kill(t)
	y.kill(t)
	stopped = false
	if r := <-signed; r.code == 0 {
		t.Fatalf("sign through the killed site x succeeded: %s", r.stdout)
	}
}

// holdAfterCrash checks what crashAfterConsume left on disk, after the
// restart: x holds only the presignature it did not consume, y both.
func holdAfterCrash(t *testing.T, k *key, x, y *site) {
	t.Helper()
	xy := []*site{x, y}
	if p := x.pool(t, k.KeyID, xy); p.Ready != 1 {
		t.Fatalf("x after restart: %+v, want 1 ready (the consumed one is gone from its disk)", p.PoolStatus)
	}
	if p := y.pool(t, k.KeyID, xy); p.Ready != 2 {
		t.Fatalf("y after restart: %+v, want 2 ready (it never read the request)", p.PoolStatus)
	}
}
