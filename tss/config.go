package tss

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// ErrInvalidConfig means a Config, PreParamsConfig or PoolConfig field has
// a value that cannot work, such as a negative timeout. The error that
// wraps it names the field and what to set it to.
var ErrInvalidConfig = errors.New("tss: invalid configuration")

// Defaults for zero fields of Config, PreParamsConfig, PoolConfig and
// PresignRequest. They are the package's only defaults.
const (
	// DefaultRoundTimeout is Config.RoundTimeout's default: how long a
	// session waits without progress.
	DefaultRoundTimeout = 2 * time.Minute
	// DefaultJoinTimeout is Config.JoinTimeout's default: how long an
	// initiator waits for accepts, and a participant for the start.
	DefaultJoinTimeout = 30 * time.Second
	// DefaultMaxSessions is Config.MaxSessions's default: how many
	// sessions run at once.
	DefaultMaxSessions = 64
	// DefaultMaxSessionsPerPeer is Config.MaxSessionsPerPeer's default:
	// how many sessions one other party may have proposed that run here
	// at once. It is a quarter of DefaultMaxSessions, so that one party
	// cannot take every slot.
	DefaultMaxSessionsPerPeer = DefaultMaxSessions / 4

	// DefaultPreParamsTarget is PreParamsConfig.Target's default: how many
	// pre-parameter sets a PreParamsPool keeps ready.
	DefaultPreParamsTarget = 2
	// DefaultPreParamsConcurrency is PreParamsConfig.Concurrency's
	// default: how many sets are generated at once. Generating safe primes
	// uses every core it is given, so one at a time.
	DefaultPreParamsConcurrency = 1
	// DefaultPreParamsTimeout is PreParamsConfig.Timeout's default: how
	// long the generation of one set may take.
	DefaultPreParamsTimeout = 10 * time.Minute

	// DefaultPresignCount is PresignRequest.Count's default: how many
	// presignatures one Presign call makes.
	DefaultPresignCount = 1
	// DefaultPresignParallel is the default of PresignRequest.Parallel and
	// PoolConfig.Parallel: how many presigning sessions run at once.
	DefaultPresignParallel = 2
	// DefaultPoolInterval is PoolConfig.Interval's default: how often
	// MaintainPool checks the pool.
	DefaultPoolInterval = 5 * time.Second
	// DefaultReconcileEvery is PoolConfig.ReconcileEvery's default: how
	// often MaintainPool reconciles the pool with the other signers.
	DefaultReconcileEvery = 10 * time.Minute
)

// Policy decides whether this party takes part in a proposed session. It
// runs after the engine's own checks (key known, party in the signer set,
// payload well formed) and can look at the proposal's evidence, for example
// approvals for a withdrawal. A non-nil error refuses the session; its text
// is sent to the initiator, so it must not contain secrets.
type Policy func(ctx context.Context, p *Proposal) error

// Config configures an Engine. Network and Store are required. A zero
// duration or count takes its default (the Default constants); a negative
// one, or limits that contradict each other, make New fail with an error
// wrapping ErrInvalidConfig.
type Config struct {
	// Network carries messages to the other parties.
	Network Network
	// Store keeps this party's key shares and presignatures, sealed.
	Store Store
	// Ledger records, in the party's HSM, which presignatures were used, so
	// that a restored copy of the store cannot make one usable again.
	// Default: Store, when it implements Ledger (hsmshare.Store does).
	// Without one, this party can still run keygen, GG18 signing and
	// resharing, but cannot make or use GG20 presignatures.
	Ledger Ledger
	// PreParams supplies Paillier pre-parameters to keygen and resharing.
	// Without it, this party cannot take part in keygen or join a new
	// committee.
	PreParams PreParamsSource
	// PauseWhileSigning, if set, is paused for as long as this party
	// signs: from the check of a GG18 signing or GG20 online proposal,
	// its own or another party's, to the end of the session. Give it the
	// PreParamsPool, so that safe-prime generation does not slow
	// signatures down. Default: none.
	PauseWhileSigning Pauser
	// Policy, if set, must approve every session before this party joins
	// or proposes it.
	Policy Policy
	// Completed, if set, is called when a session has succeeded for this
	// party and its results are stored: on a participant before it reports
	// its result to the initiator, on the initiator once every party has
	// reported and the results check out. It runs on the session's
	// goroutine (the initiator's calling goroutine) and should return
	// quickly. It is not called for failed sessions nor for GG20 online
	// signing.
	Completed func(ctx context.Context, p *Proposal)
	// Presignatures, if set, is told of every change to this party's
	// presignatures (made, used, burned, discarded, retired; see
	// PresignatureEvent), for an audit trail. For PresignaturesUsed it
	// runs after they are marked used in the HSM ledger and before any
	// signature share made with them leaves this party: if it returns an
	// error, the session fails with ErrNotRecorded and no share is sent
	// (the presignatures stay used up). Errors for the other changes are
	// logged. It runs on the engine's goroutines, may block for a durable
	// write, and must not call the Engine.
	Presignatures func(ctx context.Context, ev PresignatureEvent) error
	// Observer, if set, is told of every session's end, of every protocol
	// round this party leaves and of every proposal it refuses, for
	// metrics. Default: none.
	Observer Observer
	// RoundTimeout is how long a session waits without progress before it
	// fails naming the parties it waits for. Only messages that move the
	// protocol forward count as progress; echoes alone do not. Default
	// DefaultRoundTimeout.
	RoundTimeout time.Duration
	// JoinTimeout is how long an initiator waits for the other parties to
	// accept, and a participant for the start. Default DefaultJoinTimeout.
	JoinTimeout time.Duration
	// MaxSessions bounds concurrently running sessions. Default
	// DefaultMaxSessions.
	MaxSessions int
	// MaxSessionsPerPeer bounds the sessions proposed by one other party
	// that run here at once, GG20 online answers included; a proposal over
	// it is refused with ErrBusy. An initiator that runs more sessions
	// with this party at once (many concurrent Sign or SignOnline calls, a
	// PresignRequest.Parallel above it) gets those refusals; SignBatch
	// signs many digests in one session. It must not exceed MaxSessions.
	// Default DefaultMaxSessionsPerPeer, or MaxSessions when that is
	// smaller.
	//
	// As an initiator the engine itself runs at most half of it at once
	// with each co-signer (8 by default), so that co-signers configured
	// alike never refuse its sessions: further Sign, SignOnline, SignBatch
	// and Presign sessions wait for one to end, up to JoinTimeout and
	// their context, holding nothing (a GG20 request reserves its
	// presignatures only once it has its slot); at most 1024 wait, and a
	// request that cannot wait fails with ErrBusy.
	MaxSessionsPerPeer int
	// Logger receives structured logs; it never gets secrets. Default: none.
	Logger *slog.Logger
	// Rand is the randomness source of every secret the engine makes. It
	// may fail (for example hsmshare.Random when the HSM's generator
	// fails); the session that needed it then fails with that error. Each
	// protocol session reads 48 bytes of it to seed its own HMAC_DRBG
	// (NIST SP 800-90A), which is what tss-lib and the GG20 rounds draw
	// from: tss-lib cannot handle a failing reader. It must be safe for
	// concurrent use. Default crypto/rand.
	Rand io.Reader
}

// invalidConfig returns an error wrapping ErrInvalidConfig that names the
// field and says what to do.
func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// durationField and countField name a field for defaultDurations and
// defaultCounts.
type (
	durationField struct {
		name string
		v    *time.Duration
		def  time.Duration
	}
	countField struct {
		name string
		v    *int
		def  int
	}
)

// defaultDurations refuses a negative duration and gives a zero one its
// default, in order.
func defaultDurations(fields ...durationField) error {
	for _, f := range fields {
		if *f.v < 0 {
			return invalidConfig("%s is %v; set a positive duration, or 0 for the default %v", f.name, *f.v, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return nil
}

// defaultCounts refuses a negative count and gives a zero one its default,
// in order.
func defaultCounts(fields ...countField) error {
	for _, f := range fields {
		if *f.v < 0 {
			return invalidConfig("%s is %d; set a positive number, or 0 for the default %d", f.name, *f.v, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return nil
}

// withDefaults validates c and fills in the defaults of its zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.Network == nil {
		return c, invalidConfig("Config.Network is required; set it to the network that carries this party's messages")
	}
	if c.Store == nil {
		return c, invalidConfig("Config.Store is required; set it to the store that keeps this party's shares sealed")
	}
	if err := c.Network.Self().Validate(); err != nil {
		return c, invalidConfig("Config.Network names this party with an invalid party ID; give it a valid identity: %w", err)
	}
	if err := defaultDurations(
		durationField{"Config.RoundTimeout", &c.RoundTimeout, DefaultRoundTimeout},
		durationField{"Config.JoinTimeout", &c.JoinTimeout, DefaultJoinTimeout},
	); err != nil {
		return c, err
	}
	if c.MaxSessions < 0 {
		return c, invalidConfig("Config.MaxSessions is %d; set a positive number, or 0 for the default %d", c.MaxSessions, DefaultMaxSessions)
	}
	if c.MaxSessionsPerPeer < 0 {
		return c, invalidConfig("Config.MaxSessionsPerPeer is %d; set a positive number, or 0 for the default %d (at most MaxSessions)", c.MaxSessionsPerPeer, DefaultMaxSessionsPerPeer)
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessionsPerPeer == 0 {
		c.MaxSessionsPerPeer = min(DefaultMaxSessionsPerPeer, c.MaxSessions)
	}
	if c.MaxSessionsPerPeer > c.MaxSessions {
		return c, invalidConfig("Config.MaxSessionsPerPeer %d exceeds Config.MaxSessions %d; lower it, or raise MaxSessions", c.MaxSessionsPerPeer, c.MaxSessions)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Ledger == nil {
		if l, ok := c.Store.(Ledger); ok {
			c.Ledger = l
		}
	}
	return c, nil
}

// withDefaults validates c and fills in the defaults of its zero fields.
func (c PreParamsConfig) withDefaults() (PreParamsConfig, error) {
	if c.Store == nil {
		return c, invalidConfig("PreParamsConfig.Store is required; set it to the store that keeps the sets sealed")
	}
	if err := defaultCounts(
		countField{"PreParamsConfig.Target", &c.Target, DefaultPreParamsTarget},
		countField{"PreParamsConfig.Concurrency", &c.Concurrency, DefaultPreParamsConcurrency},
	); err != nil {
		return c, err
	}
	if err := defaultDurations(durationField{"PreParamsConfig.Timeout", &c.Timeout, DefaultPreParamsTimeout}); err != nil {
		return c, err
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		return c, invalidConfig("PreParamsConfig.Command names no program; set its first element to the worker's path")
	}
	c.Command = slices.Clone(c.Command)
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c, nil
}

// withDefaults validates c and fills in the defaults of its zero fields.
// A Target below 1 also wraps ErrBadRequest, which MaintainPool returned
// for it before ErrInvalidConfig.
func (c PoolConfig) withDefaults() (PoolConfig, error) {
	if c.Target <= 0 {
		return c, invalidConfig("PoolConfig.Target is %d; set how many ready presignatures to keep, 1 or more (%w)", c.Target, ErrBadRequest)
	}
	if err := defaultCounts(countField{"PoolConfig.Parallel", &c.Parallel, DefaultPresignParallel}); err != nil {
		return c, err
	}
	if err := defaultDurations(
		durationField{"PoolConfig.Interval", &c.Interval, DefaultPoolInterval},
		durationField{"PoolConfig.ReconcileEvery", &c.ReconcileEvery, DefaultReconcileEvery},
	); err != nil {
		return c, err
	}
	return c, nil
}
