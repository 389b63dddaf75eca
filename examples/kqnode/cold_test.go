package main

// A committee with a cold site: sites a and b are online (libp2p between
// them), site c runs with --offline and reaches nobody; every message to
// or from c travels in bundle files that the test carries between the
// processes with `kqnode offline export` and `kqnode offline import`, as
// an operator would on removable media.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/proctest"
)

// courier carries bundles between a cold site and its online peers until
// stopped, keeping every file it carried.
type courier struct {
	t     *testing.T
	c     cli
	dir   string
	links [][2]*e2eSite // (from, to) pairs

	mu      sync.Mutex
	carried []carriedBundle
	err     error
	n       int
}

// carriedBundle is one file the courier carried and imported.
type carriedBundle struct {
	from, to *e2eSite
	file     string
	info     keyquorum.BundleInfo
}

// round exports every link's next bundle and imports it; it reports
// whether anything moved.
func (k *courier) round() (bool, error) {
	moved := false
	for _, l := range k.links {
		from, to := l[0], l[1]
		k.mu.Lock()
		k.n++
		file := filepath.Join(k.dir, fmt.Sprintf("%04d-%s-to-%s.kqb", k.n, from.name, to.name))
		k.mu.Unlock()
		r := k.c.run(k.t, nil, "offline", "export", "--home", from.home, "--to", to.peerID, file, "--json")
		if r.code != 0 {
			return moved, fmt.Errorf("export %s->%s: exit %d: %s %s", from.name, to.name, r.code, r.stdout, r.stderr)
		}
		var ex struct {
			Exported bool                  `json:"exported"`
			File     string                `json:"file"`
			Info     *keyquorum.BundleInfo `json:"info"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil {
			return moved, fmt.Errorf("export %s->%s printed %q: %v", from.name, to.name, r.stdout, err)
		}
		if !ex.Exported {
			continue
		}
		r = k.c.run(k.t, nil, "offline", "import", "--home", to.home, file, "--json")
		if r.code != 0 {
			return moved, fmt.Errorf("import %s into %s: exit %d: %s %s", file, to.name, r.code, r.stdout, r.stderr)
		}
		k.mu.Lock()
		k.carried = append(k.carried, carriedBundle{from: from, to: to, file: file, info: *ex.Info})
		k.mu.Unlock()
		moved = true
	}
	return moved, nil
}

// during runs f (a command that needs the cold site) while the courier
// carries bundles, and returns f's result once it is done.
func (k *courier) during(f func() result) result {
	done := make(chan result, 1)
	go func() { done <- f() }()
	for {
		select {
		case r := <-done:
			// The last answers (results to the initiator) may still wait.
			for range 3 {
				if moved, err := k.round(); err != nil || !moved {
					break
				}
			}
			return r
		default:
		}
		moved, err := k.round()
		if err != nil {
			k.t.Errorf("courier: %v", err)
			return <-done
		}
		if !moved {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// take returns the bundles carried since the last take.
func (k *courier) take() []carriedBundle {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.carried
	k.carried = nil
	return out
}

// TestCLI_ColdSite runs a 2-of-3 committee of two online sites and one
// cold site (kqnode run --offline, no listening socket) through keygen, a
// GG20 presign batch and a GG20 signature by the online site a and the
// cold site c, carrying bundle files between the processes. It checks what
// the cold operator sees before importing the signing request, and that
// replayed, tampered, misaddressed and foreign bundles are refused with
// their codes while the sites keep running.
func TestCLI_ColdSite(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through keygen, presign and sign over files")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 2) // one pre-parameter set for keygen, one for the reshare
	a, b, cold := sites[0], sites[1], sites[2]

	// Enrolment: each site makes its bundle identity once, before it runs.
	ids := map[*e2eSite]string{}
	for _, s := range sites {
		file := filepath.Join(root, "identity-"+s.name+".json")
		r := c.run(t, s.env(), "offline", "identity", "--home", s.home, "--out", file)
		if r.code != 0 {
			t.Fatalf("offline identity %s: exit %d: %s %s", s.name, r.code, r.stdout, r.stderr)
		}
		var id struct {
			V        int    `json:"v"`
			PeerID   string `json:"peer_id"`
			Identity string `json:"identity_public_key"`
			HPKE     string `json:"hpke_public_key"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &id); err != nil || id.PeerID != s.peerID || len(id.HPKE) != 130 {
			t.Fatalf("offline identity %s printed %q (%v)", s.name, r.stdout, err)
		}
		// A second run gives the same identity: the key is made once.
		if again := c.run(t, s.env(), "offline", "identity", "--home", s.home); again.stdout != r.stdout {
			t.Fatalf("offline identity %s changed: %q then %q", s.name, r.stdout, again.stdout)
		}
		ids[s] = file
	}

	peerFile := writePeers(t, root, []*e2eSite{a, b})
	cluster := proctest.New(t)
	common := []string{"--policy", testPolicyFile(t), "--preparams-target", "0", "--committee", "test-cold",
		"--join-timeout", "3m", "--round-timeout", "3m", "--send-timeout", "5s", "--log-level", "debug"}
	start := func(s *e2eSite, wrap []string, args ...string) {
		t.Helper()
		argv := append(append(append(wrap, c.bin, "run", "--home", s.home), args...), common...)
		p, err := cluster.Start(ctx, proctest.Spec{Name: "site-" + s.name, Path: argv[0], Env: s.env(), Args: argv[1:]})
		if err != nil {
			t.Fatal(err)
		}
		s.proc = p
		waitReady(ctx, t, s)
	}
	for _, s := range []*e2eSite{a, b} {
		start(s, nil, "--peers", peerFile, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port), "--bundle-peers", ids[cold])
	}
	// As root, the cold site runs in a network namespace of its own, which
	// has no interface but a loopback that is down: it could not reach
	// anything if it tried. Its control API is a Unix socket, which a
	// namespace does not separate.
	netns, why := netnsWrapper()
	if netns == nil {
		t.Logf("the cold site runs in the test's network namespace: %s", why)
	}
	start(cold, netns, "--offline", "--bundle-peers", ids[a]+","+ids[b])

	t.Run("ColdSiteHasNoNetwork", func(t *testing.T) {
		if netns == nil {
			t.Skip(why)
		}
		ifaces := interfacesOf(t, cold)
		if len(ifaces) != 1 || ifaces[0] != "lo" {
			t.Fatalf("the cold site's network namespace has interfaces %v, want only lo", ifaces)
		}
	})

	t.Run("ColdSiteListensNowhere", func(t *testing.T) {
		if n := listeningSockets(t, cold); n != 0 {
			t.Fatalf("the cold site holds %d listening TCP/UDP sockets, want none", n)
		}
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", cold.home)
		for _, p := range st.Peers {
			if !p.Bundles || p.Connected {
				t.Errorf("the cold site's status shows %s as %+v, want a bundle peer that is not connected", p.PeerID, p)
			}
		}
	})

	k := &courier{t: t, c: c, dir: filepath.Join(root, "carried"),
		links: [][2]*e2eSite{{a, cold}, {b, cold}, {cold, a}, {cold, b}}}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		t.Fatal(err)
	}

	var key keygenResult
	started := time.Now()
	r := k.during(func() result {
		return c.run(t, nil, "keygen", "--home", a.home, "--threshold", "2", "--parties", a.peerID+","+b.peerID+","+cold.peerID, "--json")
	})
	if r.code != 0 {
		t.Fatalf("keygen with the cold site: exit %d\n%s\n%s\ncold site's log:\n%s", r.code, r.stdout, r.stderr, cold.proc.Output())
	}
	r.json(t, &key)
	keygenBundles := k.take()
	t.Logf("keygen over files: %v, %d bundles carried (%s)", time.Since(started).Round(time.Millisecond), len(keygenBundles), bundleSizes(keygenBundles))

	signers := a.peerID + "," + cold.peerID
	started = time.Now()
	r = k.during(func() result {
		return c.run(t, nil, "presign", "--home", a.home, "--key", key.KeyID, "--signers", signers, "--count", "2", "--json")
	})
	if r.code != 0 {
		t.Fatalf("presign with the cold site: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	presignBundles := k.take()
	t.Logf("presign of 2 over files: %v, %d bundles carried (%s)", time.Since(started).Round(time.Millisecond), len(presignBundles), bundleSizes(presignBundles))

	// The signing request, carried by hand: a proposes, the cold operator
	// looks at the file before importing it.
	digest := sha256.Sum256([]byte("withdrawal approved by the cold site"))
	digestHex := hex.EncodeToString(digest[:])
	type signOut struct {
		r   result
		sig signResult
	}
	signDone := make(chan result, 1)
	go func() {
		signDone <- c.run(t, nil, "sign", "--home", a.home, "--key", key.KeyID, "--digest", digestHex,
			"--signers", signers, "--protocol", "gg20", "--json")
	}()
	request := filepath.Join(root, "sign-request.kqb")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := c.run(t, nil, "offline", "export", "--home", a.home, "--to", cold.peerID, "--wait", "5s", request, "--json")
		if r.code != 0 {
			t.Fatalf("export the signing request: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, `"exported":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the signing request never reached the export queue")
		}
	}

	t.Run("OperatorSeesTheDigestBeforeImport", func(t *testing.T) {
		// Through the cold site, which opens it with its HSM.
		r := c.run(t, nil, "offline", "show", "--home", cold.home, request)
		if r.code != 0 {
			t.Fatalf("offline show --home: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"signature:  verified", "signature (GG20, presigned) proposed by " + a.peerID,
			"digest:   " + digestHex, "key:      " + key.KeyID, "policy:   allowed by rule", "every one derived by this site from the intent"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("offline show does not print %q:\n%s", want, r.stdout)
			}
		}
		t.Logf("what the cold operator sees:\n%s", r.stdout)
		// As JSON, for scripts.
		var info keyquorum.BundleInfo
		c.ok(t, nil, &info, "offline", "import", "--home", cold.home, "--dry-run", request)
		if !info.Verified || !info.Opened || len(info.Sessions) != 1 || info.Sessions[0].Request == nil ||
			len(info.Sessions[0].Request.Digests) != 1 || info.Sessions[0].Request.Digests[0] != digestHex {
			t.Fatalf("import --dry-run: %+v", info)
		}
		// Without a site: the header, verified with the sender's identity.
		r = c.run(t, nil, "offline", "show", "--bundle-peers", ids[a], request)
		if r.code != 0 || !strings.Contains(r.stdout, "signature:  verified") || !strings.Contains(r.stdout, "only its site can show") {
			t.Fatalf("offline show --bundle-peers: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		// The dry run accepted nothing: the real import still works.
	})

	r = c.run(t, nil, "offline", "import", "--home", cold.home, request, "--json")
	if r.code != 0 {
		t.Fatalf("import the signing request: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	// The cold site answers with its signature share (and its acceptance),
	// which the courier carries back.
	k.links = [][2]*e2eSite{{cold, a}, {a, cold}}
	var so signOut
	signDeadline := time.Now().Add(3 * time.Minute)
wait:
	for {
		select {
		case so.r = <-signDone:
			break wait
		default:
		}
		if time.Now().After(signDeadline) {
			t.Fatalf("sign did not finish after the cold site's share was carried back; a's log:\n%s", a.proc.Output())
		}
		if moved, err := k.round(); err != nil {
			t.Fatalf("courier: %v", err)
		} else if !moved {
			time.Sleep(100 * time.Millisecond)
		}
	}
	signBundles := k.take()
	if len(signBundles) == 0 || signBundles[0].from != cold {
		t.Fatalf("no bundle came back from the cold site: %+v", signBundles)
	}
	share := signBundles[0].file
	t.Logf("online signature over files: request %d B, answers %s", mustSize(t, request), bundleSizes(signBundles))
	if so.r.code != 0 {
		t.Fatalf("sign with the cold site: exit %d\n%s\n%s", so.r.code, so.r.stdout, so.r.stderr)
	}
	so.r.json(t, &so.sig)
	pubBytes, _ := hex.DecodeString(key.PublicKey)
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := hex.DecodeString(so.sig.DER)
	parsed, err := secpecdsa.ParseDERSignature(der)
	if err != nil || !parsed.Verify(digest[:], pub) || so.sig.Protocol != "gg20" {
		t.Fatalf("the signature made with the cold site does not verify: %+v (%v)", so.sig, err)
	}

	t.Run("Refusals", func(t *testing.T) {
		tampered := filepath.Join(root, "tampered.kqb")
		b0, err := os.ReadFile(request)
		if err != nil {
			t.Fatal(err)
		}
		flipped := append([]byte(nil), b0...)
		flipped[len(flipped)/2] ^= 0x01
		if err := os.WriteFile(tampered, flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		garbage := filepath.Join(root, "garbage.kqb")
		if err := os.WriteFile(garbage, []byte("KQOB\x01 not really a bundle"), 0o600); err != nil {
			t.Fatal(err)
		}
		// A bundle from c to a, taken to b: c is b's bundle peer, so the
		// signature verifies, but the file is not b's.
		for _, tc := range []struct {
			name, code string
			site       *e2eSite
			file       string
		}{
			{"Replayed", codeBundleReplayed, cold, request},
			{"ReplayedShare", codeBundleReplayed, a, share},
			{"Tampered", codeBundleTampered, cold, tampered},
			{"WrongRecipient", codeBundleWrongRecipient, b, share},
			{"UnknownSender", codeBundleUnknownSender, b, request},
			{"Garbage", codeBundleMalformed, cold, garbage},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := snapshot(t, tc.site.home)
				eb := c.fails(t, nil, 1, tc.code, "offline", "import", "--home", tc.site.home, tc.file)
				if !strings.Contains(eb.Error, "bundle") {
					t.Errorf("the message does not say what failed: %s", eb.Error)
				}
				sameSnapshot(t, "a refused import", before, snapshot(t, tc.site.home))
			})
		}
		// The replayed request made the cold site answer nothing: no second
		// share waits for a.
		var ex struct {
			Exported bool `json:"exported"`
		}
		c.ok(t, nil, &ex, "offline", "export", "--home", cold.home, "--to", a.peerID, filepath.Join(root, "after-replay.kqb"))
		if ex.Exported {
			t.Fatal("after a replayed signing request the cold site had a bundle for a")
		}
		// b is a's libp2p peer, not a bundle peer: nothing to export to it.
		c.fails(t, nil, 1, codeBundleNotInCommittee, "offline", "export", "--home", a.home, "--to", b.peerID, "--wait", "1m",
			filepath.Join(root, "to-b.kqb"))
		// Every site still runs and answers.
		for _, s := range sites {
			var st statusResult
			c.ok(t, nil, &st, "status", "--home", s.home)
		}
		// The cold site's audit log holds the files it took and refused.
		seen := map[string]bool{}
		for _, e := range auditEntries(t, c, cold.home) {
			for _, typ := range []string{"bundle.imported", "bundle.exported", "bundle.refused"} {
				if strings.Contains(e, `"`+typ+`"`) {
					seen[typ] = true
				}
			}
		}
		if len(seen) != 3 {
			t.Errorf("the cold site's audit log has bundle entries %v, want imported, exported and refused", seen)
		}
		// Offline show without a site detects the tampering too.
		r := c.run(t, nil, "offline", "show", "--bundle-peers", ids[a], tampered, "--json")
		var eb errorBody
		if r.code != 1 || json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &eb) != nil || eb.Code != codeBundleTampered {
			t.Fatalf("offline show of a tampered bundle: exit %d, %s %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("DrainReconcilesWithTheColdSite", func(t *testing.T) {
		// a's pool for a+c holds the presignature the signature left; a
		// drain discards it and reconciles the pool with c through files.
		k.links = [][2]*e2eSite{{a, cold}, {cold, a}}
		started := time.Now()
		r := k.during(func() result {
			return c.run(t, nil, "pools", "drain", "--home", a.home, "--key", key.KeyID, "--signers", signers, "--json")
		})
		if r.code != 0 {
			t.Fatalf("pools drain: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var res poolResult
		r.json(t, &res)
		if res.Drained != 1 || res.CoSigners == nil || !*res.CoSigners || res.Ready != 0 {
			t.Fatalf("pools drain with the cold co-signer: %+v", res)
		}
		bs := k.take()
		t.Logf("drain and reconciliation over files: %v, %d bundles carried (%s)", time.Since(started).Round(time.Millisecond), len(bs), bundleSizes(bs))
	})

	t.Run("ReshareWithTheColdSite", func(t *testing.T) {
		all := a.peerID + "," + b.peerID + "," + cold.peerID
		for _, s := range []*e2eSite{b, cold} {
			var acc reshareAcceptResult
			c.ok(t, nil, &acc, "reshare", "--accept", "--home", s.home, "--key", key.KeyID, "--parties", all, "--threshold", "3", "--expires", "30m")
		}
		k.links = [][2]*e2eSite{{a, cold}, {b, cold}, {cold, a}, {cold, b}}
		started := time.Now()
		r := k.during(func() result {
			return c.run(t, nil, "reshare", "--home", a.home, "--key", key.KeyID, "--parties", all, "--threshold", "3", "--json")
		})
		if r.code != 0 {
			t.Fatalf("reshare with the cold site: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var res reshareResult
		r.json(t, &res)
		if res.Epoch != 2 || res.Threshold != 3 || res.PublicKey != key.PublicKey {
			t.Fatalf("reshare: %+v; keygen made %+v", res, key)
		}
		bs := k.take()
		t.Logf("reshare to 3-of-3 over files: %v, %d bundles carried (%s)", time.Since(started).Round(time.Millisecond), len(bs), bundleSizes(bs))
		// The commit reaches the cold site in a file too.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := k.round(); err != nil {
				t.Fatal(err)
			}
			var st statusResult
			c.ok(t, nil, &st, "status", "--home", cold.home)
			if len(st.Reshares) == 1 && st.Reshares[0].Phase == "committed" && st.Reshares[0].PendingEpoch == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cold site did not commit the reshare: %+v", st.Reshares)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// netnsWrapper returns the command line prefix that runs a program in a
// new network namespace, or nil and why it cannot be used here.
func netnsWrapper() ([]string, string) {
	if os.Geteuid() != 0 {
		return nil, "not root: a new network namespace needs CAP_SYS_ADMIN"
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		return nil, "no unshare(1) on this host"
	}
	if out, err := exec.Command(path, "--net", "true").CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("unshare --net fails here: %v %s", err, out)
	}
	return []string{path, "--net"}, ""
}

// interfacesOf lists the network interfaces the site's process sees.
func interfacesOf(t *testing.T, s *e2eSite) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", sitePID(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

// sitePID is the PID of a running site, from its api.json.
func sitePID(t *testing.T, s *e2eSite) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || info.PID == 0 {
		t.Fatalf("%s: %q (%v)", apiFile, raw, err)
	}
	return info.PID
}

// mustSize returns a file's size.
func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// bundleSizes lists the sizes of carried bundles by direction.
func bundleSizes(bs []carriedBundle) string {
	var parts []string
	total := 0
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%s->%s %d B", b.from.name, b.to.name, b.info.Size))
		total += b.info.Size
	}
	return fmt.Sprintf("%s; total %d B", strings.Join(parts, ", "), total)
}

// listeningSockets counts the TCP and UDP sockets in listening (or, for
// UDP, bound and unconnected) state that the site's process holds, from
// its file descriptors and /proc/net.
func listeningSockets(t *testing.T, s *e2eSite) int {
	t.Helper()
	pid := sitePID(t, s)
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Skipf("cannot read %s: %v", fdDir, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			st, _ := strconv.ParseUint(f[3], 16, 8)
			// TCP_LISTEN is 0x0A; a UDP socket is listed as 07 (closed,
			// i.e. bound and waiting).
			if (strings.HasPrefix(table, "tcp") && st == 0x0a) || strings.HasPrefix(table, "udp") {
				n++
			}
		}
	}
	return n
}
