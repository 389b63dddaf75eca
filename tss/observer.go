package tss

import "time"

// Observer is told what an [Engine] does, for metrics (Config.Observer).
// Its methods run on the engine's goroutines: they must return quickly and
// must not call the Engine. Nothing passed to them is secret.
type Observer interface {
	// SessionEnded reports the end of a session this party took part in:
	// its operation, whether this party initiated it, how long it ran
	// here and its error, nil when it succeeded. On the initiator the
	// error includes the final checks of the results (a culprit named
	// there); a GG20 online or reconciliation answer that a participant
	// sends counts as a session of that participant.
	SessionEnded(op Operation, initiator bool, d time.Duration, err error)
	// RoundDone reports that this party left protocol round round of a
	// session of operation op after d: from entering the round to entering
	// the next one (or finishing the protocol). A round a session fails
	// in is not reported.
	RoundDone(op Operation, round uint32, d time.Duration)
	// Refused reports a proposal of party from that this party refused,
	// and the reason sent back.
	Refused(from PartyID, reason error)
}
