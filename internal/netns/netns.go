// Package netns builds throw-away Linux network namespaces for tests that
// need separated hosts: one namespace per party, each joined by a veth pair
// to a bridge in a private hub namespace, optionally with tc netem delay on
// every party's link. Nothing is created in the caller's own namespace, so
// deleting the namespaces removes every link and bridge with them.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; netem also
// needs the kernel's sch_netem. [Setup] skips the test with the reason when
// any of them is missing.
//
// Processes run in a namespace with [Topology.Command] (ip netns exec). The
// caller stops them; internal/proctest does that in its cleanup, before
// Setup's cleanup deletes the namespaces. Namespace names carry the
// creating process's PID, so [Sweep] can remove what a crashed test run left
// behind without touching a concurrent run's namespaces.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Prefix starts the name of every namespace this package creates:
// Prefix + PID + "-" + sequence + "-" + role.
const Prefix = "kqtest"

// Subnet is the IPv4 subnet of every topology's bridge; party i has address
// 10.254.0.(i+1). Topologies are isolated from each other and from the
// host, so they can all use it.
var Subnet = netip.MustParsePrefix("10.254.0.0/24")

// Options describe a topology.
type Options struct {
	// Parties is the number of party namespaces (1..200).
	Parties int
	// Delay is added by tc netem to every packet a party sends, so a round
	// trip between two parties takes at least 2×Delay. Zero adds none.
	Delay time.Duration
}

// Party is one party's namespace.
type Party struct {
	// Namespace is the name for `ip netns exec`.
	Namespace string
	// Addr is the party's address on the bridge.
	Addr netip.Addr
}

// Topology is a set of namespaces created by [New].
type Topology struct {
	// Hub is the namespace holding the bridge.
	Hub string
	// Parties are the party namespaces, in order.
	Parties []Party
	// Delay is the netem delay on each party's link.
	Delay time.Duration

	mu      sync.Mutex
	created []string // namespaces to delete, in creation order
	closed  bool
}

var seq atomic.Uint64

// New creates the namespaces, links, addresses and delays described by opts.
// On error it removes whatever it created.
func New(ctx context.Context, opts Options) (*Topology, error) {
	if opts.Parties < 1 || opts.Parties > 200 {
		return nil, fmt.Errorf("netns: %d parties, want 1..200", opts.Parties)
	}
	if opts.Delay < 0 {
		return nil, errors.New("netns: negative delay")
	}
	base := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), seq.Add(1))
	t := &Topology{Hub: base + "-hub", Delay: opts.Delay}
	if err := t.build(ctx, base, opts); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context, base string, opts Options) error {
	if err := t.addNamespace(ctx, t.Hub); err != nil {
		return err
	}
	if err := ip(ctx, "-n", t.Hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := ip(ctx, "-n", t.Hub, "link", "set", "br0", "up"); err != nil {
		return err
	}
	addr := Subnet.Addr()
	for i := range opts.Parties {
		addr = addr.Next()
		p := Party{Namespace: fmt.Sprintf("%s-p%d", base, i), Addr: addr}
		if err := t.addNamespace(ctx, p.Namespace); err != nil {
			return err
		}
		hubEnd := fmt.Sprintf("vp%d", i)
		steps := [][]string{
			// Both ends are created inside their namespaces: no name in
			// the caller's namespace can clash.
			{"-n", t.Hub, "link", "add", hubEnd, "type", "veth", "peer", "name", "eth0", "netns", p.Namespace},
			{"-n", t.Hub, "link", "set", hubEnd, "master", "br0"},
			{"-n", t.Hub, "link", "set", hubEnd, "up"},
			{"-n", p.Namespace, "addr", "add", netip.PrefixFrom(addr, Subnet.Bits()).String(), "dev", "eth0"},
			{"-n", p.Namespace, "link", "set", "eth0", "up"},
			{"-n", p.Namespace, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return err
			}
		}
		if opts.Delay > 0 {
			delay := strconv.FormatInt(opts.Delay.Microseconds(), 10) + "us"
			if err := run(ctx, "ip", "netns", "exec", p.Namespace, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", delay); err != nil {
				return err
			}
		}
		t.Parties = append(t.Parties, p)
	}
	return nil
}

func (t *Topology) addNamespace(ctx context.Context, name string) error {
	if err := ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	t.mu.Lock()
	t.created = append(t.created, name)
	t.mu.Unlock()
	return nil
}

// Command returns a command that runs name with args inside party i's
// namespace. The command is not started.
func (t *Topology) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", t.Parties[i].Namespace, name}, args...)...)
}

// Close deletes the topology's namespaces, and with them their links,
// bridge and qdiscs. Processes still running inside keep a namespace alive
// until they exit, so stop them first. Close is idempotent.
func (t *Topology) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for i := len(t.created) - 1; i >= 0; i-- {
		if err := deleteNamespace(t.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteNamespace(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := ip(ctx, "netns", "del", name)
	if err != nil && !exists(name) {
		return nil
	}
	return err
}

func exists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name)
	return err == nil
}

// Namespaces lists the namespaces whose names start with [Prefix].
func Namespaces(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("netns: ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// Lines look like "name" or "name (id: 3)".
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, Prefix) {
			names = append(names, name)
		}
	}
	return names, nil
}

// Sweep deletes namespaces left by test processes that no longer run (their
// PID is in the name) and returns how many it removed. Namespaces of live
// processes, including the caller's, are left alone.
func Sweep(ctx context.Context) (int, error) {
	names, err := Namespaces(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, name := range names {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, Prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if err := deleteNamespace(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var (
	availOnce sync.Once
	availErr  error
	netemOnce sync.Once
	netemErr  error
)

// Available reports why namespaces cannot be built here, or nil when they
// can: it needs root, the ip command and a kernel that lets it add a
// namespace (checked by adding and deleting one).
func Available() error {
	availOnce.Do(func() {
		if os.Geteuid() != 0 {
			availErr = errors.New("not running as root")
			return
		}
		if _, err := exec.LookPath("ip"); err != nil {
			availErr = errors.New("the ip command (iproute2) is not installed")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		name := fmt.Sprintf("%s%d-probe", Prefix, os.Getpid())
		if err := ip(ctx, "netns", "add", name); err != nil {
			availErr = fmt.Errorf("cannot add a network namespace: %w", err)
			return
		}
		availErr = deleteNamespace(name)
	})
	return availErr
}

// NetemAvailable reports why tc netem cannot delay packets here, or nil
// when it can (checked on the loopback device of a scratch namespace).
func NetemAvailable() error {
	netemOnce.Do(func() {
		if err := Available(); err != nil {
			netemErr = err
			return
		}
		if _, err := exec.LookPath("tc"); err != nil {
			netemErr = errors.New("the tc command (iproute2) is not installed")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		name := fmt.Sprintf("%s%d-netem", Prefix, os.Getpid())
		if err := ip(ctx, "netns", "add", name); err != nil {
			netemErr = err
			return
		}
		defer deleteNamespace(name)
		if err := run(ctx, "ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"); err != nil {
			netemErr = fmt.Errorf("tc netem is not usable (is the sch_netem kernel module available?): %w", err)
		}
	})
	return netemErr
}

// Setup builds a topology for a test, or skips the test with the reason
// when this machine cannot (not root, no iproute2, no netem for a delay).
// It first sweeps namespaces left by dead test runs, and deletes the new
// topology when the test ends, whether it passed or not.
func Setup(t testing.TB, opts Options) *Topology {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	if opts.Delay > 0 {
		if err := NetemAvailable(); err != nil {
			t.Skipf("cannot add %v of delay: %v", opts.Delay, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := Sweep(ctx); err != nil {
		t.Logf("netns: sweeping stale namespaces: %v", err)
	} else if n > 0 {
		t.Logf("netns: removed %d namespaces left by earlier runs", n)
	}
	topo, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("netns: cleanup: %v", err)
		}
	})
	return topo
}

func ip(ctx context.Context, args ...string) error { return run(ctx, "ip", args...) }

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
