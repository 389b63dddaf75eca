package tss

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// phase is where a session is in its life.
type phase int

const (
	phaseJoining   phase = iota // waiting for accepts (initiator) or start (participant)
	phaseRunning                // protocol rounds
	phaseFinishing              // initiator collecting results
	phaseEnded
)

// slot names one message a party may send in a session: at most one per
// sender and round for broadcasts, and per sender, round and recipient for
// point-to-point messages (the recipient is always us).
type slot struct {
	origin PartyID
	round  uint32
}

// bcastState tracks one broadcast through echo consistency.
type bcastState struct {
	in        *inbound // the broadcast, held until its echoes are in
	hash      [32]byte
	have      bool
	delivered bool
	echoes    map[PartyID][32]byte
}

// sessionOp is the part of a session that depends on its operation. Each
// kind of session is its own type, holding that kind's state in typed
// fields: keygenSession, signSession, reshareSession, commitSession,
// presignSession, onlineSession and reconcileSession.
//
// The engine calls check on every party, before the Policy (see
// Engine.check). Then, in a session that runs in rounds, every party calls
// newProtocol once every party has joined and finish once the protocol is
// done; when wantReports is true every participant reports finish's
// payload to the initiator, which passes each report to report and, once
// every party has reported, calls verify. A one-shot session (oneShotOp) skips the
// rounds.
type sessionOp interface {
	// check checks the proposal against this party's own state (keys,
	// shares, pools) and keeps what the session needs. It must not change
	// anything stored.
	check(ctx context.Context) error
	// wantReports reports whether participants send the initiator their
	// result (MsgResult) and the initiator waits for all of them before
	// the session succeeds.
	wantReports() bool
	// newProtocol builds the protocol when the session starts. ctx is the
	// context check ran under: the caller's on the initiator, the engine's
	// on a participant.
	newProtocol(ctx context.Context) (protocol, error)
	// finish runs once the protocol is done, stores this party's results
	// and returns the payload a participant reports to the initiator.
	finish(ctx context.Context) ([]byte, error)
	// report checks and records one participant's report at the
	// initiator.
	report(from PartyID, payload []byte) error
	// verify runs at the initiator once the session succeeded, to check
	// the collected reports against its own results.
	verify() error
}

// oneShotOp is a session kind that runs in one round trip (GG20 online
// signing, pool reconciliation): the initiator skips the join and start
// phases, sends the proposal, runs finish for its own part and waits for
// every party's report; a participant answers the proposal with respond
// instead of joining a session.
type oneShotOp interface {
	sessionOp
	// respond, on a participant, checks the proposal's consequences and
	// returns the report sent back at once.
	respond(ctx context.Context) ([]byte, error)
}

// session is one protocol run as seen by this party.
type session struct {
	e         *Engine
	id        SessionID
	prop      *Proposal
	self      PartyID
	parties   []PartyID // sorted, including self
	others    []PartyID // sorted, excluding self
	initiator bool
	op        sessionOp
	oneShot   bool            // op is a oneShotOp (only ever on the initiator)
	checkCtx  context.Context // the context op.check ran under, for op.newProtocol
	log       *slog.Logger

	// Messages from the sender dispatchers wait here for the session
	// goroutine; queued counts them per sender (sessionQueuePerSender).
	qmu     sync.Mutex
	queue   []*inbound
	queued  map[PartyID]int
	qclosed bool
	notify  chan struct{} // capacity 1: something was queued

	done chan struct{}
	err  error // valid after done is closed

	started time.Time
	snap    atomic.Pointer[SessionInfo]
	echoes  atomic.Int64 // echoes recorded, for tests of the state bound

	// state below is owned by the run goroutine
	phase        phase
	proto        protocol
	accepted     map[PartyID]bool
	results      map[PartyID]bool
	early        []*inbound
	earlyCount   map[PartyID]int   // protocol messages in early, by sender
	earlyEchoes  map[PartyID]int   // echoes in early, by sender
	earlyBytes   map[PartyID]int64 // bytes in early, by sender
	bcast        map[slot]*bcastState
	p2p          map[slot][32]byte
	lastProgress time.Time
	obsRound     uint32    // the round last published, for Observer.RoundDone
	obsStart     time.Time // when the session entered obsRound
}

// Bounds on what one sender can make one session hold. A session also
// counts against its sender's budget in the engine (peerBufferBytes).
const (
	// sessionQueuePerSender bounds the messages from one sender waiting
	// for the session goroutine. No party sends one session more than a
	// message and an echo per other party for each round; the largest
	// protocols have 10 rounds and committees have at most 2*MaxParties
	// parties (a reshare), so honest senders stay below it.
	sessionQueuePerSender = 2048
	// earlyMessagesPerSender bounds the protocol messages from one sender
	// that a session keeps before it starts: the first rounds of a party
	// that started earlier can overtake the start, a message to us and a
	// broadcast per round.
	earlyMessagesPerSender = 8
	// earlyEchoesPerSender bounds the echoes from one sender kept before
	// the start: one per other party for each broadcast of those rounds.
	earlyEchoesPerSender = 8 * MaxParties
	// earlyBytesPerSender bounds the bytes from one sender kept before the
	// start: two payloads of the largest size.
	earlyBytesPerSender = 2 * MaxPayloadSize
	// abortTimeout bounds the sending of the notice that this party gave
	// up on a session.
	abortTimeout = 2 * time.Second
)

func newSession(e *Engine, checkCtx context.Context, prop *Proposal, initiator bool, op sessionOp) *session {
	self := e.net.Self()
	others := make([]PartyID, 0, len(prop.Parties))
	for _, p := range prop.Parties {
		if p != self {
			others = append(others, p)
		}
	}
	id := prop.SessionID()
	_, oneShot := op.(oneShotOp)
	return &session{
		e:           e,
		id:          id,
		prop:        prop,
		self:        self,
		parties:     prop.Parties,
		others:      others,
		initiator:   initiator,
		oneShot:     oneShot,
		op:          op,
		checkCtx:    checkCtx,
		log:         e.log.With("session", id.Short(), "op", string(prop.Op)),
		queued:      make(map[PartyID]int),
		notify:      make(chan struct{}, 1),
		done:        make(chan struct{}),
		started:     time.Now(),
		accepted:    make(map[PartyID]bool),
		results:     make(map[PartyID]bool),
		earlyCount:  make(map[PartyID]int),
		earlyEchoes: make(map[PartyID]int),
		earlyBytes:  make(map[PartyID]int64),
		bcast:       make(map[slot]*bcastState),
		p2p:         make(map[slot][32]byte),
	}
}

// deliver queues in for the session goroutine. It never blocks: when the
// session has ended or the sender has sessionQueuePerSender messages
// queued, in is released and deliver reports why it was dropped.
func (s *session) deliver(in *inbound) (dropReason, bool) {
	s.qmu.Lock()
	switch {
	case s.qclosed:
		s.qmu.Unlock()
		in.release()
		return dropFinished, false
	case s.queued[in.From] >= sessionQueuePerSender:
		s.qmu.Unlock()
		in.release()
		return dropOverflow, false
	}
	s.queue = append(s.queue, in)
	s.queued[in.From]++
	s.qmu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return 0, true
}

// next takes the oldest queued message, or nil.
func (s *session) next() *inbound {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	in := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if s.queued[in.From]--; s.queued[in.From] <= 0 {
		delete(s.queued, in.From)
	}
	return in
}

// closeQueue refuses further messages and releases everything the session
// still holds: queued, buffered before the start, and broadcasts waiting
// for echoes.
func (s *session) closeQueue() {
	s.qmu.Lock()
	s.qclosed = true
	q := s.queue
	s.queue = nil
	s.qmu.Unlock()
	for _, in := range q {
		in.release()
	}
	for _, in := range s.early {
		in.release()
	}
	s.early = nil
	for _, b := range s.bcast {
		if b.in != nil {
			b.in.release()
			b.in = nil
		}
	}
}

// run drives the session to its end and records the outcome. It is the only
// goroutine that touches the session's state.
func (s *session) run(ctx context.Context) {
	err := s.loop(ctx)
	s.closeQueue()
	if s.proto != nil {
		s.proto.wipe()
	}
	if err != nil {
		var aborted *AbortedError
		if !errors.As(err, &aborted) && !errors.Is(err, errTranscriptVerdict) {
			// Tell the others on the side, so the caller gets its error
			// without waiting for a notice to a party that may be gone.
			s.e.wg.Add(1)
			go func() {
				defer s.e.wg.Done()
				s.abortOthers(err)
			}()
		}
	}
	s.err = err
	s.phase = phaseEnded
	close(s.done)
}

func (s *session) loop(ctx context.Context) error {
	s.lastProgress = time.Now()
	defer s.publish()
	if s.initiator {
		payload, err := encodeProposal(s.prop)
		if err != nil {
			return err
		}
		switch {
		case s.oneShot:
			if err := s.send(ctx, &Message{Type: MsgPropose, To: s.others, Payload: payload}); err != nil {
				return err
			}
			if _, err := s.op.finish(ctx); err != nil {
				return err
			}
			s.phase = phaseFinishing
			s.maybeEnd()
		case len(s.others) == 0:
			if err := s.startProtocol(ctx); err != nil {
				return err
			}
		default:
			if err := s.send(ctx, &Message{Type: MsgPropose, To: s.others, Payload: payload}); err != nil {
				return err
			}
		}
	} else {
		if err := s.send(ctx, &Message{Type: MsgAccept, To: []PartyID{s.prop.Initiator}}); err != nil {
			return err
		}
	}
	s.publish()
	timer := time.NewTimer(s.timeout())
	defer timer.Stop()
	for s.phase != phaseEnded {
		select {
		case <-s.notify:
			progressed := false
			for s.phase != phaseEnded {
				in := s.next()
				if in == nil {
					break
				}
				p, err := s.handle(ctx, in)
				if err != nil {
					return err
				}
				if p {
					s.noteRound(s.runningRound())
				}
				progressed = progressed || p
			}
			if progressed {
				s.publish()
				s.lastProgress = time.Now()
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				timer.Reset(s.timeout())
			}
		case <-timer.C:
			return s.timeoutError()
		case <-ctx.Done():
			return fmt.Errorf("tss: %s session %s stopped: %w", s.prop.Op, s.id.Short(), ctx.Err())
		}
	}
	return nil
}

// publish records a snapshot of the session for Engine.Sessions.
func (s *session) publish() {
	info := &SessionInfo{
		ID: s.id, Op: s.prop.Op, KeyID: s.prop.KeyID, Initiator: s.prop.Initiator,
		Parties: s.parties, Started: s.started, Waiting: s.waiting(),
	}
	switch s.phase {
	case phaseJoining:
		info.Phase = "joining"
	case phaseRunning:
		info.Phase = "running"
		info.Round = s.proto.round()
	case phaseFinishing:
		info.Phase = "finishing"
	default:
		info.Phase = "ended"
	}
	s.snap.Store(info)
	s.noteRound(info.Round)
}

// runningRound is the protocol round while the session runs, else 0.
func (s *session) runningRound() uint32 {
	if s.phase != phaseRunning {
		return 0
	}
	return s.proto.round()
}

// noteRound reports the round the session leaves, if it left one, to the
// engine's Observer. r is the round it is in now (0 when not running).
// A failed session keeps its phase and round here, so the round it failed
// in is never reported.
func (s *session) noteRound(r uint32) {
	if r == s.obsRound {
		return
	}
	now := time.Now()
	if s.obsRound != 0 && s.e.cfg.Observer != nil {
		s.e.cfg.Observer.RoundDone(s.prop.Op, s.obsRound, now.Sub(s.obsStart))
	}
	s.obsRound, s.obsStart = r, now
}

func (s *session) timeout() time.Duration {
	if s.phase == phaseJoining {
		return s.e.cfg.JoinTimeout
	}
	return s.e.cfg.RoundTimeout
}

func (s *session) timeoutError() error {
	var round uint32
	if s.phase == phaseRunning {
		round = s.proto.round()
	}
	return &RoundTimeoutError{Op: s.prop.Op, Session: s.id, Round: round, Parties: s.waiting(), After: time.Since(s.lastProgress).Round(time.Millisecond)}
}

// waiting lists the parties this session is waiting for in its phase.
func (s *session) waiting() []PartyID {
	var waiting []PartyID
	switch s.phase {
	case phaseJoining:
		if s.initiator {
			for _, p := range s.others {
				if !s.accepted[p] {
					waiting = append(waiting, p)
				}
			}
		} else {
			waiting = []PartyID{s.prop.Initiator}
		}
	case phaseRunning:
		waiting = append(waiting, s.proto.waitingFor()...)
		for sl, b := range s.bcast {
			if !b.have {
				continue
			}
			if b.delivered {
				continue
			}
			for _, p := range s.others {
				if p == sl.origin {
					continue
				}
				if _, ok := b.echoes[p]; !ok {
					waiting = append(waiting, p)
				}
			}
		}
	case phaseFinishing:
		for _, p := range s.others {
			if !s.results[p] {
				waiting = append(waiting, p)
			}
		}
	}
	slices.Sort(waiting)
	return slices.Compact(waiting)
}

// handle runs onMessage and releases in unless the session kept it.
func (s *session) handle(ctx context.Context, in *inbound) (bool, error) {
	in.kept = false
	progressed, err := s.onMessage(ctx, in)
	if !in.kept {
		in.release()
	}
	return progressed, err
}

// onMessage handles one inbound message. The dispatcher already checked
// that the sender is a party of this session and not us. It reports
// whether the session made progress: only then is the round timer reset.
func (s *session) onMessage(ctx context.Context, in *inbound) (bool, error) {
	m := in.Message
	switch m.Type {
	case MsgAbort:
		return false, &AbortedError{Party: m.From, Reason: printable(m.Payload), Waiting: s.waiting()}
	case MsgRefuse:
		if !s.initiator || (s.phase != phaseJoining && !s.oneShot) {
			s.e.count(dropUnexpected)
			return false, nil
		}
		return false, parseRefusal(m.From, m.Payload)
	case MsgAccept:
		if !s.initiator || s.phase != phaseJoining || s.accepted[m.From] {
			s.e.count(dropUnexpected)
			return false, nil
		}
		s.accepted[m.From] = true
		if len(s.accepted) == len(s.others) {
			if err := s.send(ctx, &Message{Type: MsgStart, To: s.others}); err != nil {
				return false, err
			}
			if err := s.startProtocol(ctx); err != nil {
				return false, err
			}
			if err := s.replayEarly(ctx); err != nil {
				return false, err
			}
		}
		return true, nil
	case MsgStart:
		if s.initiator || m.From != s.prop.Initiator || s.phase != phaseJoining {
			s.e.count(dropUnexpected)
			return false, nil
		}
		if err := s.startProtocol(ctx); err != nil {
			return false, err
		}
		return true, s.replayEarly(ctx)
	case MsgProtocol, MsgEcho:
		if s.phase == phaseJoining {
			s.keepEarly(in)
			return false, nil
		}
		if s.phase != phaseRunning {
			s.e.count(dropFinished)
			return false, nil
		}
		if m.Type == MsgEcho {
			return s.onEcho(ctx, m)
		}
		return s.onProtocol(ctx, in)
	case MsgResult:
		if !s.initiator || s.results[m.From] || (s.phase != phaseFinishing && s.phase != phaseRunning) {
			s.e.count(dropUnexpected)
			return false, nil
		}
		if err := s.op.report(m.From, m.Payload); err != nil {
			return false, err
		}
		s.results[m.From] = true
		s.maybeEnd()
		return true, nil
	default:
		s.e.count(dropUnexpected)
		return false, nil
	}
}

// keepEarly buffers a protocol message or echo that arrived before the
// session started, within the per-sender bounds; beyond them it is dropped
// and counted.
func (s *session) keepEarly(in *inbound) {
	from := in.From
	full := s.earlyBytes[from]+in.weight > earlyBytesPerSender
	if in.Type == MsgEcho {
		full = full || s.earlyEchoes[from] >= earlyEchoesPerSender
	} else {
		full = full || s.earlyCount[from] >= earlyMessagesPerSender
	}
	if full {
		s.e.count(dropOverflow)
		return
	}
	if in.Type == MsgEcho {
		s.earlyEchoes[from]++
	} else {
		s.earlyCount[from]++
	}
	s.earlyBytes[from] += in.weight
	s.early = append(s.early, in)
	in.kept = true
}

// replayEarly hands the messages buffered before the start to the session,
// in the order they came.
func (s *session) replayEarly(ctx context.Context) error {
	early := s.early
	s.early = nil
	clear(s.earlyCount)
	clear(s.earlyEchoes)
	clear(s.earlyBytes)
	for i, in := range early {
		if _, err := s.handle(ctx, in); err != nil {
			for _, rest := range early[i+1:] {
				rest.release()
			}
			return err
		}
	}
	return nil
}

func (s *session) onProtocol(ctx context.Context, in *inbound) (bool, error) {
	m := in.Message
	if m.Round == 0 {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: 0, Reason: fmt.Errorf("%w: protocol message without a round", ErrMalformedMessage)}
	}
	if bc, ok := s.proto.broadcastRound(m.Round); !ok || bc != m.Broadcast {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: round %d message with the wrong round number or delivery mode", ErrMalformedMessage, m.Round)}
	}
	if m.Broadcast && !s.mayBroadcast(m.From, m.Round) {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: round %d broadcast from a party that does not broadcast in that round", ErrMalformedMessage, m.Round)}
	}
	sl := slot{origin: m.From, round: m.Round}
	h := m.Hash()
	if !m.Broadcast || len(s.others) < 2 {
		// Point-to-point, or a broadcast with a single recipient: no one
		// to compare with.
		if prev, ok := s.p2p[sl]; ok {
			if subtle.ConstantTimeCompare(prev[:], h[:]) == 1 {
				s.e.count(dropDuplicate)
				return false, nil
			}
			return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: two different messages for one round", ErrMalformedMessage)}
		}
		s.p2p[sl] = h
		return true, s.toProtocol(ctx, m)
	}
	b := s.bcast[sl]
	if b == nil {
		b = &bcastState{echoes: make(map[PartyID][32]byte)}
		s.bcast[sl] = b
	}
	if b.have {
		if b.hash == h {
			s.e.count(dropDuplicate)
			return false, nil
		}
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: two different broadcasts for one round", ErrMalformedMessage)}
	}
	b.in, b.hash, b.have = in, h, true
	in.kept = true
	for p, eh := range b.echoes {
		if eh != h {
			return false, &EquivocationError{Sender: m.From, Reporter: p, Round: m.Round}
		}
	}
	// Echo what we saw to every other recipient.
	var to []PartyID
	for _, p := range s.others {
		if p != m.From {
			to = append(to, p)
		}
	}
	if err := s.send(ctx, &Message{Type: MsgEcho, To: to, Round: m.Round, Payload: encodeEcho(m.From, h)}); err != nil {
		return false, err
	}
	// The first copy of a party's broadcast is progress even while its
	// echoes are missing: it can come only once per party and round.
	_, err := s.tryDeliver(ctx, sl, b)
	return true, err
}

// onEcho records another recipient's echo of a broadcast. An echo is
// checked against the protocol before it enters any state: its round must
// be a broadcast round of the protocol and its origin a party that
// broadcasts in that round, so the echoes a session holds are bounded by
// parties × parties × rounds. An echo is not progress by itself: the round
// timer is reset only when it completes a broadcast's delivery.
func (s *session) onEcho(ctx context.Context, m *Message) (bool, error) {
	origin, h, err := decodeEcho(m.Payload)
	if err != nil || origin == m.From || origin == s.self || !containsParty(s.others, origin) {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: bad echo", ErrMalformedMessage)}
	}
	if bc, ok := s.proto.broadcastRound(m.Round); !ok || !bc || !s.mayBroadcast(origin, m.Round) {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: echo of a round %d broadcast by %s, which the protocol does not have", ErrMalformedMessage, m.Round, origin)}
	}
	sl := slot{origin: origin, round: m.Round}
	b := s.bcast[sl]
	if b == nil {
		b = &bcastState{echoes: make(map[PartyID][32]byte)}
		s.bcast[sl] = b
	}
	if prev, ok := b.echoes[m.From]; ok {
		if prev == h {
			s.e.count(dropDuplicate)
			return false, nil
		}
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: two different echoes for one broadcast", ErrMalformedMessage)}
	}
	b.echoes[m.From] = h
	s.echoes.Add(1)
	if b.have && b.hash != h {
		return false, &EquivocationError{Sender: origin, Reporter: m.From, Round: m.Round}
	}
	return s.tryDeliver(ctx, sl, b)
}

// mayBroadcast reports whether origin broadcasts in round r of the
// session's protocol. Protocols in which only some parties broadcast in a
// round (resharing: old and new committees take turns) say which.
func (s *session) mayBroadcast(origin PartyID, r uint32) bool {
	if bs, ok := s.proto.(broadcastSenders); ok {
		return bs.broadcasts(origin, r)
	}
	return true
}

// broadcastSenders is implemented by protocols in which not every party
// broadcasts in every broadcast round.
type broadcastSenders interface {
	// broadcasts reports whether party p broadcasts in round r.
	broadcasts(p PartyID, r uint32) bool
}

// tryDeliver hands a broadcast to the protocol once every other recipient
// has echoed it, and reports whether it did.
func (s *session) tryDeliver(ctx context.Context, sl slot, b *bcastState) (bool, error) {
	if !b.have || b.delivered {
		return false, nil
	}
	for _, p := range s.others {
		if p == sl.origin {
			continue
		}
		if _, ok := b.echoes[p]; !ok {
			return false, nil
		}
	}
	b.delivered = true
	in := b.in
	b.in = nil
	defer in.release()
	return true, s.toProtocol(ctx, in.Message)
}

func (s *session) toProtocol(ctx context.Context, m *Message) error {
	outs, err := s.proto.handle(inMsg{from: m.From, broadcast: m.Broadcast, round: m.Round, payload: m.Payload})
	if err != nil {
		return err
	}
	if err := s.sendOut(ctx, outs); err != nil {
		return err
	}
	return s.checkDone(ctx)
}

func (s *session) startProtocol(ctx context.Context) error {
	p, err := s.op.newProtocol(s.checkCtx)
	if err != nil {
		return err
	}
	s.proto = p
	s.phase = phaseRunning
	outs, err := p.start()
	if err != nil {
		return err
	}
	if err := s.sendOut(ctx, outs); err != nil {
		return err
	}
	return s.checkDone(ctx)
}

func (s *session) checkDone(ctx context.Context) error {
	if s.phase != phaseRunning || !s.proto.done() {
		return nil
	}
	payload, err := s.op.finish(ctx)
	if err != nil {
		return err
	}
	if s.initiator {
		s.phase = phaseFinishing
		s.maybeEnd()
		return nil
	}
	if s.e.cfg.Completed != nil {
		s.e.cfg.Completed(ctx, s.prop)
	}
	if s.op.wantReports() {
		if err := s.send(ctx, &Message{Type: MsgResult, To: []PartyID{s.prop.Initiator}, Payload: payload}); err != nil {
			return err
		}
	}
	s.phase = phaseEnded
	return nil
}

func (s *session) maybeEnd() {
	if s.phase != phaseFinishing {
		return
	}
	if s.op.wantReports() && len(s.results) < len(s.others) {
		return
	}
	s.phase = phaseEnded
}

func (s *session) sendOut(ctx context.Context, outs []outMsg) error {
	for _, o := range outs {
		m := &Message{Type: MsgProtocol, Broadcast: o.broadcast, Round: o.round, Payload: o.payload, To: o.to}
		if o.broadcast {
			m.To = s.others
		}
		if len(m.To) == 0 {
			continue
		}
		if err := s.send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// send stamps m with the session and sender and hands it to the network.
func (s *session) send(ctx context.Context, m *Message) error {
	m.Session = s.id
	m.From = s.self
	if len(m.Payload) > MaxPayloadSize {
		return fmt.Errorf("tss: %s session %s: round %d message of %d bytes: %w", s.prop.Op, s.id.Short(), m.Round, len(m.Payload), ErrMessageTooLarge)
	}
	sctx, cancel := context.WithTimeout(ctx, s.e.cfg.RoundTimeout)
	defer cancel()
	if err := s.e.net.Send(sctx, m); err != nil {
		return fmt.Errorf("tss: %s session %s: send %s: %w", s.prop.Op, s.id.Short(), m.Type, err)
	}
	return nil
}

// abortOthers tells the other parties, best effort, that this party gave
// up, so they fail at once instead of waiting for a timeout.
func (s *session) abortOthers(cause error) {
	if len(s.others) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	reason := cause.Error()
	if len(reason) > 512 {
		reason = reason[:512]
	}
	m := &Message{Session: s.id, Type: MsgAbort, From: s.self, To: s.others, Payload: []byte(reason)}
	if err := s.e.net.Send(ctx, m); err != nil {
		s.log.Debug("abort notice not delivered", "err", err)
	}
}

func encodeEcho(origin PartyID, h [32]byte) []byte {
	b := make([]byte, 0, 2+len(origin)+32)
	b = binary.BigEndian.AppendUint16(b, uint16(len(origin)))
	b = append(b, origin...)
	return append(b, h[:]...)
}

func decodeEcho(b []byte) (PartyID, [32]byte, error) {
	var h [32]byte
	if len(b) < 2 {
		return "", h, errors.New("short echo")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+n+32 {
		return "", h, errors.New("bad echo length")
	}
	copy(h[:], b[2+n:])
	return PartyID(b[2 : 2+n]), h, nil
}

// printable returns a reason received from another party, trimmed and
// stripped of control characters, for use in an error message.
func printable(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < ' ' || r == 0x7f {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

// parseRefusal reads a refusal payload: a code, a newline, the reason.
func parseRefusal(from PartyID, b []byte) *RefusedError {
	e := &RefusedError{Party: from}
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i <= 32 {
		code := string(b[:i])
		for _, c := range refusalCodes {
			if c.code == code {
				e.Code = code
			}
		}
		b = b[i+1:]
	}
	e.Reason = printable(b)
	return e
}
