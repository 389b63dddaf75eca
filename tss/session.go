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
	msg       *Message
	hash      [32]byte
	have      bool
	delivered bool
	echoes    map[PartyID][32]byte
}

// sessionHooks connect a session to the operation it runs.
type sessionHooks struct {
	// newProtocol builds the protocol when the session starts.
	newProtocol func() (protocol, error)
	// finish runs once the protocol is done and returns the payload a
	// participant sends back to the initiator (nil when none is expected).
	finish func(ctx context.Context) ([]byte, error)
	// wantResults makes the initiator wait for a MsgResult from every
	// other party before the session succeeds.
	wantResults bool
	// result checks one party's result at the initiator.
	result func(from PartyID, payload []byte) error
	// verify runs at the initiator after the session succeeded, to check
	// the collected results against its own.
	verify func() error
	// state is the operation's own state, read by the initiator's method
	// once the session has ended.
	state any
	// immediate makes the initiator skip the join and start phases: it
	// sends the proposal, runs finish for its own part and waits for every
	// party's result (GG20 online signing: one round trip).
	immediate bool
	// respond, set on a participant of an immediate session, checks the
	// proposal's consequences and returns the result sent back at once.
	respond func(ctx context.Context) ([]byte, error)
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
	hooks     sessionHooks
	state     any
	log       *slog.Logger

	inbox chan *Message
	done  chan struct{}
	err   error // valid after done is closed

	started time.Time
	snap    atomic.Pointer[SessionInfo]

	// state below is owned by the run goroutine
	phase        phase
	proto        protocol
	accepted     map[PartyID]bool
	results      map[PartyID]bool
	early        []*Message
	bcast        map[slot]*bcastState
	p2p          map[slot][32]byte
	lastProgress time.Time
}

func newSession(e *Engine, prop *Proposal, initiator bool, hooks sessionHooks) *session {
	self := e.net.Self()
	others := make([]PartyID, 0, len(prop.Parties))
	for _, p := range prop.Parties {
		if p != self {
			others = append(others, p)
		}
	}
	id := prop.SessionID()
	return &session{
		e:         e,
		id:        id,
		prop:      prop,
		self:      self,
		parties:   prop.Parties,
		others:    others,
		initiator: initiator,
		hooks:     hooks,
		state:     hooks.state,
		log:       e.log.With("session", id.Short(), "op", string(prop.Op)),
		inbox:     make(chan *Message, sessionInboxSize),
		done:      make(chan struct{}),
		started:   time.Now(),
		accepted:  make(map[PartyID]bool),
		results:   make(map[PartyID]bool),
		bcast:     make(map[slot]*bcastState),
		p2p:       make(map[slot][32]byte),
	}
}

// sessionInboxSize bounds the messages queued for one session; the
// dispatcher blocks (backpressure) when it is full.
const sessionInboxSize = 256

// deliver queues m for the session; it blocks while the inbox is full and
// gives up when the session ends or ctx is done.
func (s *session) deliver(ctx context.Context, m *Message) bool {
	select {
	case s.inbox <- m:
		return true
	case <-s.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// run drives the session to its end and records the outcome. It is the only
// goroutine that touches the session's state.
func (s *session) run(ctx context.Context) {
	err := s.loop(ctx)
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
		case s.hooks.immediate:
			if err := s.send(ctx, &Message{Type: MsgPropose, To: s.others, Payload: payload}); err != nil {
				return err
			}
			if _, err := s.hooks.finish(ctx); err != nil {
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
		case m := <-s.inbox:
			progressed, err := s.onMessage(ctx, m)
			if err != nil {
				return err
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

// onMessage handles one inbound message. The dispatcher already checked
// that the sender is a party of this session and not us.
func (s *session) onMessage(ctx context.Context, m *Message) (bool, error) {
	switch m.Type {
	case MsgAbort:
		return false, &AbortedError{Party: m.From, Reason: printable(m.Payload), Waiting: s.waiting()}
	case MsgRefuse:
		if !s.initiator || (s.phase != phaseJoining && !s.hooks.immediate) {
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
		early := s.early
		s.early = nil
		for _, em := range early {
			if _, err := s.onMessage(ctx, em); err != nil {
				return false, err
			}
		}
		return true, nil
	case MsgProtocol, MsgEcho:
		if s.phase == phaseJoining {
			if len(s.early) >= sessionInboxSize {
				s.e.count(dropOverflow)
				return false, nil
			}
			s.early = append(s.early, m)
			return false, nil
		}
		if s.phase != phaseRunning {
			s.e.count(dropFinished)
			return false, nil
		}
		if m.Type == MsgEcho {
			return s.onEcho(ctx, m)
		}
		return s.onProtocol(ctx, m)
	case MsgResult:
		if !s.initiator || s.results[m.From] || (s.phase != phaseFinishing && s.phase != phaseRunning) {
			s.e.count(dropUnexpected)
			return false, nil
		}
		if s.hooks.result != nil {
			if err := s.hooks.result(m.From, m.Payload); err != nil {
				return false, err
			}
		}
		s.results[m.From] = true
		s.maybeEnd()
		return true, nil
	default:
		s.e.count(dropUnexpected)
		return false, nil
	}
}

func (s *session) onProtocol(ctx context.Context, m *Message) (bool, error) {
	if m.Round == 0 {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: 0, Reason: fmt.Errorf("%w: protocol message without a round", ErrMalformedMessage)}
	}
	if bc, ok := s.proto.broadcastRound(m.Round); !ok || bc != m.Broadcast {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: round %d message with the wrong round number or delivery mode", ErrMalformedMessage, m.Round)}
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
	b.msg, b.hash, b.have = m, h, true
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
	return true, s.tryDeliver(ctx, sl, b)
}

func (s *session) onEcho(ctx context.Context, m *Message) (bool, error) {
	origin, h, err := decodeEcho(m.Payload)
	if err != nil || origin == m.From || origin == s.self || !containsParty(s.others, origin) {
		return false, &CulpritError{Op: s.prop.Op, Parties: []PartyID{m.From}, Round: m.Round, Reason: fmt.Errorf("%w: bad echo", ErrMalformedMessage)}
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
	if b.have && b.hash != h {
		return false, &EquivocationError{Sender: origin, Reporter: m.From, Round: m.Round}
	}
	return true, s.tryDeliver(ctx, sl, b)
}

func (s *session) tryDeliver(ctx context.Context, sl slot, b *bcastState) error {
	if !b.have || b.delivered {
		return nil
	}
	for _, p := range s.others {
		if p == sl.origin {
			continue
		}
		if _, ok := b.echoes[p]; !ok {
			return nil
		}
	}
	b.delivered = true
	m := b.msg
	b.msg = nil
	return s.toProtocol(ctx, m)
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
	p, err := s.hooks.newProtocol()
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
	var payload []byte
	if s.hooks.finish != nil {
		var err error
		if payload, err = s.hooks.finish(ctx); err != nil {
			return err
		}
	}
	if s.initiator {
		s.phase = phaseFinishing
		s.maybeEnd()
		return nil
	}
	if s.hooks.wantResults {
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
	if s.hooks.wantResults && len(s.results) < len(s.others) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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
