package offline

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// Limits of the bundle format (FORMAT.md).
const (
	// MaxBundleSize is the largest bundle, in bytes, that Import reads and
	// Export writes.
	MaxBundleSize = 64 << 20
	// MaxMessages is the largest number of messages in one bundle.
	MaxMessages = 4096
	// MaxRecipients is the largest number of party IDs in a message's To
	// list.
	MaxRecipients = 256
	// MaxCommitteeLen is the longest committee ID, in bytes.
	MaxCommitteeLen = 64
	// MaxTTL is the longest a bundle may stay valid after it is made.
	MaxTTL = 30 * 24 * time.Hour
	// FormatVersion is the only bundle format version this package speaks.
	FormatVersion = 1
)

// The HPKE suite of format version 1 (RFC 9180 §7).
const (
	suiteKEM  = 0x0010 // DHKEM(P-256, HKDF-SHA256)
	suiteKDF  = 0x0001 // HKDF-SHA256
	suiteAEAD = 0x0002 // AES-256-GCM
)

const (
	magic         = "KQOB"
	domain        = "keyquorum/offline-bundle/v1"
	encLen        = 65 // uncompressed P-256 point
	minCiphertext = 16 // the AES-GCM tag
	maxSigLen     = 72
	minSigLen     = 8
	maxPartyLen   = 128
	contentLen    = 32 + 4
	// fixed part of a plaintext message: session, type, broadcast, round.
	msgFixedLen = 32 + 1 + 1 + 4
)

// Content names one protocol round of one session whose messages a bundle
// carries.
type Content struct {
	// Session is the session ID.
	Session tss.SessionID
	// Round is the round number of the messages (0 for the messages
	// around a protocol: proposals, answers, results).
	Round uint32
}

// Header is the clear part of a bundle: who made it for whom, when, and
// what it carries. Nothing in it is authenticated until Import verifies the
// bundle.
type Header struct {
	// Committee is the committee (channel) ID.
	Committee string
	// Sender is the party that made the bundle.
	Sender tss.PartyID
	// Recipient is the party the bundle is encrypted to.
	Recipient tss.PartyID
	// Sequence numbers the bundles from Sender to Recipient in the
	// committee, from 1.
	Sequence uint64
	// Created is when the bundle was made (millisecond precision).
	Created time.Time
	// Expires is when the bundle stops being accepted.
	Expires time.Time
	// Messages is the number of messages inside.
	Messages int
	// Contents lists the (session, round) pairs of the messages, sorted.
	Contents []Content
}

// bundle is a parsed bundle.
type bundle struct {
	Header
	header []byte // the header's bytes: the HPKE info's tail
	enc    []byte
	ct     []byte
	signed []byte // every byte before the signature field
	sig    []byte
}

// Inspect parses a bundle's layout and returns its header without
// verifying anything: for operators who want to see what a file claims to
// be. Import is what checks a bundle.
func Inspect(b []byte) (Header, error) {
	bd, err := parseBundle(b)
	if err != nil {
		return Header{}, err
	}
	return bd.Header, nil
}

func validCommittee(s string) error {
	if len(s) == 0 || len(s) > MaxCommitteeLen {
		return fmt.Errorf("committee ID must be 1 to %d bytes", MaxCommitteeLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("committee ID %q is reserved", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("committee ID has byte %#x at offset %d; use only a-z, 0-9, '.', '_', '-'", c, i)
		}
	}
	return nil
}

func compareContent(a, b Content) int {
	if c := bytes.Compare(a.Session[:], b.Session[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Round, b.Round)
}

// contentsOf returns the sorted distinct (session, round) pairs of msgs.
func contentsOf(msgs []*tss.Message) []Content {
	out := make([]Content, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, Content{Session: m.Session, Round: m.Round})
	}
	slices.SortFunc(out, compareContent)
	return slices.Compact(out)
}

// appendHeader encodes h as FORMAT.md specifies.
func appendHeader(b []byte, h *Header) []byte {
	b = append(b, magic...)
	b = append(b, FormatVersion)
	b = binary.BigEndian.AppendUint16(b, suiteKEM)
	b = binary.BigEndian.AppendUint16(b, suiteKDF)
	b = binary.BigEndian.AppendUint16(b, suiteAEAD)
	b = appendU8Bytes(b, []byte(h.Committee))
	b = appendU8Bytes(b, []byte(h.Sender))
	b = appendU8Bytes(b, []byte(h.Recipient))
	b = binary.BigEndian.AppendUint64(b, h.Sequence)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Created.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Expires.UnixMilli()))
	b = binary.BigEndian.AppendUint32(b, uint32(h.Messages))
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Contents)))
	for _, c := range h.Contents {
		b = append(b, c.Session[:]...)
		b = binary.BigEndian.AppendUint32(b, c.Round)
	}
	return b
}

func appendU8Bytes(b, v []byte) []byte {
	b = append(b, byte(len(v)))
	return append(b, v...)
}

// hpkeInfo is the HPKE info of a bundle with the given header bytes.
func hpkeInfo(header []byte) []byte {
	info := make([]byte, 0, len(domain)+1+len(header))
	info = append(info, domain...)
	info = append(info, 0)
	return append(info, header...)
}

// signedDigest is what the sender's identity key signs.
func signedDigest(signed []byte) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(signed)
	return h.Sum(nil)
}

// reader consumes a byte slice; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(fmt.Errorf("%w: %s: need %d bytes, %d left", ErrMalformed, what, n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) int {
	v := r.take(1, what)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *reader) u16(what string) int {
	v := r.take(2, what)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

func (r *reader) u32(what string) uint32 {
	v := r.take(4, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64(what string) uint64 {
	v := r.take(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// party reads a u8-prefixed party ID.
func (r *reader) party(what string) tss.PartyID {
	n := r.u8(what)
	p := tss.PartyID(r.take(n, what))
	if r.err == nil {
		if err := p.Validate(); err != nil {
			r.fail(fmt.Errorf("%w: %s: %w", ErrMalformed, what, err))
		}
	}
	return p
}

// parseBundle checks b's layout (FORMAT.md, step 1 of what the receiver
// checks). Its slices alias b.
func parseBundle(b []byte) (*bundle, error) {
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("%w: bundle of %d bytes, the limit is %d", ErrTooLarge, len(b), MaxBundleSize)
	}
	r := &reader{b: b}
	if m := r.take(len(magic), "magic"); r.err == nil && string(m) != magic {
		return nil, fmt.Errorf("%w: not a keyquorum bundle (no %q magic)", ErrMalformed, magic)
	}
	if v := r.u8("format version"); r.err == nil && v != FormatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrUnsupportedVersion, v, FormatVersion)
	}
	kem, kdf, aead := r.u16("KEM"), r.u16("KDF"), r.u16("AEAD")
	if r.err == nil && (kem != suiteKEM || kdf != suiteKDF || aead != suiteAEAD) {
		return nil, fmt.Errorf("%w: HPKE suite %#04x/%#04x/%#04x, this build reads %#04x/%#04x/%#04x", ErrUnsupportedVersion, kem, kdf, aead, suiteKEM, suiteKDF, suiteAEAD)
	}
	bd := &bundle{}
	n := r.u8("committee")
	bd.Committee = string(r.take(n, "committee"))
	if r.err == nil {
		if err := validCommittee(bd.Committee); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	bd.Sender = r.party("sender")
	bd.Recipient = r.party("recipient")
	bd.Sequence = r.u64("sequence")
	created, expires := r.u64("created"), r.u64("expires")
	count := r.u32("message count")
	contents := r.u16("contents")
	if r.err != nil {
		return nil, r.err
	}
	if bd.Sequence == 0 {
		return nil, fmt.Errorf("%w: sequence 0 (sequences start at 1)", ErrMalformed)
	}
	if created > 1<<62 || expires > 1<<62 || created >= expires {
		return nil, fmt.Errorf("%w: created %d and expires %d are not in order", ErrMalformed, created, expires)
	}
	if time.Duration(expires-created)*time.Millisecond > MaxTTL {
		return nil, fmt.Errorf("%w: valid for more than %v", ErrMalformed, MaxTTL)
	}
	bd.Created, bd.Expires = time.UnixMilli(int64(created)), time.UnixMilli(int64(expires))
	if count == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrMalformed)
	}
	if count > MaxMessages {
		return nil, fmt.Errorf("%w: %d messages, the limit is %d", ErrTooLarge, count, MaxMessages)
	}
	bd.Messages = int(count)
	if contents == 0 || contents > bd.Messages {
		return nil, fmt.Errorf("%w: %d content entries for %d messages", ErrMalformed, contents, bd.Messages)
	}
	if contents*contentLen > len(r.b) {
		return nil, fmt.Errorf("%w: contents: need %d bytes, %d left", ErrMalformed, contents*contentLen, len(r.b))
	}
	bd.Contents = make([]Content, contents)
	for i := range bd.Contents {
		copy(bd.Contents[i].Session[:], r.take(32, "content session"))
		bd.Contents[i].Round = r.u32("content round")
		if i > 0 && compareContent(bd.Contents[i-1], bd.Contents[i]) >= 0 {
			return nil, fmt.Errorf("%w: contents are not strictly ascending", ErrMalformed)
		}
	}
	bd.header = b[:len(b)-len(r.b)]
	if n := r.u8("enc"); r.err == nil && n != encLen {
		return nil, fmt.Errorf("%w: encapsulated key of %d bytes, want %d", ErrMalformed, n, encLen)
	}
	bd.enc = r.take(encLen, "enc")
	ctLen := r.u32("ciphertext")
	if r.err == nil && ctLen < minCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMalformed, ctLen)
	}
	bd.ct = r.take(int(ctLen), "ciphertext")
	if r.err != nil {
		return nil, r.err
	}
	bd.signed = b[:len(b)-len(r.b)]
	sigLen := r.u8("signature")
	if r.err == nil && (sigLen < minSigLen || sigLen > maxSigLen) {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, sigLen)
	}
	bd.sig = r.take(sigLen, "signature")
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the signature", ErrMalformed, len(r.b))
	}
	return bd, nil
}

// appendMessage encodes m (without its sender) as FORMAT.md's plaintext
// message, with its u32 length prefix.
func appendMessage(b []byte, m *tss.Message) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, m.Session[:]...)
	b = append(b, byte(m.Type))
	if m.Broadcast {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, m.Round)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.To)))
	for _, to := range m.To {
		b = appendU8Bytes(b, []byte(to))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
	b = append(b, m.Payload...)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// messageSize is the encoded size of m, with its length prefix.
func messageSize(m *tss.Message) int {
	n := 4 + msgFixedLen + 2 + 4 + len(m.Payload)
	for _, to := range m.To {
		n += 1 + len(to)
	}
	return n
}

// checkOutgoing applies the plaintext rules to a message before it is
// queued, so that nothing the recipient would refuse is ever sent.
func checkOutgoing(m *tss.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if len(m.To) > MaxRecipients {
		return fmt.Errorf("offline: message to %d parties, the limit is %d", len(m.To), MaxRecipients)
	}
	for _, to := range m.To {
		if err := to.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// parseMessages decodes the plaintext of bd: exactly bd.Messages messages
// from bd.Sender, each addressed (among others, maybe) to bd.Recipient,
// whose (session, round) pairs are exactly bd.Contents.
func parseMessages(bd *bundle, pt []byte) ([]*tss.Message, error) {
	r := &reader{b: pt}
	msgs := make([]*tss.Message, 0, bd.Messages)
	for i := 0; i < bd.Messages; i++ {
		n := r.u32("message length")
		mb := r.take(int(n), "message")
		if r.err != nil {
			return nil, fmt.Errorf("message %d: %w", i, r.err)
		}
		m, err := parseMessage(mb)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		m.From = bd.Sender
		if !slices.Contains(m.To, bd.Recipient) {
			return nil, fmt.Errorf("%w: message %d is not addressed to the bundle's recipient", ErrMalformed, i)
		}
		msgs = append(msgs, m)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last message", ErrMalformed, len(r.b))
	}
	if !slices.EqualFunc(contentsOf(msgs), bd.Contents, func(a, b Content) bool { return compareContent(a, b) == 0 }) {
		return nil, fmt.Errorf("%w: the messages' sessions and rounds differ from the header's", ErrMalformed)
	}
	return msgs, nil
}

func parseMessage(b []byte) (*tss.Message, error) {
	r := &reader{b: b}
	m := &tss.Message{}
	copy(m.Session[:], r.take(32, "session"))
	typ := r.u8("type")
	bc := r.u8("broadcast")
	m.Round = r.u32("round")
	nto := r.u16("recipients")
	if r.err != nil {
		return nil, r.err
	}
	if !tss.MessageType(typ).Valid() {
		return nil, fmt.Errorf("%w: message type %d is not defined", ErrMalformed, typ)
	}
	m.Type = tss.MessageType(typ)
	if bc > 1 {
		return nil, fmt.Errorf("%w: broadcast flag %d", ErrMalformed, bc)
	}
	m.Broadcast = bc == 1
	if nto == 0 || nto > MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients, want 1 to %d", ErrMalformed, nto, MaxRecipients)
	}
	m.To = make([]tss.PartyID, 0, min(nto, len(r.b)/2))
	for range nto {
		m.To = append(m.To, r.party("recipient"))
	}
	pl := r.u32("payload length")
	if r.err == nil && pl > tss.MaxPayloadSize {
		return nil, fmt.Errorf("%w: payload of %d bytes, the limit is %d", ErrTooLarge, pl, tss.MaxPayloadSize)
	}
	m.Payload = r.take(int(pl), "payload")
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the payload", ErrMalformed, len(r.b))
	}
	return m, nil
}
