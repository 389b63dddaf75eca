package tss

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// MaxPayloadSize is the largest protocol payload a party accepts in one
// message. The largest tss-lib message (resharing round 2, two DLN proofs of
// 128 iterations) is well under 200 KiB; a batch of online GG20 shares stays
// under this bound by construction. Networks must refuse larger payloads
// before buffering them.
const MaxPayloadSize = 2 << 20

// SessionID names one protocol run. It is the SHA-256 digest described in
// DESIGN.md: a domain tag, the operation, the key ID, the sorted party set,
// the payload being signed and the initiator's 32 random bytes. Every message
// of a run carries it.
type SessionID [32]byte

// String returns the session ID as lowercase hex.
func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// Short returns the first 8 bytes of the session ID as hex, for log lines.
func (s SessionID) Short() string { return hex.EncodeToString(s[:8]) }

// MarshalText encodes the session ID as lowercase hex (also in JSON).
func (s SessionID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a session ID from hex.
func (s *SessionID) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return errors.New("tss: session ID must be 64 hex characters")
	}
	_, err := hex.Decode(s[:], b)
	return err
}

// MessageType says what a Message carries.
type MessageType uint8

// Message types. The numeric values are part of the wire format.
const (
	// MsgPropose carries a Proposal from the initiator to every other party.
	MsgPropose MessageType = 1
	// MsgAccept is a party's answer that it checked a proposal and joins.
	MsgAccept MessageType = 2
	// MsgRefuse is a party's answer that it will not join; the payload is
	// the reason in UTF-8.
	MsgRefuse MessageType = 3
	// MsgStart tells the parties that everyone accepted and round 1 begins.
	MsgStart MessageType = 4
	// MsgProtocol carries one protocol round message.
	MsgProtocol MessageType = 5
	// MsgEcho carries the hash of a broadcast message as its recipient saw
	// it, so that the other recipients can detect equivocation.
	MsgEcho MessageType = 6
	// MsgAbort tells the other parties that the sender gave up on the
	// session; the payload is the reason in UTF-8.
	MsgAbort MessageType = 7
	// MsgResult carries a party's contribution to an operation's result
	// (for example its share of an online signature) to the initiator.
	MsgResult MessageType = 8
	// MsgCommit tells parties that a two-phase operation (resharing) is
	// confirmed and its new state may become active.
	MsgCommit MessageType = 9
)

// String returns the message type's name.
func (t MessageType) String() string {
	switch t {
	case MsgPropose:
		return "propose"
	case MsgAccept:
		return "accept"
	case MsgRefuse:
		return "refuse"
	case MsgStart:
		return "start"
	case MsgProtocol:
		return "protocol"
	case MsgEcho:
		return "echo"
	case MsgAbort:
		return "abort"
	case MsgResult:
		return "result"
	case MsgCommit:
		return "commit"
	default:
		return "unknown"
	}
}

// Valid reports whether t is one of the defined message types.
func (t MessageType) Valid() bool { return t >= MsgPropose && t <= MsgCommit }

// Message is one message between parties of a session.
//
// A Network delivers a Message to every party in To. On receipt, From must be
// the authenticated identity of the sender as the network established it (for
// libp2p, the peer ID of the secured connection), never a value the sender
// merely claimed.
type Message struct {
	// Session is the session the message belongs to.
	Session SessionID
	// Type says what the message carries.
	Type MessageType
	// From is the sending party.
	From PartyID
	// To lists the recipients. It is never empty.
	To []PartyID
	// Broadcast is true when the same payload is sent to every other party of
	// the session; recipients then check by echo that all of them saw the same
	// payload before they use it.
	Broadcast bool
	// Round is the protocol round the message belongs to, starting at 1.
	Round uint32
	// Payload is the message body; at most MaxPayloadSize bytes.
	Payload []byte
}

// Hash returns a digest of everything in m except To, the value recipients
// of a broadcast echo to each other.
func (m *Message) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte("keyquorum/message-hash/v1"))
	h.Write(m.Session[:])
	h.Write([]byte{byte(m.Type)})
	writeLenPrefixed(h, []byte(m.From))
	var b [5]byte
	b[0] = 0
	if m.Broadcast {
		b[0] = 1
	}
	b[1], b[2], b[3], b[4] = byte(m.Round>>24), byte(m.Round>>16), byte(m.Round>>8), byte(m.Round)
	h.Write(b[:])
	writeLenPrefixed(h, m.Payload)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Validate checks the parts of m that do not depend on any session: a known
// type, a sender, at least one recipient and the payload size limit.
func (m *Message) Validate() error {
	switch {
	case m == nil:
		return errors.New("tss: nil message")
	case !m.Type.Valid():
		return errors.New("tss: message of unknown type")
	case m.From == "":
		return errors.New("tss: message without a sender")
	case len(m.To) == 0:
		return errors.New("tss: message without recipients")
	case len(m.Payload) > MaxPayloadSize:
		return ErrMessageTooLarge
	}
	return nil
}

// Network carries messages between the parties of a committee. The tss
// package defines it; package transport implements it over libp2p and in
// memory.
//
// Implementations must be safe for concurrent use, must authenticate the
// sender of every received message, must refuse payloads over MaxPayloadSize,
// and must apply backpressure rather than queue without bound.
type Network interface {
	// Self returns the identity this network speaks as.
	Self() PartyID
	// Send delivers msg to every party in msg.To. It returns when the message
	// has been handed to the link of every recipient or ctx is done. A
	// recipient that cannot be reached is reported in the error as an
	// *UnreachableError.
	Send(ctx context.Context, msg *Message) error
	// Receive returns the next message addressed to Self. It blocks until a
	// message arrives or ctx is done.
	Receive(ctx context.Context) (*Message, error)
}

// UnreachableError reports recipients a Network could not deliver to.
type UnreachableError struct {
	// Parties are the recipients that did not get the message.
	Parties []PartyID
	// Err is the underlying cause, if any.
	Err error
}

func (e *UnreachableError) Error() string {
	s := "tss: could not reach " + joinParties(e.Parties)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *UnreachableError) Unwrap() error { return e.Err }
