package tss

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/drbg"
)

// PreParamsSource hands out Paillier and ring-Pedersen pre-parameters for
// keygen and resharing. Each set is handed out once and never again.
type PreParamsSource interface {
	// Take removes one ready set and returns it. It returns ErrNoPreParams
	// at once when none is ready.
	Take(ctx context.Context) (*keygen.LocalPreParams, error)
	// Ready returns how many sets are ready now.
	Ready(ctx context.Context) (int, error)
}

// PreParamsConfig configures a PreParamsPool. Store is required. A zero
// count or duration takes its default; a negative one makes
// NewPreParamsPool fail with an error wrapping ErrInvalidConfig.
type PreParamsConfig struct {
	// Store keeps ready sets, sealed. Required.
	Store Store
	// Target is how many sets the pool keeps ready. Default
	// DefaultPreParamsTarget.
	Target int
	// Concurrency is how many sets are generated at once. Default
	// DefaultPreParamsConcurrency: generating safe primes uses every core
	// it is given.
	Concurrency int
	// Timeout bounds the generation of one set. Default
	// DefaultPreParamsTimeout.
	Timeout time.Duration
	// Logger receives progress. Default: none.
	Logger *slog.Logger
	// Rand is the randomness source of the Paillier and safe primes.
	// Each set is generated from its own HMAC_DRBG seeded with 48 bytes of
	// Rand (see Config.Rand), so a failing Rand fails that generation
	// cleanly. Default crypto/rand.
	Rand io.Reader
	// Command, when set, is the command line of a pre-parameter worker
	// program (its body is RunPreParamsWorker), and each set is generated
	// by a run of it as a child process at the lowest CPU priority (on
	// Linux SCHED_IDLE and nice 19): generation then takes only CPU time
	// that signing and everything else leave idle, instead of competing
	// with them for it. The worker's seed still comes from Rand. Default:
	// none, sets are generated inside this process, at its priority.
	Command []string
}

// PreParamsStatus reports a pool's state.
type PreParamsStatus struct {
	// Ready is the number of sets ready for keygen.
	Ready int `json:"ready"`
	// Generating is the number of sets being generated now.
	Generating int `json:"generating"`
	// Target is the number of sets the pool keeps ready.
	Target int `json:"target"`
	// Generated counts sets generated since the pool started.
	Generated int `json:"generated"`
	// LastError is the last generation failure, if any.
	LastError string `json:"last_error,omitempty"`
	// MeanGenerationMS is the mean wall time, in milliseconds, of the
	// sets generated since the pool started (0 before the first). Safe
	// primes are found by chance, so a single set may take a few times
	// the mean; it is an estimate, not a promise.
	MeanGenerationMS int64 `json:"mean_generation_ms,omitempty"`
	// GeneratingForMS is how long, in milliseconds, the set that has been
	// generating longest has run so far (0 when none is).
	GeneratingForMS int64 `json:"generating_for_ms,omitempty"`
	// Paused reports that generation is paused now because this party is
	// signing (PreParamsPool.Pause).
	Paused bool `json:"paused,omitempty"`
	// Pauses counts the pauses since the pool started.
	Pauses int `json:"pauses,omitempty"`
}

// PreParamsPool keeps Paillier pre-parameters ready, sealed in a Store, so
// keygen never waits for safe-prime generation (5 to 60 seconds a set) when
// the pool is warm. It implements PreParamsSource.
type PreParamsPool struct {
	cfg PreParamsConfig
	log *slog.Logger

	takeMu     sync.Mutex // one Take at a time, so no set is handed out twice
	mu         sync.Mutex
	reserved   map[string]bool // ids of sets handed out but not yet used, under mu
	generating int
	generated  int
	lastErr    string
	wake       chan struct{}
	// The wall time of the sets generated (genTime over genCount) and the
	// start of each generation running, by a number of its own; under mu.
	genTime  time.Duration
	genCount int
	running  map[uint64]time.Time
	nextRun  uint64
	// gate pauses generation while the engine signs (Pause).
	gate *pauseGate
}

// NewPreParamsPool validates cfg and returns a pool. Call Run to fill it.
// Invalid values are reported with an error wrapping ErrInvalidConfig.
func NewPreParamsPool(cfg PreParamsConfig) (*PreParamsPool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PreParamsPool{cfg: cfg, log: log, reserved: make(map[string]bool), wake: make(chan struct{}, 1), gate: newPauseGate()}, nil
}

// Add validates a set and stores it as ready, for example one generated
// elsewhere. It keeps no reference to pp.
func (p *PreParamsPool) Add(ctx context.Context, pp *keygen.LocalPreParams) error {
	if pp == nil || !pp.ValidateWithProof() {
		return fmt.Errorf("%w: pre-parameters are incomplete", ErrBadRequest)
	}
	if pp.PaillierSK.N.BitLen() != paillierBits || pp.NTildei.BitLen() != paillierBits {
		return fmt.Errorf("%w: pre-parameters must use %d-bit moduli", ErrBadRequest, paillierBits)
	}
	data, err := json.Marshal(pp)
	if err != nil {
		return fmt.Errorf("tss: encode pre-parameters: %w", err)
	}
	defer clear(data)
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	if err := p.cfg.Store.Put(ctx, kindPreParams, hex.EncodeToString(id[:]), 1, data); err != nil {
		return fmt.Errorf("tss: store pre-parameters: %w", err)
	}
	return nil
}

// Ready returns how many sets are stored and ready: stored and not handed
// to a session that may still use them.
func (p *PreParamsPool) Ready(ctx context.Context) (int, error) {
	ids, err := p.cfg.Store.List(ctx, kindPreParams)
	if err != nil {
		return 0, fmt.Errorf("tss: list pre-parameters: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !p.reserved[id] {
			n++
		}
	}
	return n, nil
}

// Take removes a ready set from the store and returns it. The set is
// deleted durably before it is returned, so it is never handed out twice,
// even across a crash.
func (p *PreParamsPool) Take(ctx context.Context) (*keygen.LocalPreParams, error) {
	l, err := p.reserve(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.consume(ctx); err != nil {
		l.release()
		return nil, err
	}
	return l.pp, nil
}

// reserve hands out a ready set without deleting it: the set stays in the
// store, and out of every other Take and reserve of this pool, until the
// lease is consumed (the set is about to be used: deleted durably first)
// or released (it was not used and is ready again). A crash in between
// leaves the set in the store, where it is ready again after the restart;
// since nothing derived from it left the process before consume, using it
// then is using it once.
func (p *PreParamsPool) reserve(ctx context.Context) (*preParamsLease, error) {
	p.takeMu.Lock()
	defer p.takeMu.Unlock()
	ids, err := p.cfg.Store.List(ctx, kindPreParams)
	if err != nil {
		return nil, fmt.Errorf("tss: list pre-parameters: %w", err)
	}
	for _, id := range ids {
		p.mu.Lock()
		taken := p.reserved[id]
		p.mu.Unlock()
		if taken {
			continue
		}
		data, _, err := p.cfg.Store.Get(ctx, kindPreParams, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed concurrently
		}
		if err != nil {
			return nil, fmt.Errorf("tss: load pre-parameters %s: %w", id, err)
		}
		var pp keygen.LocalPreParams
		uerr := json.Unmarshal(data, &pp)
		clear(data)
		if uerr != nil || !pp.ValidateWithProof() {
			wipePreParams(&pp)
			p.log.Warn("discarding undecodable pre-parameters", "id", id)
			if err := p.cfg.Store.Delete(ctx, kindPreParams, id); err != nil {
				return nil, fmt.Errorf("tss: discard pre-parameters %s: %w", id, err)
			}
			continue
		}
		p.mu.Lock()
		p.reserved[id] = true
		p.mu.Unlock()
		return &preParamsLease{pool: p, id: id, pp: &pp}, nil
	}
	return nil, ErrNoPreParams
}

// preParamsLease is one set handed to a session. The session calls consume
// right before the first message that carries anything derived from the
// set leaves this party, and release when it ends (which does nothing
// after consume).
type preParamsLease struct {
	pool *PreParamsPool // nil for a set from another PreParamsSource, taken already
	id   string
	pp   *keygen.LocalPreParams

	consumed, released bool
}

// consume deletes the set from the store, durably, so that it is never
// handed out again, even after a crash. Until it returns nil nothing
// derived from the set may be sent.
func (l *preParamsLease) consume(ctx context.Context) error {
	if l.consumed || l.pool == nil {
		l.consumed = true
		return nil
	}
	if l.released {
		return fmt.Errorf("tss: pre-parameters %s were given back already", l.id)
	}
	if err := l.pool.cfg.Store.Delete(ctx, kindPreParams, l.id); err != nil {
		return fmt.Errorf("tss: retire pre-parameters %s before their first use: %w", l.id, err)
	}
	l.consumed = true
	l.pool.mu.Lock()
	delete(l.pool.reserved, l.id)
	l.pool.mu.Unlock()
	l.pool.poke()
	return nil
}

// release gives an unused set back to the pool; after consume it does
// nothing.
func (l *preParamsLease) release() {
	if l == nil || l.consumed || l.released || l.pool == nil {
		return
	}
	l.released = true
	l.pool.mu.Lock()
	delete(l.pool.reserved, l.id)
	l.pool.mu.Unlock()
	l.pool.poke()
}

// preParamsReserver is a PreParamsSource that can hand out a set without
// consuming it (PreParamsPool).
type preParamsReserver interface {
	reserve(ctx context.Context) (*preParamsLease, error)
}

// reservePreParams gets a set for a session from the configured source:
// reserved when the source can (PreParamsPool), taken at once otherwise.
func (e *Engine) reservePreParams(ctx context.Context) (*preParamsLease, error) {
	if r, ok := e.cfg.PreParams.(preParamsReserver); ok {
		return r.reserve(ctx)
	}
	pp, err := e.cfg.PreParams.Take(ctx)
	if err != nil {
		return nil, err
	}
	return &preParamsLease{pp: pp, consumed: true}, nil
}

// preParamsGuard runs a protocol whose local party in role r uses a leased
// pre-parameter set, and consumes the lease right before the first message
// that party sends leaves this site. Until then nothing derived from the
// set is known outside, so a session that ends first (abandoned by its
// initiator, say) gives the set back. For keygen that message is round 1;
// for a new member of a reshare it is round 2, which it sends only once
// every old member has sent round 1.
type preParamsGuard struct {
	protocol
	ctx   context.Context
	lease *preParamsLease
	role  role
}

func (g *preParamsGuard) start() ([]outMsg, error) {
	outs, err := g.protocol.start()
	if err != nil {
		return nil, err
	}
	return outs, g.beforeSend(outs)
}

func (g *preParamsGuard) handle(in inMsg) ([]outMsg, error) {
	outs, err := g.protocol.handle(in)
	if err != nil {
		return nil, err
	}
	return outs, g.beforeSend(outs)
}

// beforeSend consumes the lease if outs hold a message of the guarded
// role. tss-lib messages start with the sender's role (envelope in
// tsslib.go).
func (g *preParamsGuard) beforeSend(outs []outMsg) error {
	if g.lease.consumed {
		return nil
	}
	for _, o := range outs {
		if len(o.payload) > 0 && role(o.payload[0]) == g.role {
			return g.lease.consume(g.ctx)
		}
	}
	return nil
}

func (g *preParamsGuard) broadcasts(p PartyID, r uint32) bool {
	if bs, ok := g.protocol.(broadcastSenders); ok {
		return bs.broadcasts(p, r)
	}
	return true
}

func (g *preParamsGuard) wipe() {
	g.protocol.wipe()
	g.lease.release()
}

// Status reports the pool's state.
func (p *PreParamsPool) Status(ctx context.Context) (PreParamsStatus, error) {
	ready, err := p.Ready(ctx)
	if err != nil {
		return PreParamsStatus{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PreParamsStatus{Ready: ready, Generating: p.generating, Target: p.cfg.Target, Generated: p.generated, LastError: p.lastErr}
	if p.genCount > 0 {
		st.MeanGenerationMS = (p.genTime / time.Duration(p.genCount)).Milliseconds()
	}
	st.Paused, st.Pauses = p.gate.snapshot()
	now := time.Now()
	for _, t := range p.running {
		st.GeneratingForMS = max(st.GeneratingForMS, now.Sub(t).Milliseconds())
	}
	return st, nil
}

// timeGeneration records the start of a generation and returns the
// function that records its end: its wall time counts toward the mean
// when it succeeded.
func (p *PreParamsPool) timeGeneration() func(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running == nil {
		p.running = make(map[uint64]time.Time)
	}
	id := p.nextRun
	p.nextRun++
	start := time.Now()
	p.running[id] = start
	return func(ok bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.running, id)
		if ok {
			p.genTime += time.Since(start)
			p.genCount++
		}
	}
}

// Pause implements Pauser: generation, in this process or in a worker,
// pauses at its next draw of randomness (about a millisecond) until resume
// is called and 20 ms more have passed with no Pause open, so that
// signatures in a row keep it paused. It never pauses for more than 4
// seconds in a row: it then runs for 1 second whatever the requests, and
// a site that signs all the time still makes pre-parameters, at about a
// fifth of the speed. The engine calls it for every signing session when
// the pool is its Config.PauseWhileSigning.
func (p *PreParamsPool) Pause() (resume func()) { return p.gate.Pause() }

func (p *PreParamsPool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run generates sets until Target are ready, then waits until one is taken,
// until ctx is done. Generation runs at most Concurrency sets at a time.
// Run returns nil when ctx is done, after every generator has stopped.
func (p *PreParamsPool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		// Every generator has stopped; those that were cancelled are
		// not generating any more.
		p.mu.Lock()
		p.generating = 0
		p.mu.Unlock()
	}()
	results := make(chan error, p.cfg.Concurrency)
	for {
		ready, err := p.Ready(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("pre-parameter pool cannot read its store", "err", err)
		}
		p.mu.Lock()
		for ctx.Err() == nil && err == nil && ready+p.generating < p.cfg.Target && p.generating < p.cfg.Concurrency {
			p.generating++
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- p.generateOne(ctx)
			}()
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case err := <-results:
			p.finished(err)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("pre-parameter generation failed", "err", err)
				select {
				case <-time.After(5 * time.Second):
				case <-ctx.Done():
					return nil
				}
			}
		case <-p.wake:
		case <-time.After(time.Minute):
		}
	}
}

// Generate generates one set now, whatever the target, and stores it as
// ready. Status counts it as generating while it runs. It returns when the
// set is stored, or with ctx's error.
func (p *PreParamsPool) Generate(ctx context.Context) error {
	p.mu.Lock()
	p.generating++
	p.mu.Unlock()
	err := p.generateOne(ctx)
	p.finished(err)
	return err
}

// finished counts a generation that ended with err (nil: a set stored).
func (p *PreParamsPool) finished(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.generating--
	if err != nil {
		p.lastErr = err.Error()
	} else {
		p.generated++
	}
}

func (p *PreParamsPool) generateOne(ctx context.Context) (err error) {
	// Deferred first, so it runs last and sees a recovered panic as the
	// failure it is.
	finished := p.timeGeneration()
	defer func() { finished(err == nil) }()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tss: pre-parameter generation panicked: %s", trimPanic(r))
		}
	}()
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	rnd, err := drbg.NewReader(p.cfg.Rand, sha512.New, "keyquorum tss pre-parameters")
	if err != nil {
		return fmt.Errorf("tss: generate pre-parameters: draw randomness from PreParamsConfig.Rand: %w", err)
	}
	var pp *keygen.LocalPreParams
	if len(p.cfg.Command) > 0 {
		pp, err = p.generateInWorker(gctx, rnd)
	} else {
		pp, err = keygen.GeneratePreParamsWithContextAndRandom(gctx, &pausingReader{ctx: gctx, r: rnd, wait: p.gate.wait}, 1)
		if err != nil {
			err = fmt.Errorf("tss: generate pre-parameters: %w", err)
		}
	}
	if err != nil {
		return err
	}
	defer wipePreParams(pp)
	if err := p.Add(ctx, pp); err != nil {
		return err
	}
	p.log.Info("pre-parameters ready", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
