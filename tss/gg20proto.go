package tss

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// gg20Protocol runs a batch of GG20 presigning instances in lockstep within
// one session: every message on the wire is a broadcast bundle that carries
// each instance's message for one round. One session therefore produces
// many presignatures with the session overhead (proposal, echo) paid once.
//
// Bundle format (all integers big-endian):
//
//	count  uint16                  number of entries
//	count × {
//	  instance uint16              index of the presigning instance
//	  length   uint32
//	  payload  [length]byte        the gg20 message payload
//	}
type gg20Protocol struct {
	signers   []PartyID // sorted; the gg20 signer index is the position here
	self      int
	instances []*gg20.Presigner
	rnd       uint32
	// pending holds this party's outgoing messages per round until every
	// running instance has produced its message for that round.
	pending map[int]map[int][]byte
}

// maxBatch bounds the presignatures one session makes, so a round's bundle
// stays well under MaxPayloadSize for committees of up to a few dozen signers.
const maxBatch = 32

func newGG20Protocol(signers []PartyID, self int, instances []*gg20.Presigner) *gg20Protocol {
	return &gg20Protocol{signers: signers, self: self, instances: instances, pending: make(map[int]map[int][]byte)}
}

func (p *gg20Protocol) start() ([]outMsg, error) {
	for i, in := range p.instances {
		msgs, err := in.Start()
		if err != nil {
			return nil, p.mapErr(err)
		}
		if err := p.queue(i, msgs); err != nil {
			return nil, err
		}
	}
	return p.flush()
}

func (p *gg20Protocol) handle(m inMsg) ([]outMsg, error) {
	from := slices.Index(p.signers, m.from)
	if from < 0 || from == p.self {
		return nil, &CulpritError{Op: OpPresign, Parties: []PartyID{m.from}, Round: m.round, Reason: fmt.Errorf("%w: not a signer", ErrMalformedMessage)}
	}
	entries, err := decodeBundle(m.payload, len(p.instances))
	if err != nil {
		return nil, &CulpritError{Op: OpPresign, Parties: []PartyID{m.from}, Round: m.round, Reason: transcriptVerdict{fmt.Errorf("%w: %v", ErrMalformedMessage, err)}}
	}
	for _, e := range entries {
		msgs, err := p.instances[e.instance].Handle(gg20.Message{From: from, To: gg20.Broadcast, Round: int(m.round), Payload: e.payload})
		if err != nil {
			return nil, p.mapErr(err)
		}
		if err := p.queue(e.instance, msgs); err != nil {
			return nil, err
		}
	}
	return p.flush()
}

// queue records an instance's outgoing messages by round.
func (p *gg20Protocol) queue(instance int, msgs []gg20.Message) error {
	for _, m := range msgs {
		if m.To != gg20.Broadcast {
			return fmt.Errorf("%w: gg20 emitted a point-to-point message", ErrProtocol)
		}
		if p.pending[m.Round] == nil {
			p.pending[m.Round] = make(map[int][]byte)
		}
		if _, dup := p.pending[m.Round][instance]; dup {
			return fmt.Errorf("%w: gg20 emitted two messages for round %d", ErrProtocol, m.Round)
		}
		p.pending[m.Round][instance] = m.Payload
	}
	return nil
}

// flush sends the bundle of every round for which each instance that is
// still running has produced its message. Blame rounds (which only some
// instances may enter) go out as soon as they exist.
func (p *gg20Protocol) flush() ([]outMsg, error) {
	var outs []outMsg
	rounds := make([]int, 0, len(p.pending))
	for r := range p.pending {
		rounds = append(rounds, r)
	}
	slices.Sort(rounds)
	for _, r := range rounds {
		got := p.pending[r]
		if r <= 6 && len(got) < len(p.instances) {
			continue
		}
		payload, err := encodeBundle(got)
		if err != nil {
			return nil, err
		}
		if len(payload) > MaxPayloadSize {
			return nil, fmt.Errorf("%w: round %d bundle of %d bytes", ErrMessageTooLarge, r, len(payload))
		}
		outs = append(outs, outMsg{broadcast: true, round: uint32(r), payload: payload})
		delete(p.pending, r)
		if uint32(r) > p.rnd {
			p.rnd = uint32(r)
		}
	}
	return outs, nil
}

// mapErr turns a gg20 error into the session's. A *gg20.CulpritError is a
// verdict on broadcast messages only, which every honest signer receives
// alike and judges alike (including complaints about the proofs of rounds
// 1, 2 and 5): it is marked so that the session sends no abort notice,
// which could make another honest signer blame this one before it reaches
// the same verdict itself.
func (p *gg20Protocol) mapErr(err error) error {
	var ce *gg20.CulpritError
	if errors.As(err, &ce) {
		var parties []PartyID
		for _, i := range ce.Culprits {
			if i >= 0 && i < len(p.signers) {
				parties = append(parties, p.signers[i])
			}
		}
		slices.Sort(parties)
		return &CulpritError{Op: OpPresign, Parties: parties, Round: uint32(ce.Round), Reason: transcriptVerdict{err}}
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}

// errTranscriptVerdict marks a protocol error that every honest party
// reaches by itself from the same echo-broadcast messages (a culprit named
// by a check all parties make). A session that ends with it sends no abort
// notice (session.run): the notice could reach another honest party before
// the last message it needs for the same verdict, which would then blame
// the notifier instead of the culprit.
var errTranscriptVerdict = errors.New("tss: verdict reached from broadcast messages")

// transcriptVerdict wraps the reason of a verdict that every honest party
// reaches from the broadcast transcript; errors.Is matches
// errTranscriptVerdict, and the text and chain are the wrapped error's.
type transcriptVerdict struct{ error }

func (v transcriptVerdict) Unwrap() error { return v.error }

func (v transcriptVerdict) Is(target error) bool { return target == errTranscriptVerdict }

func (p *gg20Protocol) done() bool {
	for _, in := range p.instances {
		if !in.Done() {
			return false
		}
	}
	return true
}

func (p *gg20Protocol) waitingFor() []PartyID {
	var out []PartyID
	for _, in := range p.instances {
		for _, i := range in.Waiting() {
			if i >= 0 && i < len(p.signers) {
				out = append(out, p.signers[i])
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *gg20Protocol) round() uint32 { return p.rnd }

func (p *gg20Protocol) broadcastRound(r uint32) (bool, bool) {
	switch {
	case r >= 1 && r <= 6, r == gg20.RoundRevealRbar, r == gg20.RoundRevealS:
		return true, true
	}
	return false, false
}

func (p *gg20Protocol) wipe() {
	for _, in := range p.instances {
		in.Wipe()
	}
}

type bundleEntry struct {
	instance int
	payload  []byte
}

func encodeBundle(entries map[int][]byte) ([]byte, error) {
	idx := make([]int, 0, len(entries))
	size := 2
	for i, b := range entries {
		idx = append(idx, i)
		size += 6 + len(b)
	}
	slices.Sort(idx)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint16(out, uint16(len(idx)))
	for _, i := range idx {
		out = binary.BigEndian.AppendUint16(out, uint16(i))
		out = binary.BigEndian.AppendUint32(out, uint32(len(entries[i])))
		out = append(out, entries[i]...)
	}
	return out, nil
}

func decodeBundle(b []byte, instances int) ([]bundleEntry, error) {
	if len(b) < 2 {
		return nil, errors.New("short bundle")
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 || n > instances {
		return nil, fmt.Errorf("bundle of %d entries for %d instances", n, instances)
	}
	b = b[2:]
	out := make([]bundleEntry, 0, n)
	seen := make(map[int]bool, n)
	for k := 0; k < n; k++ {
		if len(b) < 6 {
			return nil, errors.New("truncated bundle")
		}
		i := int(binary.BigEndian.Uint16(b))
		l := binary.BigEndian.Uint32(b[2:])
		b = b[6:]
		if i >= instances || seen[i] {
			return nil, fmt.Errorf("bundle entry for instance %d", i)
		}
		if uint64(l) > uint64(len(b)) {
			return nil, errors.New("truncated bundle")
		}
		seen[i] = true
		out = append(out, bundleEntry{instance: i, payload: b[:l]})
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after bundle")
	}
	return out, nil
}
