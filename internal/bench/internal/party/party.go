// Package party runs keyquorum parties for the benchmark suite: each site's
// SoftHSM2 token, sealed store, network (in-memory or libp2p) and protocol
// engine, wired as a library user wires them, behind a line-oriented JSON
// control protocol on stdin and stdout. The suite's driver sends a [Request]
// per line and reads a [Response] per line; the process's first line is a
// [Hello].
//
// It is a benchmark tool: it loads Paillier pre-parameters from the public
// test fixtures, so nothing it makes may ever hold value.
package party

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

// Labels of the keys every site keeps in its token.
const (
	SealKeyLabel  = "kqbench-seal"
	IdentityLabel = "kqbench-identity"
)

// opTimeout bounds one request; the slowest (a 3-of-5 keygen, or 1000
// presignatures) takes minutes on a small machine.
const opTimeout = 30 * time.Minute

// Init creates the seal key and identity key of every site whose token
// lacks them and returns the sites' party IDs, in order. Running it again
// is harmless.
func Init(ctx context.Context, sites []Site) ([]string, error) {
	ids := make([]string, len(sites))
	for i, s := range sites {
		tok, err := openToken(ctx, s)
		if err != nil {
			return nil, err
		}
		_, idKey, err := siteKeys(ctx, tok, true)
		if err == nil {
			var pid tss.PartyID
			pid, err = transport.PartyIDFromPublicKey(idKey.PublicKey())
			ids[i] = string(pid)
		}
		if cerr := tok.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("party: site %d: %w", s.Index, err)
		}
	}
	return ids, nil
}

func openToken(ctx context.Context, s Site) (*hsmshare.Token, error) {
	tok, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: s.Module, TokenLabel: s.TokenLabel, PINSource: "file:" + s.PINFile})
	if err != nil {
		return nil, fmt.Errorf("party: open token of site %d: %w", s.Index, err)
	}
	return tok, nil
}

// siteKeys loads the site's seal and identity keys, creating them first
// when create is set and they are missing.
func siteKeys(ctx context.Context, tok *hsmshare.Token, create bool) (*hsmshare.SealKey, *hsmshare.Identity, error) {
	sk, err := tok.SealKey(ctx, SealKeyLabel)
	if create && errors.Is(err, hsmshare.ErrKeyNotFound) {
		sk, err = tok.CreateSealKey(ctx, SealKeyLabel)
	}
	if err != nil {
		return nil, nil, err
	}
	id, err := tok.Identity(ctx, IdentityLabel)
	if create && errors.Is(err, hsmshare.ErrKeyNotFound) {
		id, err = tok.CreateIdentity(ctx, IdentityLabel)
	}
	if err != nil {
		return nil, nil, err
	}
	return sk, id, nil
}

// site is one running party.
type site struct {
	cfg   Site
	id    tss.PartyID
	tok   *hsmshare.Token
	store *hsmshare.Store
	lp    *transport.Network // Libp2p only
	ep    *memnet.Endpoint   // Memnet only
	delay *Delay             // EmulateLatency only
	pool  *tss.PreParamsPool
	eng   *tss.Engine
	stop  context.CancelFunc
	done  chan struct{}
}

// server is a process's sites and the state of its control protocol.
type server struct {
	cfg     Config
	sites   []*site
	byIndex map[int]*site
	ids     map[int]tss.PartyID // every known site's party ID
	log     *slog.Logger
	profile *os.File // CPU profile being written
	trace   *os.File // execution trace being written
}

// Serve opens cfg's sites, starts their networks and engines, writes a
// [Hello] line to out and answers requests read from in until in ends, then
// stops everything.
func Serve(ctx context.Context, cfg Config, in io.Reader, out io.Writer, log *slog.Logger) (err error) {
	if len(cfg.Sites) == 0 {
		return errors.New("party: no sites configured")
	}
	if cfg.Network != Memnet && cfg.Network != Libp2p {
		return fmt.Errorf("party: unknown network %q (want %q or %q)", cfg.Network, Memnet, Libp2p)
	}
	srv := &server{cfg: cfg, byIndex: map[int]*site{}, ids: map[int]tss.PartyID{}, log: log}
	for i, id := range cfg.Committee {
		srv.ids[i] = tss.PartyID(id)
	}
	defer func() {
		if cerr := srv.close(); err == nil {
			err = cerr
		}
	}()
	if err := srv.open(ctx); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	hello := Hello{}
	for _, s := range srv.sites {
		h := Hosted{Index: s.cfg.Index, ID: string(s.id)}
		if s.lp != nil {
			for _, a := range s.lp.Addrs() {
				h.Addrs = append(h.Addrs, a.String())
			}
		}
		hello.Parties = append(hello.Parties, h)
	}
	if err := enc.Encode(hello); err != nil {
		return fmt.Errorf("party: write hello: %w", err)
	}
	// Requests are read on their own goroutine so that a cancelled ctx
	// (SIGTERM) ends Serve even while the driver is silent. The goroutine
	// ends when in does (the driver closes it, or dies).
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		var line []byte
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case line = <-lines:
		}
		var req Request
		resp := &Response{}
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = fmt.Sprintf("bad request: %v", err)
		} else {
			start := time.Now()
			opCtx, cancel := context.WithTimeout(ctx, opTimeout)
			err := srv.handle(opCtx, &req, resp)
			cancel()
			resp.Took = time.Since(start)
			if err != nil {
				resp.Error = fmt.Sprintf("%s: %v", req.Op, err)
			} else {
				resp.OK = true
			}
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("party: write response: %w", err)
		}
	}
}

func (srv *server) open(ctx context.Context) error {
	var hub *memnet.Hub
	if srv.cfg.Network == Memnet {
		hub = memnet.NewHub(0)
	}
	listen := srv.cfg.Listen
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	var peers []transport.Peer
	for i := range len(srv.cfg.Committee) {
		pid, err := transport.PeerIDFromParty(srv.ids[i])
		if err != nil {
			return fmt.Errorf("party: committee entry %d: %w", i, err)
		}
		peers = append(peers, transport.Peer{ID: pid})
	}
	for _, sc := range srv.cfg.Sites {
		s := &site{cfg: sc, done: make(chan struct{})}
		tok, err := openToken(ctx, sc)
		if err != nil {
			return err
		}
		s.tok = tok
		srv.sites = append(srv.sites, s) // closed by srv.close from here on
		srv.byIndex[sc.Index] = s
		sk, idKey, err := siteKeys(ctx, tok, false)
		if err != nil {
			return fmt.Errorf("party: keys of site %d (run init first): %w", sc.Index, err)
		}
		if s.id, err = transport.PartyIDFromPublicKey(idKey.PublicKey()); err != nil {
			return err
		}
		if known, ok := srv.ids[sc.Index]; ok && known != s.id {
			return fmt.Errorf("party: site %d has party ID %s, the committee says %s", sc.Index, s.id, known)
		}
		srv.ids[sc.Index] = s.id
		if s.store, err = hsmshare.OpenStore(sc.StoreDir, sk, string(s.id)); err != nil {
			return fmt.Errorf("party: store of site %d: %w", sc.Index, err)
		}
		var netw tss.Network
		switch srv.cfg.Network {
		case Memnet:
			if s.ep, err = hub.Join(s.id); err != nil {
				return err
			}
			netw = s.ep
		case Libp2p:
			if len(peers) < 2 {
				return errors.New("party: a libp2p site needs the committee's party IDs")
			}
			s.lp, err = transport.New(transport.Config{Identity: idKey, Peers: peers, ListenAddrs: listen, Logger: srv.log})
			if err != nil {
				return fmt.Errorf("party: libp2p network of site %d: %w", sc.Index, err)
			}
			netw = s.lp
		}
		if srv.cfg.EmulateLatency {
			s.delay = NewDelay(netw)
			netw = s.delay
		}
		if s.pool, err = tss.NewPreParamsPool(tss.PreParamsConfig{Store: s.store}); err != nil {
			return err
		}
		s.eng, err = tss.New(tss.Config{Network: netw, Store: s.store, PreParams: s.pool,
			RoundTimeout: 5 * time.Minute, JoinTimeout: time.Minute, Logger: srv.log})
		if err != nil {
			return err
		}
		runCtx, cancel := context.WithCancel(context.Background())
		s.stop = cancel
		go func() {
			defer close(s.done)
			if err := s.eng.Run(runCtx); err != nil && runCtx.Err() == nil {
				srv.log.Error("engine stopped", "site", sc.Index, "err", err)
			}
		}()
	}
	return nil
}

// close stops every site in the reverse order of open.
func (srv *server) close() error {
	var errs []error
	if srv.profile != nil {
		pprof.StopCPUProfile()
		errs = append(errs, srv.profile.Close())
	}
	if srv.trace != nil {
		trace.Stop()
		errs = append(errs, srv.trace.Close())
	}
	for _, s := range srv.sites {
		if s.stop != nil {
			s.stop()
			<-s.done
		}
	}
	for _, s := range srv.sites {
		if s.delay != nil {
			s.delay.Close()
		}
		if s.lp != nil {
			errs = append(errs, s.lp.Close())
		}
		if s.ep != nil {
			errs = append(errs, s.ep.Close())
		}
		if s.store != nil {
			errs = append(errs, s.store.Close())
		}
		errs = append(errs, s.tok.Close())
	}
	return errors.Join(errs...)
}

func (srv *server) local(i int) (*site, error) {
	s, ok := srv.byIndex[i]
	if !ok {
		return nil, fmt.Errorf("site %d does not run in this process", i)
	}
	return s, nil
}

func (srv *server) partyIDs(idx []int) ([]tss.PartyID, error) {
	out := make([]tss.PartyID, 0, len(idx))
	for _, i := range idx {
		id, ok := srv.ids[i]
		if !ok {
			return nil, fmt.Errorf("unknown site %d", i)
		}
		out = append(out, id)
	}
	return tss.SortParties(out), nil
}

// Digest returns the i-th benchmark digest of seed. Signing the same
// (seed, i) again with the same presignature gives the same signature, so
// a driver that restores a store snapshot reveals nothing new by it.
func Digest(seed string, i int) []byte {
	h := sha256.New()
	h.Write([]byte("keyquorum-bench/digest/v1\x00"))
	h.Write([]byte(seed))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return h.Sum(nil)
}

func (srv *server) handle(ctx context.Context, req *Request, resp *Response) error {
	switch req.Op {
	case OpPing:
		return nil
	case OpPeers:
		return srv.peers(req)
	case OpFeed:
		return srv.feed(ctx, req)
	case OpDelay:
		for _, s := range srv.sites {
			if s.delay == nil {
				return errors.New("latency emulation is off in this process")
			}
			s.delay.SetRTT(req.RTT)
		}
		return nil
	case OpMemory:
		var err error
		if resp.PeakKiB, resp.CurrentKiB, err = readMemory(); err != nil {
			return err
		}
		resp.CPU, err = cpuTime()
		return err
	case OpResetMemory:
		return resetPeak()
	case OpProfileStart:
		if srv.profile != nil {
			return errors.New("a profile is already being written")
		}
		f, err := os.Create(req.Path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		srv.profile = f
		if req.Trace != "" {
			tf, err := os.Create(req.Trace)
			if err == nil {
				if err = trace.Start(tf); err != nil {
					tf.Close()
				}
			}
			if err != nil {
				pprof.StopCPUProfile()
				srv.profile, _ = nil, f.Close()
				return err
			}
			srv.trace = tf
		}
		return nil
	case OpProfileStop:
		if srv.profile == nil {
			return errors.New("no profile is being written")
		}
		pprof.StopCPUProfile()
		err := srv.profile.Close()
		srv.profile = nil
		if srv.trace != nil {
			trace.Stop()
			err = errors.Join(err, srv.trace.Close())
			srv.trace = nil
		}
		return err
	}
	s, err := srv.local(req.Party)
	if err != nil {
		return err
	}
	parties, err := srv.partyIDs(req.Parties)
	if err != nil {
		return err
	}
	switch req.Op {
	case OpKeygen:
		info, err := s.eng.Keygen(ctx, tss.KeygenRequest{Parties: parties, Threshold: req.Threshold})
		if err != nil {
			return err
		}
		resp.KeyID = info.ID
		return nil
	case OpSign:
		if req.Concurrent > 0 {
			concurrently(ctx, req, resp, func(ctx context.Context, i int) error {
				_, err := s.eng.Sign(ctx, tss.SignRequest{KeyID: req.KeyID, Signers: parties, Digest: Digest(req.Seed, req.First+i)})
				return err
			})
			return nil
		}
		for i := range req.Count {
			if _, err := s.eng.Sign(ctx, tss.SignRequest{KeyID: req.KeyID, Signers: parties, Digest: Digest(req.Seed, req.First+i)}); err != nil {
				return err
			}
			resp.Done++
		}
		return nil
	case OpPresign:
		res, err := s.eng.Presign(ctx, tss.PresignRequest{KeyID: req.KeyID, Signers: parties, Path: req.KeyPath, Count: req.Count, Parallel: req.Parallel})
		if res != nil {
			resp.Done = res.Made
		}
		return err
	case OpOnline:
		or := tss.OnlineRequest{KeyID: req.KeyID, Signers: parties, Path: req.KeyPath}
		if req.Concurrent > 0 && !req.Batch {
			concurrently(ctx, req, resp, func(ctx context.Context, i int) error {
				one := or
				one.Digests = [][]byte{Digest(req.Seed, req.First+i)}
				_, err := s.eng.SignOnline(ctx, one)
				return err
			})
			return nil
		}
		if req.Batch {
			for i := range req.Count {
				or.Digests = append(or.Digests, Digest(req.Seed, req.First+i))
			}
			sigs, err := s.eng.SignBatch(ctx, or)
			resp.Done = len(sigs)
			return err
		}
		for i := range req.Count {
			or.Digests = [][]byte{Digest(req.Seed, req.First+i)}
			if _, err := s.eng.SignOnline(ctx, or); err != nil {
				return err
			}
			resp.Done++
		}
		return nil
	case OpReshare:
		newParties, err := srv.partyIDs(req.NewParties)
		if err != nil {
			return err
		}
		info, err := s.eng.Reshare(ctx, tss.ReshareRequest{KeyID: req.KeyID, OldParties: parties, NewParties: newParties, NewThreshold: req.Threshold})
		if err != nil {
			return err
		}
		resp.Epoch = info.Epoch
		return nil
	case OpPrepare:
		return s.eng.PrepareOnline(ctx, req.KeyID, req.KeyPath)
	case OpPool:
		st, err := s.eng.PoolStatus(ctx, tss.PoolSpec{KeyID: req.KeyID, Signers: parties, Path: req.KeyPath})
		resp.Done, resp.Used, resp.Burned = st.Ready, st.Used, st.Burned
		return err
	case OpConnections:
		if s.lp == nil {
			return errors.New("not a libp2p site")
		}
		for i, id := range srv.ids {
			if id == s.id {
				continue
			}
			if sec, ok := s.lp.ConnSecurity(id); ok {
				resp.Connections = append(resp.Connections, Connection{Peer: i, Transport: sec.Transport, Security: string(sec.Protocol), KeyExchange: sec.KeyExchange})
			}
		}
		slices.SortFunc(resp.Connections, func(a, b Connection) int { return a.Peer - b.Peer })
		return nil
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

func (srv *server) peers(req *Request) error {
	for _, p := range req.Peers {
		if _, ok := srv.byIndex[p.Index]; ok {
			continue
		}
		id, ok := srv.ids[p.Index]
		if !ok {
			return fmt.Errorf("unknown site %d", p.Index)
		}
		var addrs []ma.Multiaddr
		for _, a := range p.Addrs {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				return fmt.Errorf("site %d address %q: %w", p.Index, a, err)
			}
			addrs = append(addrs, m)
		}
		for _, s := range srv.sites {
			if s.lp == nil {
				continue
			}
			if err := s.lp.AddAddrs(id, addrs...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (srv *server) feed(ctx context.Context, req *Request) error {
	for _, f := range req.Feed {
		s, ok := srv.byIndex[f.Site]
		if !ok {
			continue
		}
		for _, set := range f.Sets {
			pp, err := fixtures.PreParams(set)
			if err != nil {
				return fmt.Errorf("fixture pre-parameters %d: %w", set, err)
			}
			if err := s.pool.Add(ctx, pp); err != nil {
				return fmt.Errorf("site %d: %w", f.Site, err)
			}
		}
	}
	return nil
}

// readMemory returns VmHWM and VmRSS of this process in KiB.
func readMemory() (peak, current int64, err error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	return ParseStatus(string(b))
}

// ParseStatus extracts VmHWM and VmRSS (KiB) from /proc/PID/status text.
func ParseStatus(status string) (peak, current int64, err error) {
	peak, current = -1, -1
	for _, line := range strings.Split(status, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", name, line)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if name == "VmHWM" {
			peak = v
		} else {
			current = v
		}
	}
	if peak < 0 || current < 0 {
		return 0, 0, errors.New("VmHWM or VmRSS missing from /proc/self/status")
	}
	return peak, current, nil
}

// resetPeak resets VmHWM to the current resident size (Linux: writing 5 to
// /proc/PID/clear_refs, see proc(5)).
func resetPeak() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// maxErrors bounds the distinct failures a Concurrent operation reports.
const maxErrors = 5

// concurrently runs one(ctx, i) for i in 0..req.Count-1, up to
// req.Concurrent at once, and records in resp how many succeeded and
// failed, the first few distinct errors and every call's latency.
func concurrently(ctx context.Context, req *Request, resp *Response, one func(ctx context.Context, i int) error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, req.Concurrent)
		seen = map[string]bool{}
	)
	for i := range req.Count {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			err := one(ctx, i)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			resp.Latencies = append(resp.Latencies, took)
			if err == nil {
				resp.Done++
				return
			}
			resp.Failed++
			if errors.Is(err, tss.ErrBusy) {
				resp.Busy++
			}
			if msg := err.Error(); !seen[msg] && len(resp.Errors) < maxErrors {
				seen[msg] = true
				resp.Errors = append(resp.Errors, msg)
			}
		})
	}
	wg.Wait()
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
