package tss

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrMessageTooLarge is returned for a payload over MaxPayloadSize.
	ErrMessageTooLarge = errors.New("tss: message payload exceeds MaxPayloadSize")
	// ErrUnknownKey means this party holds no share of the requested key.
	ErrUnknownKey = errors.New("tss: unknown key")
	// ErrCorruptShare means a stored share record does not decode or does
	// not match itself: restore the store from a backup.
	ErrCorruptShare = errors.New("tss: stored share is damaged")
	// ErrNotInCommittee means a party named in a request is not in the key's
	// committee, or this party is not in the session.
	ErrNotInCommittee = errors.New("tss: party not in committee")
	// ErrBadRequest means a request is malformed (wrong digest length, too
	// few signers, bad threshold, bad derivation path...).
	ErrBadRequest = errors.New("tss: bad request")
	// ErrInvalidSignature means a combined signature did not verify under the
	// key; it is never returned to the caller as a signature.
	ErrInvalidSignature = errors.New("tss: signature does not verify")
	// ErrProtocol wraps a protocol failure reported by a party's own
	// computation (a failed proof check, an inconsistent value).
	ErrProtocol = errors.New("tss: protocol failure")
	// ErrMalformedMessage means an inbound message failed validation before
	// it reached the protocol.
	ErrMalformedMessage = errors.New("tss: malformed message")
	// ErrEngineClosed means the engine is not running.
	ErrEngineClosed = errors.New("tss: engine is not running")
	// ErrBusy means the engine already runs its maximum number of sessions.
	ErrBusy = errors.New("tss: too many concurrent sessions")
	// ErrNoPreParams means keygen found no Paillier pre-parameters ready.
	ErrNoPreParams = errors.New("tss: no pre-parameters available")
	// ErrPresignatureUsed means a presignature was already consumed (used,
	// burnt by an aborted round, or discarded); it is never used twice.
	ErrPresignatureUsed = errors.New("tss: presignature already used")
	// ErrNotYourPresignature means an online signing session named a
	// presignature of another initiator's pool: only the signer that made
	// a presignature may spend it (see PoolSpec). Nothing was consumed.
	ErrNotYourPresignature = errors.New("tss: presignature belongs to another initiator")
	// ErrNoPresignature means no ready presignature matches the request.
	ErrNoPresignature = errors.New("tss: no presignature available")
	// ErrNoLedger means the engine has no Ledger, which GG20 presignatures
	// need (see Config.Ledger).
	ErrNoLedger = errors.New("tss: no presignature ledger")
	// ErrPolicy means a party's Policy refused the session.
	ErrPolicy = errors.New("tss: refused by policy")
	// ErrNotRecorded means a party consumed presignatures but its
	// Config.Presignatures hook could not record their use (for example
	// its audit log cannot append), so it sent no signature share: the
	// presignatures are used up and no signature came of them.
	ErrNotRecorded = errors.New("tss: presignature use not recorded")
)

// refusalCodes name, on the wire, the sentinel a refusal stems from, so the
// initiator's *RefusedError unwraps to it.
var refusalCodes = []struct {
	code string
	err  error
}{
	{"unknown_key", ErrUnknownKey},
	{"not_in_committee", ErrNotInCommittee},
	{"policy", ErrPolicy},
	{"not_recorded", ErrNotRecorded},
	{"no_preparams", ErrNoPreParams},
	{"no_presignature", ErrNoPresignature},
	{"presignature_used", ErrPresignatureUsed},
	{"not_your_presignature", ErrNotYourPresignature},
	{"busy", ErrBusy},
	{"bad_request", ErrBadRequest},
}

func refusalCode(err error) string {
	for _, c := range refusalCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// RoundTimeoutError reports a round that did not complete in time.
type RoundTimeoutError struct {
	// Op is the operation of the session.
	Op Operation
	// Session is the session that timed out.
	Session SessionID
	// Round is the protocol round that was waiting (0 while joining).
	Round uint32
	// Parties are the parties whose messages had not arrived.
	Parties []PartyID
	// After is how long the session waited without progress.
	After time.Duration
}

func (e *RoundTimeoutError) Error() string {
	stage := fmt.Sprintf("round %d", e.Round)
	if e.Round == 0 {
		stage = "joining"
	}
	return fmt.Sprintf("tss: %s session %s timed out after %s in %s, waiting for %s; check that those sites are running and reachable",
		e.Op, e.Session.Short(), e.After, stage, joinParties(e.Parties))
}

// CulpritError reports parties that provably misbehaved: a failed proof, an
// inconsistent value, a malformed message.
type CulpritError struct {
	// Op is the operation of the session.
	Op Operation
	// Parties are the culprits.
	Parties []PartyID
	// Round is the round in which the fault was detected.
	Round uint32
	// Reason describes the fault; it wraps a sentinel when there is one.
	Reason error
}

func (e *CulpritError) Error() string {
	return fmt.Sprintf("tss: %s aborted in round %d: %v; blame %s", e.Op, e.Round, e.Reason, joinParties(e.Parties))
}

// Unwrap returns the reason.
func (e *CulpritError) Unwrap() error { return e.Reason }

// RefusedError reports a party that declined to join a proposed session.
// When the party named the kind of refusal, errors.Is matches the
// corresponding sentinel (ErrUnknownKey, ErrPolicy, ErrNoPresignature, ...):
// that is the refusing party's own account.
type RefusedError struct {
	// Party is the party that refused.
	Party PartyID
	// Reason is the reason it gave.
	Reason string
	// Code names the kind of refusal ("unknown_key", "policy", ...), or is
	// empty.
	Code string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("tss: party %s refused to join: %s", e.Party, e.Reason)
}

// Unwrap returns the sentinel error named by Code, if any.
func (e *RefusedError) Unwrap() error {
	for _, c := range refusalCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

// AbortedError reports a session that another party aborted.
type AbortedError struct {
	// Party is the party that aborted.
	Party PartyID
	// Reason is the reason it gave.
	Reason string
	// Waiting lists the parties this party itself was still waiting for
	// when the abort arrived; when the aborting party blames a timeout, the
	// party that stalled the session is usually here.
	Waiting []PartyID
}

func (e *AbortedError) Error() string {
	s := fmt.Sprintf("tss: party %s aborted the session: %s", e.Party, e.Reason)
	if len(e.Waiting) > 0 {
		s += fmt.Sprintf(" (this party was waiting for %s)", joinParties(e.Waiting))
	}
	return s
}

// EquivocationError reports a broadcast whose recipients saw different
// payloads. With authenticated but unsigned channels the recipients cannot
// prove which of the two lied, so both are named.
type EquivocationError struct {
	// Sender is the party whose broadcast differs between recipients.
	Sender PartyID
	// Reporter is the recipient whose echo disagreed with ours.
	Reporter PartyID
	// Round is the round of the broadcast.
	Round uint32
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("tss: broadcast of %s in round %d differs from what %s received: %s equivocated or %s lied about it",
		e.Sender, e.Round, e.Reporter, e.Sender, e.Reporter)
}
