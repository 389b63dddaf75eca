package e2e

// The harness: build kqnode once, set up sites (token, home, fixtures),
// start them under internal/proctest, and run client commands that print
// one JSON object. Nothing here knows kqnode's internals; it reads only the
// documented command line and JSON (README, "kqnode reference").

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// Timeouts every site runs with: short enough that a dead site is named
// quickly, long enough for a loaded two-core machine.
const (
	joinTimeout  = 5 * time.Second
	sendTimeout  = 5 * time.Second
	roundTimeout = 30 * time.Second
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// kqnodeBinary builds examples/kqnode once per test binary. It is built
// without the race detector: the daemons' cryptography would be several
// times slower, and the race detector watches this package's own code.
func kqnodeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kqnode-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		buildBin, buildErr = proctest.Build(ctx, dir, "github.com/keyquorum/keyquorum/examples/kqnode", false)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// TestMain removes the binary built by kqnodeBinary.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// site is one kqnode site: its token directory, home, process and, for the
// separated-hosts test, its network namespace.
type site struct {
	name    string
	bin     string
	hsm     *softhsm.Dir
	token   *softhsm.Token
	pinFile string
	home    string
	listen  string // libp2p listen multiaddr
	netns   string // namespace the site and its clients run in, or ""
	peerID  string
	proc    *proctest.Proc
	// operatorKey is the private key file of the site's operator (every
	// role), which its clients sign with ($KQ_OPERATOR_KEY).
	operatorKey string
}

// env is what the site's processes need in their environment: SOFTHSM2_CONF
// for a SoftHSM2 token, nothing for an NSS softoken database (its
// initialization arguments are in config.json).
func (s *site) env() []string {
	env := []string{"KQ_OPERATOR_KEY=" + s.operatorKey}
	if s.hsm == nil {
		return env
	}
	return append(env, s.hsm.Env())
}

// newSite creates the site's token and runs `kqnode init`, importing the
// given pre-parameter fixtures so that keygen never waits for safe primes.
func newSite(t *testing.T, bin, root, name, listen, netns string, fixtureSets ...int) *site {
	t.Helper()
	dir := filepath.Join(root, name)
	hsmRoot := filepath.Join(dir, "softhsm")
	if err := os.MkdirAll(hsmRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := softhsm.CreateDir(hsmRoot)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.CreateToken()
	if err != nil {
		t.Fatal(err)
	}
	s := &site{name: name, bin: bin, hsm: d, token: tok, pinFile: tok.PINFile(t),
		home: filepath.Join(dir, "home"), listen: listen, netns: netns}
	var files []string
	for _, i := range fixtureSets {
		files = append(files, filepath.Join(fixtures.Dir(), "preparams", fmt.Sprintf("preparams-%02d.json", i)))
	}
	var res struct {
		PeerID         string `json:"peer_id"`
		PreParamsReady int    `json:"preparams_ready"`
	}
	pub := writeOperatorKey(t, s)
	s.ok(t, &res, "init", "--module", d.Module, "--token", tok.Label, "--pin-source", "file:"+s.pinFile,
		"--preparams-fixtures", strings.Join(files, ","), "--admin-key", pub, "--admin-roles", "admin,requester,approver,auditor")
	if res.PeerID == "" || res.PreParamsReady != len(fixtureSets) {
		t.Fatalf("init %s: %+v, want a peer ID and %d pre-parameter sets", name, res, len(fixtureSets))
	}
	s.peerID = res.PeerID
	return s
}

// writePeers writes a peer file naming sites, and returns its path.
func writePeers(t *testing.T, path string, sites ...*site) string {
	t.Helper()
	type entry struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	var es []entry
	for _, s := range sites {
		es = append(es, entry{PeerID: s.peerID, Addrs: []string{s.listen}})
	}
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start starts the site's `kqnode run` (or restarts it with the same
// home, token, store and arguments) and waits until it serves requests.
// extra flags are added to the first start only.
func (s *site) start(ctx context.Context, t *testing.T, c *proctest.Cluster, peers string, extra ...string) {
	t.Helper()
	if s.proc == nil {
		s.launch(ctx, t, c, s.name, peers, extra...)
		return
	}
	if err := s.proc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitReady(ctx, t)
}

// restartWith kills the site and starts it again on the same home, token
// and store with other extra flags; run is the new process's name in the
// cluster.
func (s *site) restartWith(ctx context.Context, t *testing.T, c *proctest.Cluster, run, peers string, extra ...string) {
	t.Helper()
	s.kill(t)
	s.launch(ctx, t, c, run, peers, extra...)
}

func (s *site) launch(ctx context.Context, t *testing.T, c *proctest.Cluster, run, peers string, extra ...string) {
	t.Helper()
	// The control API is the home's Unix socket (the default): clients
	// reach it through the filesystem, also from inside a namespace.
	args := append([]string{"run", "--home", s.home, "--peers", peers, "--policy", fixtures.AllowRawDigestsPolicy(), "--listen", s.listen,
		"--preparams-target", "0",
		"--join-timeout", joinTimeout.String(), "--send-timeout", sendTimeout.String(),
		"--round-timeout", roundTimeout.String(), "--log-level", "debug"}, extra...)
	p, err := c.Start(ctx, proctest.Spec{Name: run, Path: s.bin, Args: args, Env: s.env(), Netns: s.netns})
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	s.waitReady(ctx, t)
}

func (s *site) waitReady(ctx context.Context, t *testing.T) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := s.proc.WaitForLine(wctx, `{"ready":true`); err != nil {
		t.Fatal(err)
	}
}

// kill stops the site's process with SIGKILL, as `kill -9` would.
func (s *site) kill(t *testing.T) {
	t.Helper()
	if err := s.proc.Kill(); err != nil {
		t.Fatal(err)
	}
}

// result is one client command's outcome.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// run runs a kqnode client command against this site (inside its
// namespace when it has one) with --home and --json.
func (s *site) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return s.runContext(ctx, t, args...)
}

func (s *site) runContext(ctx context.Context, t *testing.T, args ...string) result {
	t.Helper()
	args = append(slices.Clone(args), "--home", s.home, "--json")
	name := s.bin
	if s.netns != "" {
		name, args = "ip", append([]string{"netns", "exec", s.netns, s.bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), s.env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kqnode %s via %s: %v", args[0], s.name, err)
	}
	return r
}

// decode decodes the one JSON object the command printed on stdout.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	out := strings.TrimSpace(r.stdout)
	if out == "" || strings.Contains(out, "\n") {
		t.Fatalf("want exactly one line of JSON on stdout, got %q (stderr %q)", out, r.stderr)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
}

// ok runs a command that must succeed and decodes its result into v.
func (s *site) ok(t *testing.T, v any, args ...string) result {
	t.Helper()
	r := s.run(t, args...)
	if r.code != 0 {
		t.Fatalf("kqnode %s via %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), s.name, r.code, r.stdout, r.stderr)
	}
	r.decode(t, v)
	return r
}

// errorBody is what a failed --json command prints.
type errorBody struct {
	Error   string   `json:"error"`
	Code    string   `json:"code"`
	Parties []string `json:"parties"`
}

// fails runs a command that must fail (exit status 1) and returns its
// error body.
func (s *site) fails(t *testing.T, args ...string) (errorBody, result) {
	t.Helper()
	r := s.run(t, args...)
	if r.code != 1 {
		t.Fatalf("kqnode %s via %s: exit %d, want 1 (a failed operation)\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), s.name, r.code, r.stdout, r.stderr)
	}
	var eb errorBody
	r.decode(t, &eb)
	if eb.Code == "" || eb.Error == "" {
		t.Fatalf("kqnode %s via %s: error without code or message: %+v", args[0], s.name, eb)
	}
	return eb, r
}

// status is `kqnode status --json`: keyquorum.Status plus kqnode's own
// fields.
type status struct {
	keyquorum.Status
	Home     string   `json:"home"`
	API      string   `json:"api"`
	Warnings []string `json:"warnings"`
}

func (s *site) status(t *testing.T) status {
	t.Helper()
	var st status
	s.ok(t, &st, "status")
	return st
}

// pool returns this site's status of the pool (key, signers, path "m");
// a pool the site does not know yet is all zeros.
//
// A pool belongs to the site that made its presignatures: signers[0] is
// the pool's initiator here, as in key.presign.
func (s *site) pool(t *testing.T, keyID string, signers []*site) keyquorum.PoolStatus {
	t.Helper()
	return poolOf(t, s.status(t), keyID, signers)
}

func poolOf(t *testing.T, st status, keyID string, signers []*site) keyquorum.PoolStatus {
	t.Helper()
	want := peerIDs(signers)
	slices.Sort(want)
	owner := signers[0].peerID
	for _, k := range st.Keys {
		if k.KeyID != keyID {
			continue
		}
		for _, p := range k.Pools {
			got := make([]string, len(p.Signers))
			for i, id := range p.Signers {
				got[i] = string(id)
			}
			if slices.Equal(got, want) && p.Path == "m" && string(p.Initiator) == owner {
				if p.Error != "" {
					t.Fatalf("pool %v: %s", want, p.Error)
				}
				return p
			}
		}
		return keyquorum.PoolStatus{}
	}
	t.Fatalf("%s holds no key %s", st.PeerID, keyID)
	return keyquorum.PoolStatus{}
}

func peerIDs(sites []*site) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.peerID
	}
	return out
}

func names(sites []*site) string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.name
	}
	return strings.Join(out, "")
}

// key is the result of `kqnode keygen`.
type key struct {
	KeyID     string   `json:"key_id"`
	PublicKey string   `json:"public_key"`
	Threshold int      `json:"threshold"`
	Parties   []string `json:"parties"`

	pub *secp256k1.PublicKey
}

// keygen runs a 2-of-len(parties) keygen proposed by via.
func keygen(t *testing.T, via *site, parties ...*site) *key {
	t.Helper()
	var k key
	r := via.ok(t, &k, "keygen", "--threshold", "2", "--parties", strings.Join(peerIDs(parties), ","))
	b, err := hex.DecodeString(k.PublicKey)
	if err != nil || len(b) != 33 {
		t.Fatalf("keygen: public key %q", k.PublicKey)
	}
	if k.pub, err = secp256k1.ParsePubKey(b); err != nil {
		t.Fatalf("keygen: public key %q: %v", k.PublicKey, err)
	}
	if len(k.KeyID) != 32 || k.Threshold != 2 || len(k.Parties) != len(parties) {
		t.Fatalf("keygen: %+v", k)
	}
	t.Logf("keygen 2-of-%d via %s: %v (key %s)", len(parties), via.name, r.elapsed.Round(time.Millisecond), k.KeyID)
	return &k
}

// signature is the result of `kqnode sign`.
type signature struct {
	R         string   `json:"r"`
	S         string   `json:"s"`
	DER       string   `json:"der"`
	PublicKey string   `json:"public_key"`
	Digest    string   `json:"digest"`
	Protocol  string   `json:"protocol"`
	Signers   []string `json:"signers"`
}

// signArgs are the arguments of `kqnode sign` for digest.
func (k *key) signArgs(digest [32]byte, protocol string, signers []*site) []string {
	return []string{"sign", "--key", k.KeyID, "--digest", hex.EncodeToString(digest[:]),
		"--signers", strings.Join(peerIDs(signers), ","), "--protocol", protocol}
}

// ledger records every signature of a key: each must verify under the
// key, and no two may share r. Two GG20 signatures with one r would mean
// a presignature (its nonce R) was used twice, which leaks the key; GG18
// draws a fresh nonce each time, so the rule covers every signature.
type ledger struct {
	mu   sync.Mutex
	byR  map[string]string // r -> what made it
	gg20 int
	gg18 int
}

func newLedger() *ledger { return &ledger{byR: make(map[string]string)} }

// sign signs a fresh digest with protocol (gg18 or gg20) via the first
// signer, checks the signature independently and records it.
func (k *key) sign(t *testing.T, l *ledger, protocol string, signers ...*site) signature {
	t.Helper()
	via := signers[0]
	digest := sha256.Sum256(fmt.Appendf(nil, "%s %s %s %d", k.KeyID, protocol, names(signers), time.Now().UnixNano()))
	var sig signature
	r := via.ok(t, &sig, k.signArgs(digest, protocol, signers)...)
	k.check(t, l, digest, protocol, signers, sig)
	t.Logf("%s sign by %s via %s: %v", protocol, names(signers), via.name, r.elapsed.Round(time.Millisecond))
	return sig
}

// check verifies sig over digest with dcrd's secp256k1 ECDSA (not the code
// that made it), checks what the result reports, and records r.
func (k *key) check(t *testing.T, l *ledger, digest [32]byte, protocol string, signers []*site, sig signature) {
	t.Helper()
	der, err := hex.DecodeString(sig.DER)
	if err != nil {
		t.Fatalf("der %q: %v", sig.DER, err)
	}
	parsed, err := secpecdsa.ParseDERSignature(der)
	if err != nil {
		t.Fatalf("der %q: %v", sig.DER, err)
	}
	if !parsed.Verify(digest[:], k.pub) {
		t.Fatalf("%s signature by %s does not verify under %s", protocol, names(signers), k.PublicKey)
	}
	r, s := parsed.R(), parsed.S()
	rb, sb := r.Bytes(), s.Bytes()
	if hex.EncodeToString(rb[:]) != sig.R || hex.EncodeToString(sb[:]) != sig.S {
		t.Fatalf("r, s (%s, %s) differ from the DER signature", sig.R, sig.S)
	}
	want := peerIDs(signers)
	slices.Sort(want)
	if sig.Protocol != protocol || sig.PublicKey != k.PublicKey || sig.Digest != hex.EncodeToString(digest[:]) ||
		!slices.Equal(sig.Signers, want) {
		t.Fatalf("sign result %+v, want protocol %s, key %s, signers %v", sig, protocol, k.PublicKey, want)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	what := fmt.Sprintf("%s by %s", protocol, names(signers))
	if prev, dup := l.byR[sig.R]; dup {
		t.Fatalf("r %s appears twice (%s, then %s): a nonce was reused", sig.R, prev, what)
	}
	l.byR[sig.R] = what
	if protocol == "gg20" {
		l.gg20++
	} else {
		l.gg18++
	}
}

// presign makes count presignatures for signers via the first of them,
// in that site's own pool, and checks that every signer then holds the
// same number of that pool.
func (k *key) presign(t *testing.T, count int, signers ...*site) {
	t.Helper()
	via := signers[0]
	before := via.pool(t, k.KeyID, signers).Ready
	var res struct {
		Made  int `json:"made"`
		Ready int `json:"ready"`
	}
	r := via.ok(t, &res, "presign", "--key", k.KeyID, "--count", fmt.Sprint(count), "--signers", strings.Join(peerIDs(signers), ","))
	if res.Made != count || res.Ready != before+count {
		t.Fatalf("presign %d for %s: %+v, want %d made and %d ready", count, names(signers), res, count, before+count)
	}
	for _, s := range signers {
		if got := s.pool(t, k.KeyID, signers).Ready; got != before+count {
			t.Fatalf("after presigning, %s holds %d presignatures of pool %s, want %d", s.name, got, names(signers), before+count)
		}
	}
	t.Logf("presign %d for %s via %s: %v", count, names(signers), via.name, r.elapsed.Round(time.Millisecond))
}

// samePools checks that every signer of the pool signers[0] initiates
// holds `ready` presignatures and none is reserved or being made.
func (k *key) samePools(t *testing.T, ready int, signers ...*site) {
	t.Helper()
	for _, s := range signers {
		p := s.pool(t, k.KeyID, signers)
		if p.Ready != ready || p.Reserved != 0 || p.Making != 0 {
			t.Fatalf("%s's pool %s: %+v, want %d ready, none reserved or in the making", s.name, names(signers), p.PoolStatus, ready)
		}
	}
}

// pairs lists every two-site subset of sites.
func pairs(sites []*site) [][]*site {
	var out [][]*site
	for i := range sites {
		for j := i + 1; j < len(sites); j++ {
			out = append(out, []*site{sites[i], sites[j]})
		}
	}
	return out
}

// freeTCP returns a loopback TCP port that was free a moment ago.
func freeTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeOperatorKey makes the site's operator key (ed25519, in the
// site's directory), sets s.operatorKey and returns the public key file
// that kqnode init registers.
func writeOperatorKey(t *testing.T, s *site) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "operator@"+s.name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s.operatorKey = filepath.Join(filepath.Dir(s.home), "operator")
	if err := os.WriteFile(s.operatorKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := s.operatorKey + ".pub"
	if err := os.WriteFile(pub, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}
