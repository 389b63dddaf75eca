package tss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Engine runs this party's side of every session. Create it with New, run
// Run in a goroutine, then call Keygen, Sign, Reshare and the GG20 methods.
// Sessions proposed by other parties are checked and joined automatically.
//
// Every other party gets its own inbound queue and dispatcher goroutine, so
// a party that floods or proposes sessions that are slow to check delays
// only its own messages. What one party can make the engine hold is
// bounded: peerBufferBytes of its messages in all, at most
// MaxSessionsPerPeer sessions it proposed, and per session a few messages
// that arrive before the start (earlyMessagesPerSender,
// earlyBytesPerSender).
type Engine struct {
	cfg Config
	net Network
	log *slog.Logger

	mu          sync.Mutex
	started     bool
	running     bool
	ready       chan struct{} // closed when Run starts
	runCtx      context.Context
	sessions    map[SessionID]*session
	ended       *recentSet
	byInitiator map[PartyID]int // sessions and online answers running, by proposer
	ppSessions  map[PartyID]int // sessions running that need pre-parameters, by proposer
	wg          sync.WaitGroup

	peersMu sync.Mutex
	peers   map[PartyID]*peerState

	keyLocks   keyLocks
	slots      *initiatorSlots
	stats      stats
	responding atomic.Int64
	presigs    *presigIndex
	precomp    precompCache
	metas      metaCache
	verifiers  verifierCache
}

// Bounds on what other parties can make the engine hold. They are far above
// what honest parties send and are not configurable: they keep memory
// bounded, they are not tuning knobs.
const (
	// peerBufferBytes bounds the bytes of one party's messages that the
	// engine holds at once: waiting for the party's dispatcher, queued for
	// sessions, buffered before a session starts and broadcasts waiting
	// for their echoes. Further messages are dropped and counted in
	// Stats.Overflow. An honest party's messages are processed as they
	// come and stay far below it.
	peerBufferBytes = 64 << 20
	// peerQueueMessages bounds the messages from one party waiting for its
	// dispatcher.
	peerQueueMessages = 1024
	// maxPeers bounds the distinct senders the engine keeps a dispatcher
	// for; an authenticated network only delivers committee members.
	maxPeers = 1024
	// messageOverhead is what the engine counts for a message besides its
	// payload.
	messageOverhead = 256
	// maxPreParamSessionsPerPeer bounds the keygen and reshare sessions
	// proposed by one party that need this party's pre-parameters and run
	// at once. A session that gets as far as sending this party's first
	// message of the protocol uses up one set (its Paillier key is in
	// it), so this limits how fast a party that starts sessions and
	// abandons them can drain the pool.
	maxPreParamSessionsPerPeer = 2
	// refusalQueue bounds the refusals waiting to be sent to one party;
	// further refusals are dropped (that party then times out instead of
	// hearing why) and counted in Stats.RefusalsDropped.
	refusalQueue = 64
	// refusalTimeout bounds the sending of one refusal.
	refusalTimeout = 2 * time.Second
	// endedSessionsKept is how many ended sessions the engine remembers,
	// so that a replayed proposal or a late message for one is dropped
	// and counted as such.
	endedSessionsKept = 8192
)

// peerState is one other party as the engine sees it: the queue of its
// messages waiting for its dispatcher, what it holds, and the refusals
// waiting to be sent to it.
type peerState struct {
	id       PartyID
	queue    chan *inbound
	held     atomic.Int64 // bytes of its messages held (peerBufferBytes)
	refusals chan *Message
}

// inbound is a received message with the bytes it holds against its
// sender's budget until it is released.
type inbound struct {
	*Message
	peer     *peerState
	weight   int64
	released atomic.Bool
	kept     bool // set by the session goroutine when it keeps the message
}

// release gives the message's bytes back to its sender's budget, once.
func (in *inbound) release() {
	if in.peer != nil && in.released.CompareAndSwap(false, true) {
		in.peer.held.Add(-in.weight)
	}
}

// New validates cfg, applies defaults and returns an Engine. Invalid values
// are reported with an error wrapping ErrInvalidConfig.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:         cfg,
		net:         cfg.Network,
		log:         log.With("party", string(cfg.Network.Self())),
		sessions:    make(map[SessionID]*session),
		ended:       newRecentSet(endedSessionsKept),
		byInitiator: make(map[PartyID]int),
		ppSessions:  make(map[PartyID]int),
		peers:       make(map[PartyID]*peerState),
		ready:       make(chan struct{}),
		presigs:     newPresigIndex(),
		slots:       newInitiatorSlots(cfg.MaxSessionsPerPeer),
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
		e.admit(ctx, m)
	}
}

// admit checks what can be checked of m without any state, charges it to
// its sender and queues it for the sender's dispatcher. It never blocks:
// what does not fit is dropped and counted.
func (e *Engine) admit(ctx context.Context, m *Message) {
	if err := m.Validate(); err != nil {
		e.count(dropMalformed)
		return
	}
	if m.From == e.net.Self() {
		e.count(dropNotParty)
		return
	}
	// The network delivered m to us, and nothing later reads the other
	// recipients: do not hold them.
	m.To = nil
	p := e.peer(ctx, m.From)
	if p == nil {
		e.count(dropOverflow)
		return
	}
	in := &inbound{Message: m, peer: p, weight: int64(len(m.Payload)) + messageOverhead}
	if p.held.Add(in.weight) > peerBufferBytes {
		in.release()
		e.count(dropOverflow)
		return
	}
	select {
	case p.queue <- in:
	default:
		in.release()
		e.count(dropOverflow)
	}
}

// peer returns the state of party id, starting its dispatcher the first
// time; nil when the engine already serves maxPeers parties.
func (e *Engine) peer(ctx context.Context, id PartyID) *peerState {
	e.peersMu.Lock()
	defer e.peersMu.Unlock()
	if p := e.peers[id]; p != nil {
		return p
	}
	if len(e.peers) >= maxPeers {
		return nil
	}
	p := &peerState{id: id, queue: make(chan *inbound, peerQueueMessages), refusals: make(chan *Message, refusalQueue)}
	e.peers[id] = p
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		for {
			select {
			case in := <-p.queue:
				e.dispatch(ctx, in)
			case <-ctx.Done():
				return
			}
		}
	}()
	// Refusals go out on their own goroutine, each within refusalTimeout,
	// so that a party that does not read holds up neither its dispatcher
	// nor anyone else's.
	go func() {
		defer e.wg.Done()
		for {
			select {
			case m := <-p.refusals:
				sctx, cancel := context.WithTimeout(ctx, refusalTimeout)
				if err := e.net.Send(sctx, m); err != nil {
					e.log.Debug("refusal not delivered", "session", m.Session.Short(), "to", string(id), "err", err.Error())
				}
				cancel()
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// dispatch routes one inbound message, on its sender's dispatcher.
func (e *Engine) dispatch(ctx context.Context, in *inbound) {
	m := in.Message
	if m.Type == MsgPropose {
		e.onPropose(ctx, m)
		in.release()
		return
	}
	e.mu.Lock()
	s := e.sessions[m.Session]
	ended := s == nil && e.ended.has(m.Session)
	e.mu.Unlock()
	if s == nil {
		in.release()
		if ended {
			e.count(dropFinished)
		} else {
			e.count(dropUnknownSession)
		}
		return
	}
	if !containsParty(s.others, m.From) {
		in.release()
		e.count(dropNotParty)
		return
	}
	if r, ok := s.deliver(in); !ok {
		e.count(r)
	}
}

// onPropose checks a proposal and joins or refuses it.
func (e *Engine) onPropose(ctx context.Context, m *Message) {
	prop, err := decodeProposal(m.Payload)
	if err != nil {
		e.count(dropMalformed)
		e.refuse(m, err)
		return
	}
	if prop.Initiator != m.From || prop.SessionID() != m.Session {
		e.count(dropMalformed)
		e.refuse(m, errors.New("proposal does not match its envelope"))
		return
	}
	if !containsParty(prop.Parties, e.net.Self()) {
		e.count(dropNotParty)
		e.refuse(m, fmt.Errorf("%w: %s is not a party of this session", ErrNotInCommittee, e.net.Self()))
		return
	}
	e.mu.Lock()
	_, active := e.sessions[m.Session]
	replay := active || e.ended.has(m.Session)
	quota := e.quotaLocked(prop)
	e.mu.Unlock()
	if replay {
		e.count(dropReplay)
		return
	}
	if quota != nil {
		// Before the checks, which may read the store or the HSM: a party
		// over its quota costs no more than this.
		e.count(dropOverQuota)
		e.refuse(m, quota)
		return
	}
	resume := e.pauseForSigning(prop.Op)
	defer resume()
	op, err := e.sessionOpFor(prop)
	if err == nil {
		err = e.check(ctx, prop, op)
	}
	if err != nil {
		e.log.Info("refused session", "session", m.Session.Short(), "op", string(prop.Op), "from", string(m.From), "reason", err.Error())
		e.refuse(m, err)
		return
	}
	if one, ok := op.(oneShotOp); ok {
		e.respond(ctx, m, prop.Op, one)
		return
	}
	if _, err := e.startSession(ctx, prop, false, op); err != nil {
		if errors.Is(err, ErrBusy) {
			e.count(dropOverQuota)
		}
		e.refuse(m, err)
	}
}

// quotaLocked returns why a session proposed by another party cannot run
// now for lack of room (wrapping ErrBusy), or nil. Call it with e.mu held.
func (e *Engine) quotaLocked(prop *Proposal) error {
	from := prop.Initiator
	switch {
	case len(e.sessions)+int(e.responding.Load()) >= e.cfg.MaxSessions:
		return fmt.Errorf("%w: %s runs %d sessions, its maximum; retry later", ErrBusy, e.net.Self(), e.cfg.MaxSessions)
	case e.byInitiator[from] >= e.cfg.MaxSessionsPerPeer:
		return fmt.Errorf("%w: %s already runs %d sessions proposed by %s, the most one party may propose; retry when some have ended",
			ErrBusy, e.net.Self(), e.byInitiator[from], from)
	case needsPreParams(prop, e.net.Self()) && e.ppSessions[from] >= maxPreParamSessionsPerPeer:
		return fmt.Errorf("%w: %s already runs %d keygen or reshare sessions proposed by %s; retry when they have ended",
			ErrBusy, e.net.Self(), e.ppSessions[from], from)
	}
	return nil
}

// needsPreParams reports whether self uses a pre-parameter set in the
// session: keygen, or a reshare in which it joins the new committee.
func needsPreParams(prop *Proposal, self PartyID) bool {
	switch prop.Op {
	case OpKeygen:
		return true
	case OpReshare:
		return slices.Contains(prop.NewParties, self)
	}
	return false
}

// respond answers a proposal of a one-shot session (online signing, pool
// reconciliation) on its own goroutine: the session is recorded as ended
// at once, so a replay of the proposal is dropped, and the answer is one
// result or a refusal.
func (e *Engine) respond(ctx context.Context, m *Message, kind Operation, op oneShotOp) {
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		e.refuse(m, ErrEngineClosed)
		return
	}
	if err := e.quotaLocked(&Proposal{Op: OpOnline, Initiator: m.From}); err != nil {
		e.mu.Unlock()
		e.count(dropOverQuota)
		e.refuse(m, err)
		return
	}
	e.ended.add(m.Session)
	e.responding.Add(1)
	e.byInitiator[m.From]++
	e.wg.Add(1)
	e.mu.Unlock()
	resume := e.pauseForSigning(kind)
	go func() {
		defer e.wg.Done()
		defer resume()
		defer func() {
			e.mu.Lock()
			e.forgetSession(m.From, false)
			e.mu.Unlock()
			e.responding.Add(-1)
		}()
		started := time.Now()
		payload, err := op.respond(ctx)
		if err != nil {
			e.observeAnswered(kind, started, err)
			e.log.Info("refused online session", "session", m.Session.Short(), "from", string(m.From), "reason", err.Error())
			e.refuse(m, err)
			return
		}
		sctx, cancel := context.WithTimeout(ctx, e.cfg.RoundTimeout)
		defer cancel()
		err = e.net.Send(sctx, &Message{Session: m.Session, Type: MsgResult, From: e.net.Self(), To: []PartyID{m.From}, Round: 1, Payload: payload})
		e.observeAnswered(kind, started, err)
		if err != nil {
			e.log.Info("online result not delivered", "session", m.Session.Short(), "to", string(m.From), "err", err.Error())
		}
	}()
}

// observeAnswered reports a one-shot session this party answered to the
// Observer.
func (e *Engine) observeAnswered(op Operation, started time.Time, err error) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.SessionEnded(op, false, time.Since(started), err)
	}
}

// forgetSession forgets one running session proposed by from. Call it
// with e.mu held.
func (e *Engine) forgetSession(from PartyID, preParams bool) {
	if e.byInitiator[from]--; e.byInitiator[from] <= 0 {
		delete(e.byInitiator, from)
	}
	if preParams {
		if e.ppSessions[from]--; e.ppSessions[from] <= 0 {
			delete(e.ppSessions, from)
		}
	}
}

// sessionOpFor returns the session kind that runs prop on a participant,
// not yet checked.
func (e *Engine) sessionOpFor(prop *Proposal) (sessionOp, error) {
	switch prop.Op {
	case OpKeygen:
		return newKeygenSession(e, prop), nil
	case OpSign:
		return newSignSession(e, prop), nil
	case OpReshare:
		return newReshareSession(e, prop), nil
	case OpCommit:
		return newCommitSession(e, prop), nil
	case OpPresign:
		return newPresignSession(e, prop), nil
	case OpOnline:
		return newOnlineSession(e, prop, false), nil
	case OpSchnorrKeygen:
		return newSchnorrKeygenSession(e, prop), nil
	case OpSchnorrSign:
		return newSchnorrSignSession(e, prop), nil
	case OpReconcile:
		return newReconcileSession(e, prop), nil
	}
	return nil, fmt.Errorf("%w: operation %q cannot be proposed this way", ErrBadRequest, prop.Op)
}

// check runs the operation's checks (op.check) and then the policy. It is
// the one place where both run: on the initiator before it proposes prop,
// and on every participant before it joins. op must have been built for
// prop.
func (e *Engine) check(ctx context.Context, prop *Proposal, op sessionOp) error {
	if err := op.check(ctx); err != nil {
		return err
	}
	if e.cfg.Policy != nil {
		if err := e.cfg.Policy(ctx, prop); err != nil {
			return fmt.Errorf("%w: %w", ErrPolicy, err)
		}
	}
	return nil
}

// refuse queues a refusal for the proposer of m. Its peer's refusal
// goroutine sends it (see peer); when refusalQueue refusals already wait,
// because the proposer does not read or proposes faster than refusals
// can be sent, it is dropped and counted.
func (e *Engine) refuse(m *Message, reason error) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.Refused(m.From, reason)
	}
	e.peersMu.Lock()
	p := e.peers[m.From]
	e.peersMu.Unlock()
	msg := reason.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	payload := append([]byte(refusalCode(reason)+"\n"), msg...)
	out := &Message{Session: m.Session, Type: MsgRefuse, From: e.net.Self(), To: []PartyID{m.From}, Payload: payload}
	if p == nil {
		e.count(dropRefusal)
		return
	}
	select {
	case p.refusals <- out:
	default:
		e.count(dropRefusal)
	}
}

// startSession registers and starts a session. checkCtx is the context op
// was checked under; on the initiator it is the request's context, whose
// end also ends the session.
func (e *Engine) startSession(checkCtx context.Context, prop *Proposal, initiator bool, op sessionOp) (*session, error) {
	s := newSession(e, checkCtx, prop, initiator, op)
	pp := !initiator && needsPreParams(prop, e.net.Self())
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		return nil, ErrEngineClosed
	}
	if initiator {
		if len(e.sessions) >= e.cfg.MaxSessions {
			e.mu.Unlock()
			return nil, ErrBusy
		}
	} else if err := e.quotaLocked(prop); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	if _, dup := e.sessions[s.id]; dup || e.ended.has(s.id) {
		e.mu.Unlock()
		return nil, fmt.Errorf("tss: session %s already exists", s.id.Short())
	}
	e.sessions[s.id] = s
	e.byInitiator[prop.Initiator]++
	if pp {
		e.ppSessions[prop.Initiator]++
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	e.wg.Add(1)
	e.mu.Unlock()

	stop := func() bool { return true }
	if initiator {
		stop = context.AfterFunc(checkCtx, cancel)
	}
	resume := e.pauseForSigning(prop.Op)
	go func() {
		defer e.wg.Done()
		defer cancel()
		defer stop()
		s.run(ctx)
		resume()
		e.mu.Lock()
		delete(e.sessions, s.id)
		e.ended.add(s.id)
		e.forgetSession(prop.Initiator, pp)
		e.mu.Unlock()
		if !initiator && e.cfg.Observer != nil {
			e.cfg.Observer.SessionEnded(prop.Op, false, time.Since(s.started), s.err)
		}
		if s.err != nil {
			e.log.Info("session failed", "session", s.id.Short(), "op", string(s.prop.Op), "err", s.err.Error())
		} else {
			e.log.Debug("session done", "session", s.id.Short(), "op", string(s.prop.Op))
		}
	}()
	return s, nil
}

// propose fills the proposal's common fields, checks it with op like any
// party would, runs the session as initiator and waits for it to end. op
// is the initiator's session of prop's kind; its fields hold the results
// once propose returns without error. It first waits for a slot with
// every co-signer (initiatorSlots).
func (e *Engine) propose(ctx context.Context, prop *Proposal, op sessionOp) error {
	release, err := e.slots.acquire(ctx, e.othersOf(prop.Parties), e.cfg.JoinTimeout)
	if err != nil {
		return err
	}
	defer release()
	return e.proposeHolding(ctx, prop, op)
}

// pauseForSigning pauses Config.PauseWhileSigning when op signs, and
// returns the function that ends the pause (a no-op otherwise).
func (e *Engine) pauseForSigning(op Operation) (resume func()) {
	if e.cfg.PauseWhileSigning == nil || (op != OpSign && op != OpOnline && op != OpSchnorrSign) {
		return func() {}
	}
	return e.cfg.PauseWhileSigning.Pause()
}

// othersOf returns parties without this party.
func (e *Engine) othersOf(parties []PartyID) []PartyID {
	out := make([]PartyID, 0, len(parties))
	for _, p := range parties {
		if p != e.net.Self() {
			out = append(out, p)
		}
	}
	return out
}

// proposeHolding is propose for a caller that already holds the slots
// with prop's co-signers.
func (e *Engine) proposeHolding(ctx context.Context, prop *Proposal, op sessionOp) error {
	select {
	case <-e.ready:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrEngineClosed, ctx.Err())
	}
	prop.Version = proposalVersion
	prop.Initiator = e.net.Self()
	if _, err := io.ReadFull(e.cfg.Rand, prop.Nonce[:]); err != nil {
		return fmt.Errorf("tss: read randomness: %w", err)
	}
	if err := prop.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	resume := e.pauseForSigning(prop.Op)
	defer resume()
	if err := e.check(ctx, prop, op); err != nil {
		return err
	}
	s, err := e.startSession(ctx, prop, true, op)
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		err := s.err
		if err == nil {
			err = op.verify()
		}
		if err == nil && e.cfg.Completed != nil && !s.oneShot {
			e.cfg.Completed(ctx, prop)
		}
		e.observeInitiated(prop.Op, s.started, err)
		return err
	case <-ctx.Done():
		<-s.done
		err := fmt.Errorf("tss: %s session %s: %w", prop.Op, s.id.Short(), ctx.Err())
		e.observeInitiated(prop.Op, s.started, err)
		return err
	}
}

// observeInitiated reports the end of a session this party initiated to
// the Observer.
func (e *Engine) observeInitiated(op Operation, started time.Time, err error) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.SessionEnded(op, true, time.Since(started), err)
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
	// Overflow counts messages dropped because their sender already had as
	// many messages held by this party as it may (in all, queued for one
	// session, or buffered before a session started).
	Overflow uint64 `json:"overflow"`
	// OverQuota counts proposals refused because this party already ran
	// as many sessions as it allows, in all or proposed by that party.
	OverQuota uint64 `json:"over_quota"`
	// RefusalsDropped counts refusals not sent because too many were being
	// sent already.
	RefusalsDropped uint64 `json:"refusals_dropped"`
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
	dropOverQuota
	dropRefusal
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
		OverQuota:       e.stats[dropOverQuota].Load(),
		RefusalsDropped: e.stats[dropRefusal].Load(),
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
