package tss

// protocol is one party's side of a protocol run. A session drives it: it
// hands over inbound messages that passed the session's checks (known sender,
// not a duplicate, broadcast consistency confirmed by echo) and sends what it
// returns. Implementations are not safe for concurrent use; a session calls
// them from one goroutine.
type protocol interface {
	// start begins round 1 and returns its messages.
	start() ([]outMsg, error)
	// handle processes one inbound message and returns the messages it
	// causes (possibly several rounds' worth).
	handle(in inMsg) ([]outMsg, error)
	// done reports whether this party's part of the protocol has finished.
	done() bool
	// waitingFor lists the parties whose messages the current round lacks.
	waitingFor() []PartyID
	// round returns the protocol round this party is in.
	round() uint32
	// broadcastRound reports whether messages of round r are broadcasts;
	// ok is false when the protocol has no round r. The session checks it
	// before echoing, so a point-to-point message dressed as a broadcast is
	// blamed on its sender rather than reported as equivocation.
	broadcastRound(r uint32) (broadcast, ok bool)
	// wipe overwrites the protocol's secrets. It is called once, when the
	// session ends, whatever the outcome.
	wipe()
}

// outMsg is a message a protocol wants sent.
type outMsg struct {
	// to lists the recipients of a point-to-point message; a broadcast goes
	// to every other party of the session and leaves to empty.
	to        []PartyID
	broadcast bool
	round     uint32
	payload   []byte
}

// inMsg is an inbound message handed to a protocol.
type inMsg struct {
	from      PartyID
	broadcast bool
	round     uint32
	payload   []byte
}
