package tss

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"

	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
)

// role is which tss-lib party of this site a message is from or for. Keygen
// and signing have one party per site; in resharing a site may sit in both
// the old and the new committee and then runs one party for each.
type role uint8

const (
	roleMain role = 0
	roleOld  role = 1
	roleNew  role = 2
	roleBoth role = 3 // only as a destination: both committees
)

// member is one tss-lib party of the session.
type member struct {
	site PartyID
	role role
	id   *tsslib.PartyID
}

// msgSpec describes one tss-lib message type of a protocol. Its position in
// the protocol's list (starting at 1) is the round number on the wire.
type msgSpec struct {
	name      string // protobuf full name, as tss-lib's ParsedMessage.Type returns it
	broadcast bool
	// from is the role that sends it: roleMain for keygen and signing, the
	// old or the new committee for resharing.
	from role
	// after names a message type that must have been delivered from the
	// same sender before this one is validated (its checks need that
	// message's content).
	after string
}

// contentValidator checks one parsed tss-lib message before it reaches
// tss-lib. It may keep state across messages (for example a sender's
// Paillier modulus for a later proof check).
type contentValidator interface {
	validate(from *member, msg tsslib.ParsedMessage) error
}

// tssLibProtocol adapts tss-lib parties (keygen, signing, resharing) to the
// protocol interface: it turns their output channel into returned messages,
// validates every inbound message before tss-lib sees it, delays messages
// whose checks depend on an earlier one, and recovers tss-lib panics.
type tssLibProtocol struct {
	op        Operation
	self      PartyID
	local     map[role]tsslib.Party
	members   map[string]*member // by hex of tss-lib key
	bySite    map[PartyID]map[role]*member
	out       chan tsslib.Message
	specs     []msgSpec
	validator contentValidator
	finished  func(role) bool
	onWipe    func()

	delivered map[string]map[PartyID]bool // spec name -> senders delivered
	held      []heldMsg
	rnd       uint32
	// broken is the recovered panic of a tss-lib call. A panic inside
	// Update leaves the party's mutex locked, so the parties are never
	// called again: the next call would block for ever.
	broken error
}

type heldMsg struct {
	from   *member
	spec   msgSpec
	to     role
	parsed tsslib.ParsedMessage
}

// outBufferSize is the capacity of tss-lib's output channel. tss-lib writes
// to it synchronously inside Start and Update; a round emits at most one
// message per peer plus one broadcast, so this is far above what any round
// of a committee of up to 64 parties produces.
const outBufferSize = 1024

func newTSSLibProtocol(op Operation, self PartyID, members []*member, specs []msgSpec, v contentValidator) *tssLibProtocol {
	p := &tssLibProtocol{
		op:        op,
		self:      self,
		local:     make(map[role]tsslib.Party),
		members:   make(map[string]*member),
		bySite:    make(map[PartyID]map[role]*member),
		out:       make(chan tsslib.Message, outBufferSize),
		specs:     specs,
		validator: v,
		delivered: make(map[string]map[PartyID]bool),
	}
	for _, m := range members {
		p.members[hex.EncodeToString(m.id.Key)] = m
		if p.bySite[m.site] == nil {
			p.bySite[m.site] = make(map[role]*member)
		}
		p.bySite[m.site][m.role] = m
	}
	return p
}

func (p *tssLibProtocol) start() ([]outMsg, error) {
	if p.broken != nil {
		return nil, p.broken
	}
	// Start every local party; new-committee parties first (they only
	// wait), as tss-lib's own resharing tests do.
	for _, r := range []role{roleNew, roleMain, roleOld} {
		party, ok := p.local[r]
		if !ok {
			continue
		}
		if err := p.call(func() *tsslib.Error { return party.Start() }); err != nil {
			return nil, err
		}
	}
	return p.drain()
}

func (p *tssLibProtocol) handle(in inMsg) ([]outMsg, error) {
	if p.broken != nil {
		return nil, p.broken
	}
	from, to, spec, parsed, err := p.parse(in)
	if err != nil {
		return nil, &CulpritError{Op: p.op, Parties: []PartyID{in.from}, Round: in.round, Reason: err}
	}
	if spec.after != "" && !p.delivered[spec.after][from.site] {
		if len(p.held) >= 4*len(p.members) {
			return nil, &CulpritError{Op: p.op, Parties: []PartyID{in.from}, Round: in.round, Reason: fmt.Errorf("%w: too many messages ahead of their round", ErrMalformedMessage)}
		}
		p.held = append(p.held, heldMsg{from: from, spec: spec, to: to, parsed: parsed})
		return nil, nil
	}
	if err := p.accept(from, spec, to, parsed); err != nil {
		return nil, err
	}
	// Release held messages whose dependency is now met.
	for progress := true; progress; {
		progress = false
		for i, h := range p.held {
			if p.delivered[h.spec.after][h.from.site] {
				p.held = slices.Delete(p.held, i, i+1)
				if err := p.accept(h.from, h.spec, h.to, h.parsed); err != nil {
					return nil, err
				}
				progress = true
				break
			}
		}
	}
	return p.drain()
}

// parse decodes and checks the envelope of a tss-lib message.
func (p *tssLibProtocol) parse(in inMsg) (*member, role, msgSpec, tsslib.ParsedMessage, error) {
	if len(in.payload) < 3 {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: payload too short", ErrMalformedMessage)
	}
	fromRole, toRole, wire := role(in.payload[0]), role(in.payload[1]), in.payload[2:]
	from := p.bySite[in.from][fromRole]
	if from == nil {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: sender has no role %d in this session", ErrMalformedMessage, fromRole)
	}
	if in.round == 0 || int(in.round) > len(p.specs) {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: round %d does not exist", ErrMalformedMessage, in.round)
	}
	spec := p.specs[in.round-1]
	if from.role != spec.from {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: round %d is not sent by the sender's committee", ErrMalformedMessage, in.round)
	}
	if spec.broadcast != in.broadcast {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: round %d message has the wrong delivery mode", ErrMalformedMessage, in.round)
	}
	if toRole > roleBoth || (!in.broadcast && toRole == roleBoth) {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: bad destination", ErrMalformedMessage)
	}
	if !in.broadcast && p.local[toRole] == nil {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: message for a role this party does not hold", ErrMalformedMessage)
	}
	parsed, err := parseWire(wire, from.id, in.broadcast)
	if err != nil {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if parsed.Type() != spec.name {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: round %d carries a %s", ErrMalformedMessage, in.round, shortType(parsed.Type()))
	}
	if err := checkFieldSizes(parsed); err != nil {
		return nil, 0, msgSpec{}, nil, err
	}
	if !parsed.ValidateBasic() {
		return nil, 0, msgSpec{}, nil, fmt.Errorf("%w: %s fails tss-lib's basic validation", ErrMalformedMessage, shortType(spec.name))
	}
	return from, toRole, spec, parsed, nil
}

// parseWire wraps tss-lib's parser, which can panic on hostile input.
func parseWire(wire []byte, from *tsslib.PartyID, broadcast bool) (msg tsslib.ParsedMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("unparsable message (%s)", trimPanic(r))
		}
	}()
	return tsslib.ParseWireMessage(wire, from, broadcast)
}

// accept validates the content of a message and hands it to the local
// parties it is for.
func (p *tssLibProtocol) accept(from *member, spec msgSpec, to role, parsed tsslib.ParsedMessage) error {
	if p.validator != nil {
		if err := p.validator.validate(from, parsed); err != nil {
			var ue *unattributedError
			if errors.As(err, &ue) {
				return fmt.Errorf("tss: %s round %d: %w", p.op, p.roundOf(spec.name), err)
			}
			return &CulpritError{Op: p.op, Parties: []PartyID{from.site}, Round: p.roundOf(spec.name), Reason: err}
		}
	}
	if p.delivered[spec.name] == nil {
		p.delivered[spec.name] = make(map[PartyID]bool)
	}
	p.delivered[spec.name][from.site] = true
	for _, r := range destinations(to) {
		party := p.local[r]
		if party == nil {
			continue
		}
		msg := parsed
		if err := p.call(func() *tsslib.Error { _, e := party.Update(msg); return e }); err != nil {
			return err
		}
	}
	return nil
}

func destinations(to role) []role {
	if to == roleBoth {
		return []role{roleOld, roleNew}
	}
	return []role{to}
}

// drain collects everything the local parties emitted, delivers messages
// between this site's own roles directly, and returns the rest.
func (p *tssLibProtocol) drain() ([]outMsg, error) {
	var outs []outMsg
	for {
		var msg tsslib.Message
		select {
		case msg = <-p.out:
		default:
			return outs, nil
		}
		fromMember := p.members[hex.EncodeToString(msg.GetFrom().Key)]
		if fromMember == nil || fromMember.site != p.self {
			return nil, fmt.Errorf("%w: tss-lib emitted a message from an unknown party", ErrProtocol)
		}
		rnd := p.roundOf(msg.Type())
		if rnd == 0 {
			return nil, fmt.Errorf("%w: tss-lib emitted an unexpected %s", ErrProtocol, shortType(msg.Type()))
		}
		if rnd > p.rnd {
			p.rnd = rnd
		}
		wire, routing, err := msg.WireBytes()
		if err != nil {
			return nil, fmt.Errorf("%w: encode %s: %v", ErrProtocol, shortType(msg.Type()), err)
		}
		if routing.IsBroadcast {
			to := roleMain
			if p.op == OpReshare {
				switch {
				case routing.IsToOldAndNewCommittees:
					to = roleBoth
				case routing.IsToOldCommittee:
					to = roleOld
				default:
					to = roleNew
				}
				// This site's other role may be a recipient.
				for _, r := range destinations(to) {
					if r != fromMember.role && p.local[r] != nil && p.addressed(routing.To, r) {
						if err := p.local2local(msg, r); err != nil {
							return nil, err
						}
					}
				}
			}
			outs = append(outs, outMsg{broadcast: true, round: rnd, payload: envelope(fromMember.role, to, wire)})
			continue
		}
		for _, dst := range routing.To {
			m := p.members[hex.EncodeToString(dst.Key)]
			if m == nil {
				return nil, fmt.Errorf("%w: tss-lib addressed an unknown party", ErrProtocol)
			}
			if m.site == p.self {
				if err := p.local2local(msg, m.role); err != nil {
					return nil, err
				}
				continue
			}
			outs = append(outs, outMsg{to: []PartyID{m.site}, round: rnd, payload: envelope(fromMember.role, m.role, wire)})
		}
	}
}

// addressed reports whether this site's party in role r is among to (an
// empty list addresses everyone).
func (p *tssLibProtocol) addressed(to []*tsslib.PartyID, r role) bool {
	self := p.bySite[p.self][r]
	if self == nil {
		return false
	}
	if len(to) == 0 {
		return true
	}
	for _, id := range to {
		if string(id.Key) == string(self.id.Key) {
			return true
		}
	}
	return false
}

// local2local hands a message from one of this site's parties to another
// of its parties (resharing with the site in both committees).
func (p *tssLibProtocol) local2local(msg tsslib.Message, to role) error {
	wire, routing, err := msg.WireBytes()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	parsed, err := tsslib.ParseWireMessage(wire, msg.GetFrom(), routing.IsBroadcast)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	party := p.local[to]
	return p.call(func() *tsslib.Error { _, e := party.Update(parsed); return e })
}

func envelope(from, to role, wire []byte) []byte {
	b := make([]byte, 0, 2+len(wire))
	b = append(b, byte(from), byte(to))
	return append(b, wire...)
}

func (p *tssLibProtocol) roundOf(typeName string) uint32 {
	for i, s := range p.specs {
		if s.name == typeName {
			return uint32(i + 1)
		}
	}
	return 0
}

// call runs a tss-lib entry point, turning its errors into ours and its
// panics into errors. After a panic the parties are not called again.
func (p *tssLibProtocol) call(f func() *tsslib.Error) (err error) {
	if p.broken != nil {
		return p.broken
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: tss %s: tss-lib failed (%s)", ErrProtocol, p.op, trimPanic(r))
			p.broken = err
		}
	}()
	terr := f()
	if terr == nil {
		return nil
	}
	return p.mapError(terr)
}

func (p *tssLibProtocol) mapError(terr *tsslib.Error) error {
	var culprits []PartyID
	for _, c := range terr.Culprits() {
		if c == nil {
			continue
		}
		// tss-lib names the local party when a check fails that cannot
		// tell who cheated (GG18 phase 5: "U doesn't equal T"); a party
		// never blames itself.
		if m := p.members[hex.EncodeToString(c.Key)]; m != nil && m.site != p.self && !slices.Contains(culprits, m.site) {
			culprits = append(culprits, m.site)
		}
	}
	reason := fmt.Errorf("%w: %v", ErrProtocol, terr.Cause())
	if len(culprits) == 0 {
		return fmt.Errorf("tss: %s round %d: %w", p.op, terr.Round(), reason)
	}
	slices.Sort(culprits)
	return &CulpritError{Op: p.op, Parties: culprits, Round: uint32(terr.Round()), Reason: reason}
}

func (p *tssLibProtocol) done() bool {
	if len(p.local) == 0 {
		return false
	}
	for r := range p.local {
		if !p.finished(r) {
			return false
		}
	}
	return true
}

func (p *tssLibProtocol) waitingFor() []PartyID {
	var out []PartyID
	for _, party := range p.local {
		if p.broken != nil {
			break
		}
		for _, id := range party.WaitingFor() {
			if m := p.members[hex.EncodeToString(id.Key)]; m != nil && m.site != p.self {
				out = append(out, m.site)
			}
		}
	}
	for _, h := range p.held {
		out = append(out, h.from.site)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *tssLibProtocol) round() uint32 { return p.rnd }

func (p *tssLibProtocol) broadcastRound(r uint32) (bool, bool) {
	if r == 0 || int(r) > len(p.specs) {
		return false, false
	}
	return p.specs[r-1].broadcast, true
}

// broadcasts reports whether site broadcasts in round r: it has the role
// that sends that round's message.
func (p *tssLibProtocol) broadcasts(site PartyID, r uint32) bool {
	if r == 0 || int(r) > len(p.specs) || !p.specs[r-1].broadcast {
		return false
	}
	return p.bySite[site][p.specs[r-1].from] != nil
}

func (p *tssLibProtocol) wipe() {
	if p.onWipe != nil {
		p.onWipe()
	}
}

func shortType(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '.' {
			return full[i+1:]
		}
	}
	return full
}

func trimPanic(r any) string {
	s := fmt.Sprint(r)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// wipeInt overwrites the words of a big.Int this package owns.
func wipeInt(x *big.Int) {
	if x == nil {
		return
	}
	w := x.Bits()
	for i := range w {
		w[i] = 0
	}
	x.SetInt64(0)
}

var errNotOnCurve = errors.New("point is not on the curve")
