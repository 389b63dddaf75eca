package gg20

import "slices"

// round is one presigning round as this party runs it: rounds 1 to 6
// (round1.go … round6.go) and the blame reveals (blame.go). Each is a type
// with the round's inbox, which collects the other signers' messages as
// they arrive, and these steps:
//
//	start   make this party's message of the round
//	verify  make every check this party makes on the round's messages, for
//	        all senders at once and in parallel; change no state, and
//	        return what the round accepted
//	store   put what was accepted into the run's state and transcript
//
// The Presigner calls start when the run enters the round (unless this
// party sends a complaint in place of its message), and finish (verify,
// then store) once the inbox holds every message the round waits for; then
// it enters the round finish names. So every check runs before
// anything from a message enters the state or the transcript, and a
// message that fails one leaves no trace there: the run ends with a
// *CulpritError. The exception is a proof that only its designated
// verifier checks (rounds 1, 2 and 5): when one addressed to this party
// fails, this party accuses its prover in a complaint, and the prover's
// message is stored with the others as the evidence the next round's
// verdict rests on; that verdict ends the run (complaint.go).
type round interface {
	// number is the round's number, as in Message.Round: the round its
	// message type names.
	number() int
	// put decodes a message from signer from into the inbox.
	put(from int, payload []byte) error
	// has reports whether the inbox holds signer j's message or complaint.
	has(j int) bool
	// complaint returns signer j's complaint in place of its message, or
	// nil.
	complaint(j int) *msgComplaint
	// senders returns the signers whose message or complaint the inbox
	// holds, ascending.
	senders() []int
	// clear empties the inbox.
	clear()

	// start returns this party's message of the round.
	start() ([]Message, error)
	// finish verifies the messages in the inbox and then stores what the
	// round accepted. It returns the round the run enters next (0 when the
	// presignature is complete) and the provers whose proofs addressed to
	// this party failed its check, whom this party accuses in a complaint
	// in place of its message of the next round. An error ends the run.
	finish() (next int, failed map[int]error, err error)
}

// inbox holds the messages of one round that arrived but are not yet
// verified, by sender: the sender's message of the round (of type M) or a
// complaint in its place. Arrival only decodes a message, which checks its
// structure; the round's verify step checks the rest. What an inbox holds
// is not part of the run's state.
type inbox[M any, PM msgPtr[M]] struct {
	msgs       []PM
	complaints []*msgComplaint
}

func newInbox[M any, PM msgPtr[M]](n int) inbox[M, PM] {
	return inbox[M, PM]{msgs: make([]PM, n), complaints: make([]*msgComplaint, n)}
}

// number returns the round of message type M.
func (b *inbox[M, PM]) number() int {
	var m PM
	return m.round()
}

func (b *inbox[M, PM]) put(from int, payload []byte) error {
	m, c, err := decodeMessage[M, PM](payload, len(b.msgs), from)
	if err != nil {
		return err
	}
	b.msgs[from], b.complaints[from] = m, c
	return nil
}

func (b *inbox[M, PM]) has(j int) bool { return b.msgs[j] != nil || b.complaints[j] != nil }

func (b *inbox[M, PM]) complaint(j int) *msgComplaint { return b.complaints[j] }

func (b *inbox[M, PM]) senders() []int {
	var out []int
	for j := range b.msgs {
		if b.has(j) {
			out = append(out, j)
		}
	}
	return out
}

func (b *inbox[M, PM]) clear() {
	clear(b.msgs)
	clear(b.complaints)
}

// received returns a copy of the messages in the inbox, by sender.
func (b *inbox[M, PM]) received() []PM { return slices.Clone(b.msgs) }
