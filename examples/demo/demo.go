package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// site is one `kqnode run` process and its files.
type site struct {
	name    string // "a", "b", "c"
	home    string
	pinFile string
	label   string
	port    int
	peerID  string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// step is one line of the summary.
type step struct {
	name string
	took time.Duration
	note string
	err  error
}

type demo struct {
	o      options
	out    io.Writer
	dir    string
	hsm    *softhsm.Dir // the three sites' tokens
	module string
	kqnode string
	policy string // the signing policy every site loads (written by writePolicy)
	// approvers are the demo's two people: name → private key file.
	approvers map[string]string
	// operator is the private key file of the sites' operator (every
	// role), which signs the demo's API requests ($KQ_OPERATOR_KEY).
	operator string
	sites    []*site
	steps    []step
	started  time.Time
}

func newDemo(o options, out io.Writer) (*demo, error) {
	kq, err := filepath.Abs(o.kqnode)
	if err == nil {
		_, err = os.Stat(kq)
	}
	if err != nil {
		return nil, fmt.Errorf("kqnode binary %q: %w (build it with `make kqnode`)", o.kqnode, err)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return nil, errors.New("ssh-keygen not found: the demo's approvers sign with it (install openssh-client; `make deps` does it with apt)")
	}
	if m, _ := filepath.Glob(filepath.Join(o.fixtures, "preparams-*.json")); len(m) < 3 {
		return nil, fmt.Errorf("need at least 3 pre-parameter fixtures in %s (run the demo from the repository root, or pass -fixtures)", o.fixtures)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return nil, errors.New("softhsm2-util not found: install SoftHSM2 (`make deps` does it with apt)")
	}
	module, err := softhsm.ModulePath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keyquorum-demo-")
	if err != nil {
		return nil, err
	}
	return &demo{o: o, out: out, dir: dir, module: module, kqnode: kq, started: time.Now()}, nil
}

func (d *demo) printf(format string, args ...any) {
	if !d.o.quiet {
		fmt.Fprintf(d.out, format, args...)
	}
}

// do runs one step, records how long it took and prints its outcome.
func (d *demo) do(name string, f func() (string, error)) error {
	d.printf("==> %s\n", name)
	start := time.Now()
	note, err := f()
	s := step{name: name, took: time.Since(start), note: note, err: err}
	d.steps = append(d.steps, s)
	if err != nil {
		d.printf("    FAILED after %s: %v\n", s.took.Round(time.Millisecond), err)
		return fmt.Errorf("%s: %w", name, err)
	}
	if note != "" {
		for _, l := range strings.Split(note, "\n") {
			d.printf("    %s\n", l)
		}
	}
	d.printf("    ok (%s)\n", s.took.Round(time.Millisecond))
	return nil
}

func (d *demo) run(ctx context.Context) error {
	fmt.Fprintln(d.out, "keyquorum demo: three sites on this machine, each with its own SoftHSM2 token, store and libp2p host")
	fmt.Fprintln(d.out, "NOTE: to skip safe-prime generation (minutes of CPU), the sites import the Paillier pre-parameter")
	fmt.Fprintln(d.out, "      TEST FIXTURES in "+d.o.fixtures+". Their secrets are public, so the demo's keys are not")
	fmt.Fprintln(d.out, "      secret: never send value to the addresses below. A real site generates its own (kqnode run does).")
	fmt.Fprintln(d.out, "      Working directory: "+d.dir)
	fmt.Fprintln(d.out)

	if err := d.do("create three SoftHSM2 tokens", d.createTokens); err != nil {
		return err
	}
	if err := d.do("kqnode init: seal key and identity key in each token", d.initSites); err != nil {
		return err
	}
	if err := d.do("two approvers make SSH keys; every site loads a policy naming them", d.writePolicy); err != nil {
		return err
	}
	if err := d.do("kqnode run: start three sites on 127.0.0.1", func() (string, error) { return d.startSites(ctx) }); err != nil {
		return err
	}
	a, b, c := d.sites[0], d.sites[1], d.sites[2]
	var key keygenOut
	if err := d.do("2-of-3 keygen", func() (string, error) {
		if err := d.client(ctx, a, &key, "keygen", "--threshold", "2", "--parties", a.peerID+","+b.peerID+","+c.peerID); err != nil {
			return "", err
		}
		return fmt.Sprintf("key %s\npublic key %s\nregtest address %s, Ethereum address %s",
			key.KeyID, key.PublicKey, key.BTCAddress, key.ETHAddress), nil
	}); err != nil {
		return err
	}
	if err := d.do("sign a digest (sites a+b, GG18), verify with decred's secp256k1", func() (string, error) {
		return d.signDigest(ctx, a, &key, "keyquorum demo: pay 1 BTC", []*site{a, b}, "gg18")
	}); err != nil {
		return err
	}
	var req requestOut
	if err := d.do("request a 0.3 BTC withdrawal (a regtest PSBT) on site b: its summary, and the policy wants two approvals", func() (string, error) {
		var err error
		req, err = d.createRequest(ctx, b, &key, 30_000_000)
		if err != nil {
			return "", err
		}
		return req.describe(), nil
	}); err != nil {
		return err
	}
	if err := d.do("alice and bob approve with ssh-keygen -Y sign", func() (string, error) {
		return d.approve(ctx, b, &req, "alice", "bob")
	}); err != nil {
		return err
	}
	if err := d.do("sign the approved request (sites b+c: each checks intent, policy and approvals), verify with btcd's script engine", func() (string, error) {
		return d.signRequest(ctx, b, &req, []*site{b, c})
	}); err != nil {
		return err
	}
	if err := d.do("request 0.45 BTC: the policy denies it, even approved, and nothing is signed", func() (string, error) {
		return d.expectDenied(ctx, b, &key, []*site{b, c})
	}); err != nil {
		return err
	}
	if err := d.do("sign an EIP-1559 transaction (sites a+c), recover the sender with go-ethereum", func() (string, error) {
		return d.signEthereum(ctx, c, &key, []*site{a, c})
	}); err != nil {
		return err
	}
	if err := d.do("GG20: 3 presignatures for sites a+b", func() (string, error) {
		var res presignOut
		if err := d.client(ctx, a, &res, "presign", "--key", key.KeyID, "--count", "3", "--signers", a.peerID+","+b.peerID); err != nil {
			return "", err
		}
		if res.Ready < 3 {
			return "", fmt.Errorf("%d presignatures ready after making %d, want 3", res.Ready, res.Made)
		}
		return fmt.Sprintf("%d made, %d ready on site a", res.Made, res.Ready), nil
	}); err != nil {
		return err
	}
	if err := d.do("GG20: one-round signature from a presignature, verify", func() (string, error) {
		return d.signDigest(ctx, a, &key, "keyquorum demo: GG20", []*site{a, b}, "gg20")
	}); err != nil {
		return err
	}
	if err := d.do("stop site c (SIGTERM), sign with a+b", func() (string, error) {
		if err := d.stop(c); err != nil {
			return "", err
		}
		return d.signDigest(ctx, a, &key, "keyquorum demo: c is down", []*site{a, b}, "gg18")
	}); err != nil {
		return err
	}
	if err := d.do("stop site b too: a+b cannot sign, the error names b", func() (string, error) {
		if err := d.stop(b); err != nil {
			return "", err
		}
		return d.expectRefusal(ctx, a, &key, b)
	}); err != nil {
		return err
	}
	if err := d.do("stop site a; kqnode audit verify each site's audit log (HSM-signed checkpoints)", func() (string, error) {
		if err := d.stop(a); err != nil {
			return "", err
		}
		return d.verifyAudit(ctx)
	}); err != nil {
		return err
	}
	return nil
}

func (d *demo) createTokens() (string, error) {
	hsm, err := softhsm.CreateDir(d.dir)
	if err != nil {
		return "", err
	}
	d.hsm = hsm
	var labels []string
	for _, name := range []string{"a", "b", "c"} {
		s := &site{name: name, home: filepath.Join(d.dir, "site-"+name), label: "demo-site-" + name,
			pinFile: filepath.Join(d.dir, "pin-"+name), logPath: filepath.Join(d.dir, "site-"+name+".log")}
		tok, err := hsm.CreateTokenLabelled(s.label)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(s.pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
			return "", err
		}
		d.sites = append(d.sites, s)
		labels = append(labels, s.label)
	}
	return "tokens " + strings.Join(labels, ", ") + " (random PINs in files readable only by you)", nil
}

func (d *demo) initSites() (string, error) {
	var lines []string
	for i, s := range d.sites {
		// Two fixture sets per site, none shared between sites.
		fx := []string{
			filepath.Join(d.o.fixtures, fmt.Sprintf("preparams-%02d.json", 2*i)),
			filepath.Join(d.o.fixtures, fmt.Sprintf("preparams-%02d.json", 2*i+1)),
		}
		if _, err := os.Stat(fx[1]); err != nil {
			fx = fx[:1]
		}
		var res struct {
			PeerID string `json:"peer_id"`
		}
		if d.operator == "" {
			key := filepath.Join(d.dir, "operator")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator@demo", "-f", key).CombinedOutput(); err != nil {
				return "", fmt.Errorf("ssh-keygen -t ed25519 for the operator: %w: %s", err, out)
			}
			d.operator = key
		}
		if err := d.kq(context.Background(), &res, "init", "--home", s.home, "--module", d.module, "--token", s.label,
			"--pin-source", "file:"+s.pinFile, "--preparams-fixtures", strings.Join(fx, ","),
			"--admin-key", d.operator+".pub", "--admin-name", "operator", "--admin-roles", "admin,requester,approver,auditor"); err != nil {
			return "", err
		}
		s.peerID = res.PeerID
		lines = append(lines, fmt.Sprintf("site %s: peer %s", s.name, s.peerID))
	}
	return strings.Join(lines, "\n"), nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (d *demo) startSites(ctx context.Context) (string, error) {
	type peer struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	var peers []peer
	for _, s := range d.sites {
		p, err := freePort()
		if err != nil {
			return "", err
		}
		s.port = p
		peers = append(peers, peer{PeerID: s.peerID, Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p)}})
	}
	peerFile := filepath.Join(d.dir, "peers.json")
	b, _ := json.MarshalIndent(peers, "", "  ")
	if err := os.WriteFile(peerFile, b, 0o644); err != nil {
		return "", err
	}
	var lines []string
	for _, s := range d.sites {
		if err := d.start(ctx, s, peerFile); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("site %s: libp2p 127.0.0.1:%d, log %s", s.name, s.port, s.logPath))
	}
	return strings.Join(lines, "\n"), nil
}

// start runs `kqnode run` for s and waits for its ready line. With extra
// flags, they replace the peer file, the listen address and the timeouts.
func (d *demo) start(ctx context.Context, s *site, peerFile string, extra ...string) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"run", "--home", s.home, "--peers", peerFile, "--policy", d.policy,
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port), "--api", "127.0.0.1:0",
		"--preparams-target", "0", // the fixtures suffice; no safe primes during the demo
		"--join-timeout", "10s", "--send-timeout", "10s", "--round-timeout", "1m"}
	if extra != nil {
		args = append([]string{"run", "--home", s.home, "--policy", d.policy, "--preparams-target", "0"}, extra...)
	}
	cmd := exec.Command(d.kqnode, args...)
	cmd.Env = append(os.Environ(), d.hsm.Env(), "KQ_OPERATOR_KEY="+d.operator)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	// Own process group: a Ctrl-C at the terminal reaches the demo, which
	// stops the sites itself. They die with the demo if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start site %s: %w", s.name, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), `{"ready":true`) {
				close(ready)
				signalled = true
			}
		}
		cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	select {
	case <-ready:
		return nil
	case <-s.exited:
		return fmt.Errorf("site %s exited during start-up; see %s:\n%s", s.name, s.logPath, tail(s.logPath, 10))
	case <-time.After(60 * time.Second):
		return fmt.Errorf("site %s not ready after 60 s; see %s", s.name, s.logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends a site with SIGTERM (a graceful stop) and waits for it.
func (d *demo) stop(s *site) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(20 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("site %s did not stop within 20 s of SIGTERM", s.name)
	}
}

// cleanup stops every site and removes the working directory.
func (d *demo) cleanup() error {
	var errs []error
	for _, s := range d.sites {
		if err := d.stop(s); err != nil {
			errs = append(errs, err)
		}
	}
	if d.o.keep {
		fmt.Fprintln(d.out, "kept", d.dir)
	} else if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kqError is a failed kqnode command.
type kqError struct {
	args   []string
	Code   string   `json:"code"`
	Msg    string   `json:"error"`
	Sites  []string `json:"parties"`
	stderr string
}

func (e *kqError) Error() string {
	return fmt.Sprintf("kqnode %s: %s (code %s)", e.args[0], strings.TrimSpace(e.Msg), e.Code)
}

// kq runs one kqnode command with --json and decodes its JSON output.
func (d *demo) kq(ctx context.Context, out any, args ...string) error {
	cmd := exec.CommandContext(ctx, d.kqnode, append(args, "--json")...)
	cmd.Env = append(os.Environ(), d.hsm.Env(), "KQ_OPERATOR_KEY="+d.operator)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("kqnode %s: %w", args[0], context.Cause(ctx))
	}
	if runErr != nil {
		e := &kqError{args: args, stderr: stderr.String()}
		if json.Unmarshal(stdout.Bytes(), e) != nil || e.Code == "" {
			return fmt.Errorf("kqnode %s: %w: %s", args[0], runErr, stderr.String())
		}
		return e
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("kqnode %s printed %q: %w", args[0], stdout.String(), err)
	}
	return nil
}

// client runs a client command against site s.
func (d *demo) client(ctx context.Context, s *site, out any, cmd string, args ...string) error {
	return d.kq(ctx, out, append([]string{cmd, "--home", s.home}, args...)...)
}

func (d *demo) summary(runErr error) {
	fmt.Fprintln(d.out)
	fmt.Fprintln(d.out, "Summary")
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, s := range d.steps {
		res := "ok"
		if s.err != nil {
			res = "FAILED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.name, s.took.Round(10*time.Millisecond), res)
	}
	tw.Flush()
	if runErr != nil {
		fmt.Fprintf(d.out, "demo FAILED after %s\n", time.Since(d.started).Round(time.Second))
		return
	}
	fmt.Fprintf(d.out, "all checks passed in %s; the sites are stopped", time.Since(d.started).Round(time.Second))
	if !d.o.keep {
		fmt.Fprintf(d.out, " and %s is removed", d.dir)
	}
	fmt.Fprintln(d.out)
}

// printLogs shows the end of every site's log, before clean-up removes it.
func (d *demo) printLogs() {
	for _, s := range d.sites {
		fmt.Fprintf(d.out, "--- last lines of site %s (%s):\n%s\n", s.name, s.logPath, tail(s.logPath, 15))
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func digestOf(msg string) [32]byte { return sha256.Sum256([]byte(msg)) }
