package driver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/netns"
)

// Mode says how a deployment runs its sites.
type Mode string

const (
	// InProcess runs every site in one process over memnet.
	InProcess Mode = "memnet"
	// Processes runs each site in its own process over libp2p on loopback.
	Processes Mode = "libp2p"
	// Emulated is Processes with every site's network wrapped in a
	// party.Delay, so a request can set an emulated round trip time.
	Emulated Mode = "libp2p-emulated"
	// Namespaced is Processes with each site in its own network namespace
	// of a netns.Topology (see StartIn).
	Namespaced Mode = "libp2p-netns"
)

// Deployment is a running set of party processes.
type Deployment struct {
	Mode  Mode
	Sites []int
	procs []*proc
	host  map[int]*proc // site → its process
}

// proc is one party process and its control pipes.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan []byte
	exit  chan struct{}
	err   error // exit error, set before exit closes
	log   string
	mu    sync.Mutex // one request at a time
}

// Start starts the sites (indexes into l.Sites) in mode and waits until
// every process has said hello (and, over libp2p, learned the others'
// addresses). Mode [Namespaced] needs StartIn.
func (l *Lab) Start(ctx context.Context, mode Mode, sites []int) (*Deployment, error) {
	if mode == Namespaced {
		return nil, fmt.Errorf("driver: mode %s needs a topology (StartIn)", mode)
	}
	return l.start(ctx, mode, sites, nil)
}

// StartIn starts the sites as [Processes], the k-th site in the k-th party
// namespace of topo, listening on that namespace's bridge address.
func (l *Lab) StartIn(ctx context.Context, topo *netns.Topology, sites []int) (*Deployment, error) {
	if len(topo.Parties) < len(sites) {
		return nil, fmt.Errorf("driver: %d sites for %d namespaces", len(sites), len(topo.Parties))
	}
	return l.start(ctx, Namespaced, sites, topo)
}

func (l *Lab) start(ctx context.Context, mode Mode, sites []int, topo *netns.Topology) (_ *Deployment, err error) {
	d := &Deployment{Mode: mode, Sites: sites, host: map[int]*proc{}}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	var groups [][]party.Site
	switch mode {
	case InProcess:
		var g []party.Site
		for _, i := range sites {
			g = append(g, l.Sites[i])
		}
		groups = append(groups, g)
	case Processes, Emulated, Namespaced:
		for _, i := range sites {
			groups = append(groups, []party.Site{l.Sites[i]})
		}
	default:
		return nil, fmt.Errorf("driver: unknown mode %q", mode)
	}
	var hellos []party.Hosted
	for gi, g := range groups {
		cfg := party.Config{Sites: g, Network: party.Libp2p, Committee: l.IDs, EmulateLatency: mode == Emulated}
		if mode == InProcess {
			cfg.Network = party.Memnet
		}
		command := func(args ...string) *exec.Cmd { return exec.Command(l.Binary, args...) }
		if topo != nil {
			addr := topo.Parties[gi].Addr.String()
			cfg.Listen = []string{"/ip4/" + addr + "/tcp/0", "/ip4/" + addr + "/udp/0/quic-v1"}
			command = func(args ...string) *exec.Cmd {
				return topo.Command(context.Background(), gi, l.Binary, args...)
			}
		}
		name := string(mode) + "-" + strconv.Itoa(gi)
		p, hello, err := l.spawn(ctx, name, cfg, command)
		if err != nil {
			return nil, err
		}
		d.procs = append(d.procs, p)
		for _, h := range hello.Parties {
			d.host[h.Index] = p
			hellos = append(hellos, h)
		}
	}
	if mode != InProcess {
		if err := d.Each(ctx, party.Request{Op: party.OpPeers, Peers: hellos}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (l *Lab) spawn(ctx context.Context, name string, cfg party.Config, command func(args ...string) *exec.Cmd) (*proc, *party.Hello, error) {
	dir := filepath.Join(l.Root, "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	cfgPath := filepath.Join(dir, name+".json")
	if err := writeJSON(cfgPath, cfg); err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := command("serve", cfgPath)
	cmd.Env = append(os.Environ(), l.Env())
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("driver: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stdin: stdin, lines: make(chan []byte, 1), exit: make(chan struct{}), log: logPath}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
		p.err = cmd.Wait()
		close(p.exit)
	}()
	line, err := p.read(ctx, time.Minute)
	if err != nil {
		p.stop()
		return nil, nil, err
	}
	var hello party.Hello
	if err := json.Unmarshal(line, &hello); err != nil {
		p.stop()
		return nil, nil, fmt.Errorf("driver: %s said %q instead of hello: %w", name, line, err)
	}
	return p, &hello, nil
}

// read waits for the process's next output line.
func (p *proc) read(ctx context.Context, timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-p.lines:
		return line, nil
	case <-p.exit:
		return nil, fmt.Errorf("driver: %s exited (%v)%s", p.name, p.err, p.logTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("driver: %s did not answer within %v%s", p.name, timeout, p.logTail())
	}
}

func (p *proc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "; log " + p.log + ":\n" + strings.Join(lines, "\n")
}

func (p *proc) call(ctx context.Context, req party.Request) (*party.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := p.stdin.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("driver: send to %s: %w%s", p.name, err, p.logTail())
	}
	line, err := p.read(ctx, 45*time.Minute)
	if err != nil {
		return nil, err
	}
	var resp party.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("driver: %s answered %q: %w", p.name, line, err)
	}
	if !resp.OK {
		return &resp, fmt.Errorf("driver: %s: %s%s", p.name, resp.Error, p.logTail())
	}
	return &resp, nil
}

// stop closes the process's stdin, which ends it, and kills it if it has
// not exited after a while.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.exit:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exit
	}
}

// Do sends req to the process that runs site req.Party.
func (d *Deployment) Do(ctx context.Context, req party.Request) (*party.Response, error) {
	p, ok := d.host[req.Party]
	if !ok {
		return nil, fmt.Errorf("driver: site %d is not deployed", req.Party)
	}
	return p.call(ctx, req)
}

// Each sends req to every process of the deployment, one after another.
func (d *Deployment) Each(ctx context.Context, req party.Request) error {
	_, err := d.EachResponse(ctx, req)
	return err
}

// EachResponse is Each that returns the responses, in process order.
func (d *Deployment) EachResponse(ctx context.Context, req party.Request) ([]*party.Response, error) {
	var out []*party.Response
	for _, p := range d.procs {
		resp, err := p.call(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp)
	}
	return out, nil
}

// Processes returns the number of processes.
func (d *Deployment) Processes() int { return len(d.procs) }

// Stop ends every process and waits for them.
func (d *Deployment) Stop() {
	for _, p := range d.procs {
		p.stdin.Close()
	}
	for _, p := range d.procs {
		p.stop()
	}
	d.procs = nil
}

// Running reports whether every process of the deployment still runs.
func (d *Deployment) Running() bool {
	for _, p := range d.procs {
		select {
		case <-p.exit:
			return false
		default:
		}
	}
	return len(d.procs) > 0
}
