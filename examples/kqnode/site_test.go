package main

// An in-process site for the tests of the home checks and the control API:
// `kqnode init` and `kqnode run` (cmdInit, cmdRun) on a real SoftHSM2
// token, with a libp2p host on 127.0.0.1 and the control API as run serves
// it. Faster than the multi-process tests of e2e_test.go, and able to look
// at the daemon's log.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// testSite is one site's token, PIN file, home and peer file.
type testSite struct {
	root    string // holds pin, peers.json and home
	hsm     *softhsm.Dir
	token   *softhsm.Token
	pinFile string
	home    string
	peers   string
	peerID  string
}

// newTestSite creates a token (and sets SOFTHSM2_CONF to its directory for
// the test) and runs `kqnode init` for it.
func newTestSite(t *testing.T) *testSite {
	t.Helper()
	d := softhsm.NewDir(t)
	tok := d.NewToken(t)
	root := t.TempDir()
	s := &testSite{root: root, hsm: d, token: tok, pinFile: filepath.Join(root, "pin"),
		home: filepath.Join(root, "home"), peers: filepath.Join(root, "peers.json")}
	if err := os.WriteFile(s.pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := cmdInit(context.Background(), []string{"--home", s.home, "--module", d.Module, "--token", tok.Label,
		"--pin-source", "file:" + s.pinFile, "--admin-key", testAdmin.pub, "--admin-roles", allRolesList}, &stdout, &stderr); err != nil {
		t.Fatalf("init: %v (%s)", err, stderr.String())
	}
	var res initResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.PeerID == "" {
		t.Fatalf("init printed %q: %v", stdout.String(), err)
	}
	s.peerID = res.PeerID
	// The committee's other member never answers: these tests talk to
	// this site only.
	_, other, err := p2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherID, err := peer.IDFromPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	peers := fmt.Sprintf(`[{"peer_id": %q, "addrs": ["/ip4/127.0.0.1/tcp/1"]}, {"peer_id": %q, "addrs": ["/ip4/127.0.0.1/tcp/2"]}]`, s.peerID, otherID)
	if err := os.WriteFile(s.peers, []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// runningSite is a `kqnode run` in this process.
type runningSite struct {
	cancel context.CancelFunc
	done   chan error
	ready  readyLine
	log    *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the daemon's logger and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readyWriter is run's stdout: it passes on the first line.
type readyWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

// start runs `kqnode run` for the site with extra flags. It returns once
// the site printed its ready line, or with run's error if run returned
// first (a start that was refused).
func (s *testSite) start(t *testing.T, extra ...string) (*runningSite, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSite{cancel: cancel, done: make(chan error, 1), log: &syncBuffer{}}
	out := &readyWriter{lines: make(chan string, 1)}
	args := append([]string{"--home", s.home, "--peers", s.peers, "--policy", testPolicyFile(t), "--listen", "/ip4/127.0.0.1/tcp/0",
		"--preparams-target", "0", "--log-level", "debug"}, extra...)
	go func() { r.done <- cmdRun(ctx, args, out, r.log) }()
	select {
	case line := <-out.lines:
		if err := json.Unmarshal([]byte(line), &r.ready); err != nil || !r.ready.Ready {
			cancel()
			<-r.done
			t.Fatalf("run printed %q instead of its ready line", line)
		}
		t.Cleanup(func() { r.stop(t) })
		return r, nil
	case err := <-r.done:
		cancel()
		if err == nil {
			t.Fatalf("run returned without error and without serving; log:\n%s", r.log)
		}
		return nil, err
	case <-time.After(2 * time.Minute):
		cancel()
		<-r.done
		t.Fatalf("run did not get ready in 2 minutes; log:\n%s", r.log)
		return nil, nil
	}
}

// mustStart is start for a site that must come up.
func (s *testSite) mustStart(t *testing.T, extra ...string) *runningSite {
	t.Helper()
	r, err := s.start(t, extra...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return r
}

// stop stops the site as SIGTERM would; stopping twice is a no-op.
func (r *runningSite) stop(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run after stop: %v", err)
		}
	case <-time.After(time.Minute):
		t.Errorf("run did not stop within a minute")
	}
	r.done = nil
}

// runClient runs a client command (in this process) and returns its exit
// status, its --json object and stderr.
func runClient(t *testing.T, args ...string) (int, errorBody, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "--json"), &stdout, &stderr)
	var eb errorBody
	if code != 0 {
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &eb); err != nil {
			t.Fatalf("kqnode %s: exit %d, stdout %q is not an error object: %v", strings.Join(args, " "), code, stdout.String(), err)
		}
	}
	return code, eb, stderr.String()
}

// testPolicyFile is the repository's allow-raw-digests policy, which the
// tests' sites load (tests and demos only).
func testPolicyFile(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../policies/allow-raw-digests")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
