package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/keyquorum/keyquorum/tss"
)

// Size limits of the wire format (FORMAT.md).
const (
	// MaxHeaderSize bounds everything in an envelope except the payload.
	MaxHeaderSize = 64 << 10
	// MaxEnvelopeSize is the largest envelope a receiver reads: a
	// tss.MaxPayloadSize payload plus MaxHeaderSize.
	MaxEnvelopeSize = tss.MaxPayloadSize + MaxHeaderSize
	// MaxRecipients is the largest number of entries in an envelope's To
	// list.
	MaxRecipients = 256
	// EnvelopeVersion is the only envelope version this package speaks.
	EnvelopeVersion = 1
)

// Field numbers of the envelope (FORMAT.md). They never change meaning.
const (
	fieldVersion   protowire.Number = 1
	fieldSession   protowire.Number = 2
	fieldType      protowire.Number = 3
	fieldFrom      protowire.Number = 4
	fieldTo        protowire.Number = 5
	fieldBroadcast protowire.Number = 6
	fieldRound     protowire.Number = 7
	fieldPayload   protowire.Number = 8
)

// encodeFrame returns msg as one frame: the varint length of the envelope
// followed by the envelope. It checks what the receiver will check, so a
// message this party could not have accepted is never sent.
func encodeFrame(msg *tss.Message) ([]byte, error) {
	if err := checkMessage(msg); err != nil {
		return nil, err
	}
	size := envelopeSize(msg)
	if size > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEnvelopeTooLarge, size)
	}
	b := make([]byte, 0, protowire.SizeVarint(uint64(size))+size)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendEnvelope(b, msg)
	return b, nil
}

// checkMessage applies the rules of FORMAT.md to a message before it is
// encoded.
func checkMessage(msg *tss.Message) error {
	if msg == nil {
		return fmt.Errorf("%w: nil message", ErrMalformedEnvelope)
	}
	if len(msg.Payload) > tss.MaxPayloadSize {
		return fmt.Errorf("%w: payload of %d bytes: %w", ErrEnvelopeTooLarge, len(msg.Payload), tss.ErrMessageTooLarge)
	}
	if !msg.Type.Valid() {
		return fmt.Errorf("%w: message type %d is not defined", ErrMalformedEnvelope, msg.Type)
	}
	if err := msg.From.Validate(); err != nil {
		return fmt.Errorf("%w: sender: %w", ErrMalformedEnvelope, err)
	}
	if len(msg.To) == 0 || len(msg.To) > MaxRecipients {
		return fmt.Errorf("%w: %d recipients, want 1..%d", ErrMalformedEnvelope, len(msg.To), MaxRecipients)
	}
	for _, to := range msg.To {
		if err := to.Validate(); err != nil {
			return fmt.Errorf("%w: recipient: %w", ErrMalformedEnvelope, err)
		}
	}
	return nil
}

func envelopeSize(msg *tss.Message) int {
	n := protowire.SizeTag(fieldVersion) + protowire.SizeVarint(EnvelopeVersion)
	n += protowire.SizeTag(fieldSession) + protowire.SizeBytes(len(msg.Session))
	n += protowire.SizeTag(fieldType) + protowire.SizeVarint(uint64(msg.Type))
	n += protowire.SizeTag(fieldFrom) + protowire.SizeBytes(len(msg.From))
	for _, to := range msg.To {
		n += protowire.SizeTag(fieldTo) + protowire.SizeBytes(len(to))
	}
	if msg.Broadcast {
		n += protowire.SizeTag(fieldBroadcast) + 1
	}
	if msg.Round != 0 {
		n += protowire.SizeTag(fieldRound) + protowire.SizeVarint(uint64(msg.Round))
	}
	if len(msg.Payload) > 0 {
		n += protowire.SizeTag(fieldPayload) + protowire.SizeBytes(len(msg.Payload))
	}
	return n
}

func appendEnvelope(b []byte, msg *tss.Message) []byte {
	b = protowire.AppendTag(b, fieldVersion, protowire.VarintType)
	b = protowire.AppendVarint(b, EnvelopeVersion)
	b = protowire.AppendTag(b, fieldSession, protowire.BytesType)
	b = protowire.AppendBytes(b, msg.Session[:])
	b = protowire.AppendTag(b, fieldType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(msg.Type))
	b = protowire.AppendTag(b, fieldFrom, protowire.BytesType)
	b = protowire.AppendString(b, string(msg.From))
	for _, to := range msg.To {
		b = protowire.AppendTag(b, fieldTo, protowire.BytesType)
		b = protowire.AppendString(b, string(to))
	}
	if msg.Broadcast {
		b = protowire.AppendTag(b, fieldBroadcast, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if msg.Round != 0 {
		b = protowire.AppendTag(b, fieldRound, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(msg.Round))
	}
	if len(msg.Payload) > 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, msg.Payload)
	}
	return b
}

// decodeEnvelope parses one envelope (without its frame length) strictly
// as FORMAT.md specifies. The returned message's Payload aliases b.
func decodeEnvelope(b []byte) (*tss.Message, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEnvelopeTooLarge, len(b))
	}
	var (
		msg     tss.Message
		version uint64
		seen    [fieldPayload + 1]bool
	)
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedEnvelope, fmt.Sprintf(format, args...))
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, malformed("field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num < fieldVersion || num > fieldPayload {
			return nil, malformed("unknown field %d", num)
		}
		if num != fieldTo && seen[num] {
			return nil, malformed("field %d appears twice", num)
		}
		seen[num] = true
		want := protowire.BytesType
		switch num {
		case fieldVersion, fieldType, fieldBroadcast, fieldRound:
			want = protowire.VarintType
		}
		if typ != want {
			return nil, malformed("field %d has wire type %d, want %d", num, typ, want)
		}
		if want == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, malformed("field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fieldVersion:
				version = v
			case fieldType:
				if v > math.MaxUint8 || !tss.MessageType(v).Valid() {
					return nil, malformed("message type %d is not defined", v)
				}
				msg.Type = tss.MessageType(v)
			case fieldBroadcast:
				if v > 1 {
					return nil, malformed("broadcast flag %d is not 0 or 1", v)
				}
				msg.Broadcast = v == 1
			case fieldRound:
				if v > math.MaxUint32 {
					return nil, malformed("round %d does not fit in 32 bits", v)
				}
				msg.Round = uint32(v)
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, malformed("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fieldSession:
			if len(v) != len(msg.Session) {
				return nil, malformed("session ID of %d bytes, want %d", len(v), len(msg.Session))
			}
			copy(msg.Session[:], v)
		case fieldFrom:
			msg.From = tss.PartyID(v)
			if err := msg.From.Validate(); err != nil {
				return nil, malformed("sender: %v", err)
			}
		case fieldTo:
			if len(msg.To) == MaxRecipients {
				return nil, malformed("more than %d recipients", MaxRecipients)
			}
			to := tss.PartyID(v)
			if err := to.Validate(); err != nil {
				return nil, malformed("recipient: %v", err)
			}
			msg.To = append(msg.To, to)
		case fieldPayload:
			if len(v) > tss.MaxPayloadSize {
				return nil, fmt.Errorf("%w: payload of %d bytes: %w", ErrEnvelopeTooLarge, len(v), tss.ErrMessageTooLarge)
			}
			msg.Payload = v
		}
	}
	switch {
	case !seen[fieldVersion]:
		return nil, malformed("no version")
	case version != EnvelopeVersion:
		return nil, fmt.Errorf("%w: version %d", ErrUnsupportedVersion, version)
	case !seen[fieldSession]:
		return nil, malformed("no session ID")
	case !seen[fieldType]:
		return nil, malformed("no message type")
	case !seen[fieldFrom]:
		return nil, malformed("no sender")
	case len(msg.To) == 0:
		return nil, malformed("no recipients")
	}
	return &msg, nil
}

// errFrameTooLarge is returned by readFrame for a length prefix over the
// limit; it wraps ErrEnvelopeTooLarge.
var errFrameTooLarge = fmt.Errorf("%w: frame length over %d bytes", ErrEnvelopeTooLarge, MaxEnvelopeSize)

// maxFramePrefix is the longest length prefix readFrame accepts: four
// varint bytes hold values below 2^28, more than MaxEnvelopeSize.
const maxFramePrefix = 4

// readFrame reads one frame from r and returns its envelope bytes. It
// refuses a length over MaxEnvelopeSize before reading the body. At a clean
// end of stream (no byte of a new frame read) it returns io.EOF.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var n uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if i == maxFramePrefix {
			return nil, errFrameTooLarge
		}
		n |= uint64(c&0x7f) << (7 * i)
		if n > MaxEnvelopeSize {
			return nil, errFrameTooLarge
		}
		if c < 0x80 {
			break
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformedEnvelope)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
