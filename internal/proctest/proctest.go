// Package proctest starts, watches, kills and restarts the OS processes of
// multi-process tests: each process gets its own directory (with a store
// directory kept across restarts), optionally its own SoftHSM2 token
// directory and token, and optionally runs inside a network namespace
// (internal/netns). Output is captured to a log file per process and can be
// waited on line by line; every process is killed when the test ends, and
// the tail of each log is printed when the test failed.
//
// The child side reads its settings with [FromEnv].
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// Environment variables a [Cluster] sets for its processes.
const (
	EnvName       = "KQ_PROC_NAME" // the process's name in the cluster
	EnvDir        = "KQ_PROC_DIR"  // its private directory
	EnvStoreDir   = "KQ_STORE_DIR" // its store directory, kept across restarts
	EnvModule     = "KQ_PKCS11_MODULE"
	EnvTokenLabel = "KQ_TOKEN_LABEL" // its SoftHSM2 token's label
	EnvPINFile    = "KQ_PIN_FILE"    // file holding the token's user PIN
	EnvRole       = "KQ_TEST_ROLE"   // set by SelfSpec: which role a re-executed test binary plays
)

// Child is what a process started by a [Cluster] learns from its environment.
type Child struct {
	Name, Dir, StoreDir string
	// Module, TokenLabel and PINFile are set when the process has a
	// SoftHSM2 token (Spec.HSM); PINSource is "file:" + PINFile.
	Module, TokenLabel, PINFile string
	// Role is set when the process is a re-executed test binary (SelfSpec).
	Role string
}

// FromEnv returns the child's settings; ok is false when the process was
// not started by a [Cluster].
func FromEnv() (c Child, ok bool) {
	c = Child{
		Name: os.Getenv(EnvName), Dir: os.Getenv(EnvDir), StoreDir: os.Getenv(EnvStoreDir),
		Module: os.Getenv(EnvModule), TokenLabel: os.Getenv(EnvTokenLabel), PINFile: os.Getenv(EnvPINFile),
		Role: os.Getenv(EnvRole),
	}
	return c, c.Name != ""
}

// Spec describes a process to start.
type Spec struct {
	// Name identifies the process in the cluster and its logs; it must be
	// unique and usable as a file name.
	Name string
	// Path is the executable; Args its arguments.
	Path string
	Args []string
	// Env is added to the test's environment.
	Env []string
	// Netns, when set, runs the process in that network namespace via
	// `ip netns exec` (see internal/netns).
	Netns string
	// HSM gives the process its own SoftHSM2 token directory with one
	// token, created at the first start and kept across restarts.
	HSM bool
}

// SelfSpec returns a [Spec] that re-executes the running test binary so that
// only the named test runs, with [EnvRole] set to role. The test (or
// TestMain) checks FromEnv().Role and plays the role instead of testing.
func SelfSpec(name, testName, role string) (Spec, error) {
	exe, err := os.Executable()
	if err != nil {
		return Spec{}, err
	}
	return Spec{Name: name, Path: exe, Args: []string{"-test.run=^" + testName + "$", "-test.v"},
		Env: []string{EnvRole + "=" + role}}, nil
}

// Cluster owns the processes of one test.
type Cluster struct {
	t    testing.TB
	root string

	mu    sync.Mutex
	procs map[string]*Proc
	order []*Proc
}

// New returns an empty cluster whose processes are killed when t ends.
func New(t testing.TB) *Cluster {
	c := &Cluster{t: t, root: t.TempDir(), procs: make(map[string]*Proc)}
	t.Cleanup(c.cleanup)
	return c
}

func (c *Cluster) cleanup() {
	c.mu.Lock()
	procs := append([]*Proc(nil), c.order...)
	c.mu.Unlock()
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			c.t.Errorf("proctest: kill %s: %v", p.Name, err)
		}
	}
	for _, p := range procs {
		if c.t.Failed() {
			c.t.Logf("proctest: last output of %s (%s):\n%s", p.Name, p.LogPath, p.tail(60))
		}
		p.log.file.Close()
	}
}

// Proc is one process of a cluster, across restarts.
type Proc struct {
	// Name is the process's name in the cluster.
	Name string
	// Dir is the process's private directory; StoreDir (inside it) is meant
	// for its sealed store and survives restarts.
	Dir, StoreDir string
	// HSM is the process's SoftHSM2 token, or nil.
	HSM *softhsm.Token
	// PINFile holds HSM's user PIN (mode 0600).
	PINFile string
	// LogPath is the file that collects stdout and stderr of every run.
	LogPath string

	spec Spec
	log  *lineLog

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
	err  error         // the current run's exit status, after done
	from int           // index of the current run's first line in log
}

// Start creates the process's directories (and token) and starts it.
func (c *Cluster) Start(ctx context.Context, spec Spec) (*Proc, error) {
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\\") {
		return nil, fmt.Errorf("proctest: bad process name %q", spec.Name)
	}
	dir := filepath.Join(c.root, spec.Name)
	p := &Proc{Name: spec.Name, Dir: dir, StoreDir: filepath.Join(dir, "store"), LogPath: filepath.Join(dir, "output.log"), spec: spec}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.procs[spec.Name]; dup {
		return nil, fmt.Errorf("proctest: process %s exists", spec.Name)
	}
	if err := os.MkdirAll(p.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("proctest: %s: %w", spec.Name, err)
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.log = &lineLog{file: f, changed: make(chan struct{})}
	c.procs[spec.Name] = p
	c.order = append(c.order, p)

	if spec.HSM {
		hsmRoot := filepath.Join(dir, "softhsm")
		if err := os.MkdirAll(hsmRoot, 0o700); err != nil {
			return nil, err
		}
		d, err := softhsm.CreateDir(hsmRoot)
		if err != nil {
			return nil, fmt.Errorf("proctest: %s: %w", spec.Name, err)
		}
		if p.HSM, err = d.CreateToken(); err != nil {
			return nil, fmt.Errorf("proctest: %s: %w", spec.Name, err)
		}
		p.PINFile = filepath.Join(dir, "pin")
		if err := os.WriteFile(p.PINFile, []byte(p.HSM.PIN+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return p, p.start(ctx)
}

// start runs the process once. ctx bounds only the start itself: the
// process runs until it exits or is killed.
func (p *Proc) start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exited() {
		return fmt.Errorf("proctest: %s is already running", p.Name)
	}
	path, args := p.spec.Path, p.spec.Args
	if p.spec.Netns != "" {
		path, args = "ip", append([]string{"netns", "exec", p.spec.Netns, p.spec.Path}, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Env = append(cmd.Env, EnvName+"="+p.Name, EnvDir+"="+p.Dir, EnvStoreDir+"="+p.StoreDir)
	if p.HSM != nil {
		cmd.Env = append(cmd.Env, p.HSM.Dir.Env(), EnvModule+"="+p.HSM.Dir.Module,
			EnvTokenLabel+"="+p.HSM.Label, EnvPINFile+"="+p.PINFile)
	}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Own process group, so Kill reaches anything the process starts; and
	// die with the test binary if it is killed itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.from = p.log.count()
	p.log.note(fmt.Sprintf("proctest: starting %s: %s %s", p.Name, path, strings.Join(args, " ")))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("proctest: start %s: %w", p.Name, err)
	}
	p.cmd, p.done, p.err = cmd, make(chan struct{}), nil
	done := p.done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		p.log.note(fmt.Sprintf("proctest: %s exited: %v", p.Name, err))
		close(done)
	}()
	return nil
}

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Running reports whether the current run has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exited()
}

// Kill sends SIGKILL to the process group (as `kill -9` would) and waits
// until the process has exited. Killing an exited process does nothing.
func (p *Proc) Kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("proctest: %s did not exit after SIGKILL", p.Name)
	}
}

// Signal sends sig to the process (not its group), for graceful stops.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return errors.New("proctest: not started")
	}
	return p.cmd.Process.Signal(sig)
}

// Restart kills the process if it runs and starts it again with the same
// spec, directories and token.
func (p *Proc) Restart(ctx context.Context) error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.start(ctx)
}

// Wait waits for the current run to exit and returns its exit error (nil
// for exit status 0).
func (p *Proc) Wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return errors.New("proctest: not started")
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitForLine waits until the current run prints a line that starts with
// prefix and returns that line. It fails if the run exits first.
func (p *Proc) WaitForLine(ctx context.Context, prefix string) (string, error) {
	p.mu.Lock()
	from, done := p.from, p.done
	p.mu.Unlock()
	for {
		lines, changed := p.log.since(from)
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		}
		from += len(lines)
		select {
		case <-changed:
		case <-done:
			// Read what it printed before exiting.
			if lines, _ := p.log.since(from); len(lines) > 0 {
				continue
			}
			return "", fmt.Errorf("proctest: %s exited before printing %q", p.Name, prefix)
		case <-ctx.Done():
			return "", fmt.Errorf("proctest: %s did not print %q: %w", p.Name, prefix, ctx.Err())
		}
	}
}

// Output returns everything the process printed, over all runs.
func (p *Proc) Output() string {
	lines, _ := p.log.since(0)
	return strings.Join(lines, "\n")
}

func (p *Proc) tail(n int) string {
	lines, _ := p.log.since(0)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lineLog is an io.Writer that appends to a file and keeps complete lines
// in memory for WaitForLine.
type lineLog struct {
	mu      sync.Mutex
	file    *os.File
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced when lines grow
}

// Write appends b to the log file and records each completed line.
func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Write(b)
	l.partial = append(l.partial, b...)
	grew := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		grew = true
	}
	if grew {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(b), nil
}

// note records a line of the harness's own.
func (l *lineLog) note(s string) { io.WriteString(l, s+"\n") }

func (l *lineLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func (l *lineLog) since(i int) ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i > len(l.lines) {
		i = len(l.lines)
	}
	return append([]string(nil), l.lines[i:]...), l.changed
}

// Build compiles the main package pkg (an import path or ./dir) into dir and
// returns the binary's path. The go command's build cache makes repeated
// builds cheap.
func Build(ctx context.Context, dir, pkg string, race bool) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("proctest: go build %s: %w: %s", pkg, err, msg)
	}
	return out, nil
}
