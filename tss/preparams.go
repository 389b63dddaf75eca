package tss

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
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

// PreParamsConfig configures a PreParamsPool.
type PreParamsConfig struct {
	// Store keeps ready sets, sealed. Required.
	Store Store
	// Target is how many sets the pool keeps ready. Default 2.
	Target int
	// Concurrency is how many sets are generated at once. Default 1:
	// generating safe primes uses every core it is given.
	Concurrency int
	// Timeout bounds the generation of one set. Default 10 minutes.
	Timeout time.Duration
	// Logger receives progress. Default: none.
	Logger *slog.Logger
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
}

// PreParamsPool keeps Paillier pre-parameters ready, sealed in a Store, so
// keygen never waits for safe-prime generation (5 to 60 seconds a set) when
// the pool is warm. It implements PreParamsSource.
type PreParamsPool struct {
	cfg PreParamsConfig
	log *slog.Logger

	takeMu     sync.Mutex // one Take at a time, so no set is handed out twice
	mu         sync.Mutex
	generating int
	generated  int
	lastErr    string
	wake       chan struct{}
}

// NewPreParamsPool validates cfg and returns a pool. Call Run to fill it.
func NewPreParamsPool(cfg PreParamsConfig) (*PreParamsPool, error) {
	if cfg.Store == nil {
		return nil, errors.New("tss: PreParamsConfig.Store is required")
	}
	if cfg.Target <= 0 {
		cfg.Target = 2
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PreParamsPool{cfg: cfg, log: log, wake: make(chan struct{}, 1)}, nil
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

// Ready returns how many sets are stored and ready.
func (p *PreParamsPool) Ready(ctx context.Context) (int, error) {
	ids, err := p.cfg.Store.List(ctx, kindPreParams)
	if err != nil {
		return 0, fmt.Errorf("tss: list pre-parameters: %w", err)
	}
	return len(ids), nil
}

// Take removes a ready set from the store and returns it. The set is
// deleted durably before it is returned, so it is never handed out twice,
// even across a crash.
func (p *PreParamsPool) Take(ctx context.Context) (*keygen.LocalPreParams, error) {
	p.takeMu.Lock()
	defer p.takeMu.Unlock()
	defer p.poke()
	ids, err := p.cfg.Store.List(ctx, kindPreParams)
	if err != nil {
		return nil, fmt.Errorf("tss: list pre-parameters: %w", err)
	}
	for _, id := range ids {
		data, _, err := p.cfg.Store.Get(ctx, kindPreParams, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // taken concurrently
		}
		if err != nil {
			return nil, fmt.Errorf("tss: load pre-parameters %s: %w", id, err)
		}
		var pp keygen.LocalPreParams
		uerr := json.Unmarshal(data, &pp)
		clear(data)
		if err := p.cfg.Store.Delete(ctx, kindPreParams, id); err != nil {
			return nil, fmt.Errorf("tss: retire pre-parameters %s: %w", id, err)
		}
		if uerr != nil || !pp.ValidateWithProof() {
			p.log.Warn("discarded undecodable pre-parameters", "id", id)
			continue
		}
		return &pp, nil
	}
	return nil, ErrNoPreParams
}

// Status reports the pool's state.
func (p *PreParamsPool) Status(ctx context.Context) (PreParamsStatus, error) {
	ready, err := p.Ready(ctx)
	if err != nil {
		return PreParamsStatus{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return PreParamsStatus{Ready: ready, Generating: p.generating, Target: p.cfg.Target, Generated: p.generated, LastError: p.lastErr}, nil
}

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
	defer wg.Wait()
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
			p.mu.Lock()
			p.generating--
			if err != nil {
				p.lastErr = err.Error()
			} else {
				p.generated++
			}
			p.mu.Unlock()
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

func (p *PreParamsPool) generateOne(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tss: pre-parameter generation panicked: %s", trimPanic(r))
		}
	}()
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	pp, err := keygen.GeneratePreParamsWithContext(gctx, 1)
	if err != nil {
		return fmt.Errorf("tss: generate pre-parameters: %w", err)
	}
	if err := p.Add(ctx, pp); err != nil {
		return err
	}
	p.log.Info("pre-parameters ready", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
