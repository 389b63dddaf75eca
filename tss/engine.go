package tss

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Policy decides whether this party takes part in a proposed session. It
// runs after the engine's own checks (key known, party in the signer set,
// payload well formed) and can look at the proposal's evidence, for example
// approvals for a withdrawal. A non-nil error refuses the session; its text
// is sent to the initiator, so it must not contain secrets.
type Policy func(ctx context.Context, p *Proposal) error

// Config configures an Engine. Network and Store are required.
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
	// Policy, if set, must approve every session before this party joins
	// or proposes it.
	Policy Policy
	// RoundTimeout is how long a session waits without progress before it
	// fails naming the parties it waits for. Default 2 minutes.
	RoundTimeout time.Duration
	// JoinTimeout is how long an initiator waits for the other parties to
	// accept, and a participant for the start. Default 30 seconds.
	JoinTimeout time.Duration
	// MaxSessions bounds concurrently running sessions. Default 64.
	MaxSessions int
	// Logger receives structured logs; it never gets secrets. Default: none.
	Logger *slog.Logger
	// Rand is the randomness source. Default crypto/rand.
	Rand io.Reader
}

// Engine runs this party's side of every session. Create it with New, run
// Run in a goroutine, then call Keygen, Sign, Reshare and the GG20 methods.
// Sessions proposed by other parties are checked and joined automatically.
type Engine struct {
	cfg Config
	net Network
	log *slog.Logger

	mu       sync.Mutex
	started  bool
	running  bool
	ready    chan struct{} // closed when Run starts
	runCtx   context.Context
	sessions map[SessionID]*session
	ended    *recentSet
	wg       sync.WaitGroup

	keyLocks   keyLocks
	stats      stats
	responding atomic.Int64
	presigs    *presigIndex
	precomp    precompCache
	metas      metaCache
	verifiers  verifierCache
}

// New validates cfg, applies defaults and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Network == nil {
		return nil, errors.New("tss: Config.Network is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("tss: Config.Store is required")
	}
	if err := cfg.Network.Self().Validate(); err != nil {
		return nil, fmt.Errorf("tss: network identity: %w", err)
	}
	if cfg.RoundTimeout <= 0 {
		cfg.RoundTimeout = 2 * time.Minute
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 30 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Ledger == nil {
		if l, ok := cfg.Store.(Ledger); ok {
			cfg.Ledger = l
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:      cfg,
		net:      cfg.Network,
		log:      log.With("party", string(cfg.Network.Self())),
		sessions: make(map[SessionID]*session),
		ended:    newRecentSet(8192),
		ready:    make(chan struct{}),
		presigs:  newPresigIndex(),
	}, nil
}

// Self returns this party's ID.
func (e *Engine) Self() PartyID { return e.net.Self() }

// Run receives messages and drives sessions until ctx is done or the
// network fails. When it returns, every session has ended and every
// goroutine it started has exited. An Engine runs once; requests made
// before Run starts wait for it.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("tss: engine already ran; create a new one")
	}
	ctx, cancel := context.WithCancel(ctx)
	e.started = true
	e.running = true
	e.runCtx = ctx
	close(e.ready)
	e.mu.Unlock()

	defer func() {
		cancel()
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
		e.wg.Wait()
	}()
	for {
		m, err := e.net.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tss: receive: %w", err)
		}
		e.dispatch(ctx, m)
	}
}

// dispatch routes one inbound message.
func (e *Engine) dispatch(ctx context.Context, m *Message) {
	if err := m.Validate(); err != nil {
		e.count(dropMalformed)
		return
	}
	if m.From == e.net.Self() {
		e.count(dropNotParty)
		return
	}
	if m.Type == MsgPropose {
		e.onPropose(ctx, m)
		return
	}
	e.mu.Lock()
	s := e.sessions[m.Session]
	e.mu.Unlock()
	if s == nil {
		if e.ended.has(m.Session) {
			e.count(dropFinished)
		} else {
			e.count(dropUnknownSession)
		}
		return
	}
	if !containsParty(s.others, m.From) {
		e.count(dropNotParty)
		return
	}
	if !s.deliver(ctx, m) {
		e.count(dropFinished)
	}
}

// onPropose checks a proposal and joins or refuses it.
func (e *Engine) onPropose(ctx context.Context, m *Message) {
	prop, err := decodeProposal(m.Payload)
	if err != nil {
		e.count(dropMalformed)
		e.refuse(ctx, m, err)
		return
	}
	if prop.Initiator != m.From || prop.SessionID() != m.Session {
		e.count(dropMalformed)
		e.refuse(ctx, m, errors.New("proposal does not match its envelope"))
		return
	}
	if !containsParty(prop.Parties, e.net.Self()) {
		e.count(dropNotParty)
		e.refuse(ctx, m, fmt.Errorf("%w: %s is not a party of this session", ErrNotInCommittee, e.net.Self()))
		return
	}
	e.mu.Lock()
	_, active := e.sessions[m.Session]
	replay := active || e.ended.has(m.Session)
	e.mu.Unlock()
	if replay {
		e.count(dropReplay)
		return
	}
	hooks, err := e.check(ctx, prop, false, nil)
	if err != nil {
		e.log.Info("refused session", "session", m.Session.Short(), "op", string(prop.Op), "from", string(m.From), "reason", err.Error())
		e.refuse(ctx, m, err)
		return
	}
	if hooks.respond != nil {
		e.respond(ctx, m, hooks)
		return
	}
	if _, err := e.startSession(prop, false, hooks, nil); err != nil {
		e.refuse(ctx, m, err)
	}
}

// respond answers a proposal of an immediate session (online signing) on
// its own goroutine: the session is recorded as ended at once, so a replay
// of the proposal is dropped, and the answer is one result or a refusal.
func (e *Engine) respond(ctx context.Context, m *Message, hooks sessionHooks) {
	e.mu.Lock()
	if !e.running || len(e.sessions)+int(e.responding.Load()) >= e.cfg.MaxSessions {
		e.mu.Unlock()
		e.refuse(ctx, m, ErrBusy)
		return
	}
	e.ended.add(m.Session)
	e.responding.Add(1)
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer e.responding.Add(-1)
		payload, err := hooks.respond(ctx)
		if err != nil {
			e.log.Info("refused online session", "session", m.Session.Short(), "from", string(m.From), "reason", err.Error())
			e.refuse(ctx, m, err)
			return
		}
		sctx, cancel := context.WithTimeout(ctx, e.cfg.RoundTimeout)
		defer cancel()
		if err := e.net.Send(sctx, &Message{Session: m.Session, Type: MsgResult, From: e.net.Self(), To: []PartyID{m.From}, Round: 1, Payload: payload}); err != nil {
			e.log.Info("online result not delivered", "session", m.Session.Short(), "to", string(m.From), "err", err.Error())
		}
	}()
}

// check runs the operation's checks and the policy, and returns the hooks
// that run the session.
func (e *Engine) check(ctx context.Context, prop *Proposal, initiator bool, extra any) (sessionHooks, error) {
	var hooks sessionHooks
	var err error
	switch prop.Op {
	case OpKeygen:
		hooks, err = e.keygenHooks(ctx, prop, initiator)
	case OpSign:
		hooks, err = e.signHooks(ctx, prop, initiator)
	case OpReshare:
		hooks, err = e.reshareHooks(ctx, prop, initiator)
	case OpCommit:
		hooks, err = e.commitHooks(ctx, prop, initiator)
	case OpPresign:
		hooks, err = e.presignHooks(ctx, prop, initiator)
	case OpOnline:
		st, _ := extra.(*onlineState)
		if st == nil {
			st = &onlineState{}
		}
		hooks, err = e.onlineHooks(ctx, prop, initiator, st)
	case OpReconcile:
		st, _ := extra.(*reconcileState)
		if st == nil {
			st = &reconcileState{replies: make(map[PartyID][]string)}
		}
		hooks, err = e.reconcileHooks(ctx, prop, initiator, st)
	default:
		err = fmt.Errorf("%w: operation %q cannot be proposed this way", ErrBadRequest, prop.Op)
	}
	if err != nil {
		return sessionHooks{}, err
	}
	if e.cfg.Policy != nil {
		if err := e.cfg.Policy(ctx, prop); err != nil {
			return sessionHooks{}, fmt.Errorf("%w: %w", ErrPolicy, err)
		}
	}
	return hooks, nil
}

func (e *Engine) refuse(ctx context.Context, m *Message, reason error) {
	sctx, cancel := context.WithTimeout(ctx, e.cfg.JoinTimeout)
	defer cancel()
	msg := reason.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	payload := append([]byte(refusalCode(reason)+"\n"), msg...)
	_ = e.net.Send(sctx, &Message{Session: m.Session, Type: MsgRefuse, From: e.net.Self(), To: []PartyID{m.From}, Payload: payload})
}

// startSession registers and starts a session. callerCtx, when set, also
// ends the session when it is done (an initiator's request context).
func (e *Engine) startSession(prop *Proposal, initiator bool, hooks sessionHooks, callerCtx context.Context) (*session, error) {
	s := newSession(e, prop, initiator, hooks)
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		return nil, ErrEngineClosed
	}
	if len(e.sessions) >= e.cfg.MaxSessions {
		e.mu.Unlock()
		return nil, ErrBusy
	}
	if _, dup := e.sessions[s.id]; dup || e.ended.has(s.id) {
		e.mu.Unlock()
		return nil, fmt.Errorf("tss: session %s already exists", s.id.Short())
	}
	e.sessions[s.id] = s
	ctx, cancel := context.WithCancel(e.runCtx)
	e.wg.Add(1)
	e.mu.Unlock()

	stop := func() bool { return true }
	if callerCtx != nil {
		stop = context.AfterFunc(callerCtx, cancel)
	}
	go func() {
		defer e.wg.Done()
		defer cancel()
		defer stop()
		s.run(ctx)
		e.mu.Lock()
		delete(e.sessions, s.id)
		e.ended.add(s.id)
		e.mu.Unlock()
		if s.err != nil {
			e.log.Info("session failed", "session", s.id.Short(), "op", string(s.prop.Op), "err", s.err.Error())
		} else {
			e.log.Debug("session done", "session", s.id.Short(), "op", string(s.prop.Op))
		}
	}()
	return s, nil
}

// propose fills the proposal's common fields, checks it like any party
// would, runs the session as initiator and waits for it to end.
func (e *Engine) propose(ctx context.Context, prop *Proposal, extra ...any) (*session, error) {
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrEngineClosed, ctx.Err())
	}
	prop.Version = proposalVersion
	prop.Initiator = e.net.Self()
	if _, err := io.ReadFull(e.cfg.Rand, prop.Nonce[:]); err != nil {
		return nil, fmt.Errorf("tss: read randomness: %w", err)
	}
	if err := prop.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	var x any
	if len(extra) > 0 {
		x = extra[0]
	}
	hooks, err := e.check(ctx, prop, true, x)
	if err != nil {
		return nil, err
	}
	s, err := e.startSession(prop, true, hooks, ctx)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.done:
		if s.err == nil && hooks.verify != nil {
			return s, hooks.verify()
		}
		return s, s.err
	case <-ctx.Done():
		<-s.done
		return s, fmt.Errorf("tss: %s session %s: %w", prop.Op, s.id.Short(), ctx.Err())
	}
}

// SessionInfo describes a session this party takes part in.
type SessionInfo struct {
	// ID is the session ID.
	ID SessionID `json:"id"`
	// Op is the operation.
	Op Operation `json:"op"`
	// KeyID names the key (empty for keygen until it ends).
	KeyID string `json:"key_id,omitempty"`
	// Initiator proposed the session.
	Initiator PartyID `json:"initiator"`
	// Parties are the participants.
	Parties []PartyID `json:"parties"`
	// Phase is "joining", "running", "finishing" or "ended".
	Phase string `json:"phase"`
	// Round is the protocol round this party is in while running.
	Round uint32 `json:"round,omitempty"`
	// Waiting lists the parties whose messages this party waits for.
	Waiting []PartyID `json:"waiting,omitempty"`
	// Started is when this party started the session.
	Started time.Time `json:"started"`
}

// Sessions returns a snapshot of the sessions running now, oldest first:
// what each waits for and in which round, for progress displays.
func (e *Engine) Sessions() []SessionInfo {
	e.mu.Lock()
	ss := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		ss = append(ss, s)
	}
	e.mu.Unlock()
	out := make([]SessionInfo, 0, len(ss))
	for _, s := range ss {
		if info := s.snap.Load(); info != nil {
			out = append(out, *info)
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Started.Compare(b.Started) })
	return out
}

// Stats are counters of what the engine dropped and why.
type Stats struct {
	// UnknownSession counts messages for sessions this party never joined.
	UnknownSession uint64 `json:"unknown_session"`
	// FinishedSession counts messages for sessions that already ended.
	FinishedSession uint64 `json:"finished_session"`
	// NotParty counts messages from parties outside the session.
	NotParty uint64 `json:"not_party"`
	// Duplicate counts repeated copies of a message already received.
	Duplicate uint64 `json:"duplicate"`
	// Replay counts proposals for a session this party already saw.
	Replay uint64 `json:"replay"`
	// Malformed counts messages that failed validation.
	Malformed uint64 `json:"malformed"`
	// Unexpected counts messages of a type the session did not expect at
	// that point.
	Unexpected uint64 `json:"unexpected"`
	// Overflow counts messages dropped because a session's buffer was full.
	Overflow uint64 `json:"overflow"`
}

type dropReason int

const (
	dropUnknownSession dropReason = iota
	dropFinished
	dropNotParty
	dropDuplicate
	dropReplay
	dropMalformed
	dropUnexpected
	dropOverflow
	numDropReasons
)

type stats [numDropReasons]atomic.Uint64

func (e *Engine) count(r dropReason) { e.stats[r].Add(1) }

// Stats returns the engine's drop counters.
func (e *Engine) Stats() Stats {
	return Stats{
		UnknownSession:  e.stats[dropUnknownSession].Load(),
		FinishedSession: e.stats[dropFinished].Load(),
		NotParty:        e.stats[dropNotParty].Load(),
		Duplicate:       e.stats[dropDuplicate].Load(),
		Replay:          e.stats[dropReplay].Load(),
		Malformed:       e.stats[dropMalformed].Load(),
		Unexpected:      e.stats[dropUnexpected].Load(),
		Overflow:        e.stats[dropOverflow].Load(),
	}
}

// recentSet remembers the last n session IDs.
type recentSet struct {
	ring []SessionID
	next int
	set  map[SessionID]struct{}
}

func newRecentSet(n int) *recentSet {
	return &recentSet{ring: make([]SessionID, 0, n), set: make(map[SessionID]struct{}, n)}
}

func (r *recentSet) has(id SessionID) bool { _, ok := r.set[id]; return ok }

func (r *recentSet) add(id SessionID) {
	if _, ok := r.set[id]; ok {
		return
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[id] = struct{}{}
}

// keyLocks serializes operations that change a key's stored share
// (resharing) against each other.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (k *keyLocks) get(id string) *sync.Mutex {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.locks == nil {
		k.locks = make(map[string]*sync.Mutex)
	}
	l := k.locks[id]
	if l == nil {
		l = new(sync.Mutex)
		k.locks[id] = l
	}
	return l
}
