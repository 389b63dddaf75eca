package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// Presigner runs one GG20 presigning session for one party as a
// deterministic state machine: messages in, messages out, no goroutines left
// behind and no I/O. It is not safe for concurrent use; drive it from one
// goroutine. Rounds verify the proofs of different peers in parallel on
// short-lived goroutines that are all joined before the call returns.
//
// Errors from [Presigner.Handle] come in two kinds. A *[CulpritError], or any
// error wrapping [ErrInternal] or [ErrDeltaZero], ends the run: later calls
// return [ErrFinished]. [ErrDuplicate], [ErrWrongRound] and
// [ErrUnknownSender] reject only the one message and leave the run as it was.
//
// Every decision of the run depends only on which messages it holds, never
// on the order they came in, so that all signers, given the same broadcast
// messages, decide alike: a message of any round the run may still enter is
// buffered, and one of a round the run has skipped names its sender
// ([ErrUnexpectedMessage]) whether it arrives before or after the skip.
type Presigner struct {
	st     *setup
	state  runState
	round  int                     // the round whose messages are being collected
	passed uint16                  // bit r set: the run has collected round r
	rounds [RoundRevealS + 1]round // by number; nil for 0 and RoundOnline
	err    error
	result *Presignature

	sec secrets
	pub transcriptData

	// Complaints (complaint.go): the round whose proofs complaints in the
	// current round may dispute, and the findings on them.
	kept     *disputable
	findings []finding
}

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateDone
	stateFailed
	stateWiped
)

// secrets are this party's secret values for the run.
type secrets struct {
	k, gamma, rho, l, sigma *big.Int
	open                    [32]byte
	// Per peer j (indexed by signer index; the own entry stays nil).
	betaPrm, betaNonce []*big.Int // as Bob in MtA(k_j, γ_i)
	nuPrm, nuNonce     []*big.Int // as Bob in MtAwc(k_j, w_i)
	alphaPlain         []*big.Int // as Alice: Dec(c^γ_{ji}) as an integer
	muPlain            []*big.Int // as Alice: Dec(c^w_{ji}) as an integer
}

// transcriptData is the public data of the run, as broadcast.
type transcriptData struct {
	commit     [][32]byte
	c          []*big.Int
	cGamma, cW [][]*big.Int // [bob][alice]
	delta      []*big.Int
	deltaSum   *big.Int
	T          []*secp.Point
	Gamma      []*secp.Point
	R          *secp.Point
	r          *big.Int
	Rbar       []*secp.Point
	S          []*secp.Point
}

// NewPresigner validates cfg and returns a [Presigner] ready to
// [Presigner.Start]. It checks the keygen output (vector sizes, this party's
// share against its public share, Paillier and ring-Pedersen parameter sizes,
// the factors of its own keys), the signer set (sorted, members of the
// committee, includes this party) and that the signers' Lagrange-weighted
// public shares add up to the (tweaked) public key, which also catches a
// signer set below the threshold. Every error wraps [ErrConfig].
func NewPresigner(cfg Config) (*Presigner, error) {
	st, err := newSetup(cfg)
	if err != nil {
		return nil, err
	}
	n := st.n
	p := &Presigner{st: st}
	p.rounds = p.newRounds()
	p.sec.betaPrm, p.sec.betaNonce = make([]*big.Int, n), make([]*big.Int, n)
	p.sec.nuPrm, p.sec.nuNonce = make([]*big.Int, n), make([]*big.Int, n)
	p.sec.alphaPlain, p.sec.muPlain = make([]*big.Int, n), make([]*big.Int, n)
	p.pub.commit = make([][32]byte, n)
	p.pub.c = make([]*big.Int, n)
	p.pub.cGamma, p.pub.cW = make([][]*big.Int, n), make([][]*big.Int, n)
	for i := range p.pub.cGamma {
		p.pub.cGamma[i], p.pub.cW[i] = make([]*big.Int, n), make([]*big.Int, n)
	}
	p.pub.delta = make([]*big.Int, n)
	p.pub.T = make([]*secp.Point, n)
	p.pub.Gamma = make([]*secp.Point, n)
	p.pub.Rbar = make([]*secp.Point, n)
	p.pub.S = make([]*secp.Point, n)
	return p, nil
}

// newRounds returns the rounds of p's run, each with an empty inbox, by
// number: the round its message type names.
func (p *Presigner) newRounds() (rounds [RoundRevealS + 1]round) {
	n := p.st.n
	for _, rd := range []round{
		&round1{Presigner: p, inbox: newInbox[msg1](n)},
		&round2{Presigner: p, inbox: newInbox[msg2](n)},
		&round3{Presigner: p, inbox: newInbox[msg3](n)},
		&round4{Presigner: p, inbox: newInbox[msg4](n)},
		&round5{Presigner: p, inbox: newInbox[msg5](n)},
		&round6{Presigner: p, inbox: newInbox[msg6](n)},
		&roundRevealRbar{Presigner: p, inbox: newInbox[msgRevealRbar](n)},
		&roundRevealS{Presigner: p, inbox: newInbox[msgRevealS](n)},
	} {
		rounds[rd.number()] = rd
	}
	return rounds
}

// Index returns this party's signer index.
func (p *Presigner) Index() int { return p.st.self }

// String describes the run without revealing secrets.
func (p Presigner) String() string {
	if p.st == nil {
		return "gg20.Presigner{}"
	}
	return fmt.Sprintf("gg20.Presigner{session %x, signer %d of %d, round %d}", p.st.sid[:8], p.st.self, p.st.n, p.round)
}

// GoString is String, so that %#v does not print secrets either.
func (p Presigner) GoString() string { return p.String() }

// Start makes this party's round-1 message. It may be called once.
func (p *Presigner) Start() ([]Message, error) {
	if p.state != stateNew {
		return nil, ErrFinished
	}
	p.state = stateRunning
	p.round = 1
	out, err := p.safely(p.rounds[1].start)
	if err != nil {
		p.fail(err)
		return nil, err
	}
	return out, nil
}

// Handle takes one message from another signer. It validates and stores it;
// when the current round is complete it verifies the round, computes this
// party's next message(s) and returns them (several rounds' worth if later
// messages were already buffered). A message of the next round that arrives
// early is buffered. A complaint is checked as soon as the run holds the
// proofs it disputes; a round with complaints ends the run with the
// verdict once every signer not already proven to have cheated has sent
// its message for the round.
func (p *Presigner) Handle(m Message) ([]Message, error) {
	switch p.state {
	case stateNew:
		return nil, ErrNotStarted
	case stateRunning:
	default:
		if p.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFinished, p.err)
		}
		return nil, ErrFinished
	}
	n := p.st.n
	if m.From < 0 || m.From >= n || m.From == p.st.self || m.To != Broadcast {
		return nil, fmt.Errorf("%w: from %d to %d in a run of %d signers", ErrUnknownSender, m.From, m.To, n)
	}
	switch {
	case m.Round == p.round || p.mayEnter(m.Round):
	case !isRound(m.Round) || p.passed&(1<<m.Round) != 0:
		return nil, fmt.Errorf("%w: round %d message from signer %d while in round %d", ErrWrongRound, m.Round, m.From, p.round)
	default:
		f := newFaults(m.Round)
		f.add(m.From, fmt.Errorf("%w: sent a round %d message, but the run skipped round %d", ErrUnexpectedMessage, m.Round, m.Round))
		ce := f.err()
		p.fail(ce)
		return nil, ce
	}
	rd := p.rounds[m.Round]
	if rd.has(m.From) {
		return nil, fmt.Errorf("%w: round %d from signer %d", ErrDuplicate, m.Round, m.From)
	}
	if err := rd.put(m.From, m.Payload); err != nil {
		f := newFaults(m.Round)
		f.add(m.From, err)
		ce := f.err()
		p.fail(ce)
		return nil, ce
	}

	var out []Message
	for p.state == stateRunning {
		if err := p.judgeComplaints(); err != nil {
			p.fail(err)
			return nil, err
		}
		if !p.ready() {
			break
		}
		msgs, err := p.safely(p.process)
		if err != nil {
			p.fail(err)
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// isRound reports whether r is a presigning round: 1 to 6 or a blame
// reveal.
func isRound(r int) bool {
	return (r >= 1 && r <= 6) || r == RoundRevealRbar || r == RoundRevealS
}

// mayEnter reports whether the run, now collecting round p.round, may
// still enter round r later: any later one of rounds 1–6; the type-5
// reveal until round 5 (it follows round 4 or 5); the type-7 reveal until
// round 6. A message of such a round is buffered. That is at most one
// message per signer and round, since a second one is refused as a
// duplicate.
func (p *Presigner) mayEnter(r int) bool {
	switch {
	case r >= 1 && r <= 6:
		return r > p.round && p.round <= 6
	case r == RoundRevealRbar:
		return p.round <= 5
	case r == RoundRevealS:
		return p.round <= 6
	}
	return false
}

// ready reports whether the current round can be decided: every other
// signer's message is in, except from signers a complaint has proven to
// have cheated (the round then ends with the verdict anyway).
func (p *Presigner) ready() bool {
	return len(p.Waiting()) == 0
}

// process ends the current (complete) round — with the verdict if it
// holds complaints, else with the round's verify and store steps — and
// enters the next one: it returns this party's message of that round, or a
// complaint in its place.
func (p *Presigner) process() ([]Message, error) {
	if p.disputed() {
		return nil, p.verdict()
	}
	rd := p.rounds[p.round]
	p.kept = nil // complaints could dispute the previous round only until now
	next, failed, err := rd.finish()
	if err != nil {
		return nil, err
	}
	prev := p.round
	p.passed |= 1 << prev
	rd.clear()
	if next == 0 { // finished
		p.state = stateDone
		p.round = 0
		p.wipeSecrets()
		p.wipeKeyMaterial()
		return nil, p.rejectLeftovers(prev)
	}
	p.round = next
	var out []Message
	if len(failed) > 0 {
		out = p.complain(prev, next, failed)
	} else if out, err = p.rounds[next].start(); err != nil {
		return nil, err
	}
	return out, p.rejectLeftovers(prev)
}

// rejectLeftovers fails the run if a peer sent a message for a round the
// run did not enter (a blame reveal although every check passed here, or a
// normal message although a check failed). With an echo broadcast all
// honest parties see the same messages, so such a peer deviated.
func (p *Presigner) rejectLeftovers(prev int) error {
	f := newFaults(prev)
	for r, rd := range p.rounds {
		if rd == nil || (r == p.round && p.state == stateRunning) {
			continue
		}
		for _, j := range rd.senders() {
			f.add(j, fmt.Errorf("%w: sent a round %d message, but the run went from round %d to %d", ErrUnexpectedMessage, r, prev, p.round))
		}
	}
	return f.err()
}

// Done reports whether presigning completed successfully.
func (p *Presigner) Done() bool { return p.state == stateDone }

// Waiting returns the signer indices whose message for the current round
// has not arrived, ascending; nil when the run is not collecting messages.
// A signer that a complaint has proven to have cheated is not waited for.
func (p *Presigner) Waiting() []int {
	if p.state != stateRunning {
		return nil
	}
	rd := p.rounds[p.round]
	proven := p.proven()
	var out []int
	for j := 0; j < p.st.n; j++ {
		if j != p.st.self && !rd.has(j) && !proven[j] {
			out = append(out, j)
		}
	}
	return out
}

// Presignature returns the result once [Presigner.Done] reports true. The
// caller owns it (and must wipe it); the Presigner keeps no copy of its
// secrets, so Presignature can be called only once.
func (p *Presigner) Presignature() (*Presignature, error) {
	switch {
	case p.state == stateDone && p.result != nil:
		ps := p.result
		p.result = nil
		return ps, nil
	case p.state == stateDone:
		return nil, fmt.Errorf("%w: the presignature was already taken", ErrFinished)
	case p.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrFinished, p.err)
	case p.state == stateWiped:
		return nil, ErrFinished
	}
	return nil, ErrNotDone
}

// Wipe overwrites every secret the Presigner holds (kᵢ, γᵢ, σᵢ, lᵢ, wᵢ,
// the Paillier nonce of Enc(kᵢ), the MtA masks and plaintexts, the CRT
// factors of its keys, and an untaken presignature) and ends the run. A run
// that completes or fails wipes all of these itself, except an untaken
// presignature; call Wipe for a run that is abandoned midway.
func (p *Presigner) Wipe() {
	p.wipeSecrets()
	p.wipeKeyMaterial()
	if p.result != nil {
		p.result.Wipe()
		p.result = nil
	}
	p.state = stateWiped
	for _, rd := range p.rounds {
		if rd != nil {
			rd.clear()
		}
	}
	p.kept, p.findings = nil, nil
}

// wipeKeyMaterial overwrites wᵢ and the CRT factors of the own keys.
func (p *Presigner) wipeKeyMaterial() {
	arith.WipeInt(p.st.w)
	p.st.sk.Wipe()
	p.st.rp[p.st.self].Wipe()
}

func (p *Presigner) wipeSecrets() {
	s := &p.sec
	for _, v := range []*big.Int{s.k, s.gamma, s.rho, s.l, s.sigma} {
		arith.WipeInt(v)
	}
	for _, vs := range [][]*big.Int{s.betaPrm, s.betaNonce, s.nuPrm, s.nuNonce, s.alphaPlain, s.muPlain} {
		for _, v := range vs {
			arith.WipeInt(v)
		}
	}
	s.open = [32]byte{}
}

func (p *Presigner) fail(err error) {
	if p.state == stateRunning || p.state == stateNew {
		p.state = stateFailed
		p.err = err
		p.wipeSecrets()
		p.wipeKeyMaterial()
	}
}

// safely runs f and turns a panic (a bug; inputs are validated before they
// reach the arithmetic) into an ErrInternal error.
func (p *Presigner) safely(f func() ([]Message, error)) (out []Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: round %d: %v", ErrInternal, p.round, r)
		}
	}()
	return f()
}

// broadcast wraps this party's message of the round m names.
func (p *Presigner) broadcast(m roundMessage) []Message {
	return []Message{{From: p.st.self, To: Broadcast, Round: m.round(), Payload: m.encode()}}
}

// randomScalar returns a uniform element of [1, q).
func (p *Presigner) randomScalar() (*big.Int, error) {
	for {
		k, err := arith.RandomInt(p.st.rand, secp.Q)
		if err != nil {
			return nil, fmt.Errorf("%w: random source: %v", ErrInternal, err)
		}
		if k.Sign() != 0 {
			return k, nil
		}
	}
}
