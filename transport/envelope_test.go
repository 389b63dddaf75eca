package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/keyquorum/keyquorum/tss"
)

func sampleMessage() *tss.Message {
	m := &tss.Message{
		Type:      tss.MsgEcho,
		From:      "QmSender",
		To:        []tss.PartyID{"QmA", "QmB"},
		Broadcast: true,
		Round:     300,
		Payload:   []byte("payload"),
	}
	for i := range m.Session {
		m.Session[i] = byte(i)
	}
	return m
}

func decodeFrame(t *testing.T, frame []byte) *tss.Message {
	t.Helper()
	env, err := readFrame(bufio.NewReader(bytes.NewReader(frame)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEnvelope_RoundTrip(t *testing.T) {
	for _, m := range []*tss.Message{
		sampleMessage(),
		{Type: tss.MsgPropose, From: "x", To: []tss.PartyID{"y"}}, // defaults omitted
		{Type: tss.MsgCommit, From: "x", To: []tss.PartyID{"y"}, Round: ^uint32(0), Payload: make([]byte, tss.MaxPayloadSize)},
	} {
		frame, err := encodeFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeFrame(t, frame)
		if got.Session != m.Session || got.Type != m.Type || got.From != m.From || !equalParties(got.To, m.To) ||
			got.Broadcast != m.Broadcast || got.Round != m.Round || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
		}
	}
}

func equalParties(a, b []tss.PartyID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEnvelope_GoldenEncoding pins the byte layout FORMAT.md specifies.
func TestEnvelope_GoldenEncoding(t *testing.T) {
	m := &tss.Message{Type: tss.MsgProtocol, From: "A", To: []tss.PartyID{"B", "C"}, Broadcast: true, Round: 2, Payload: []byte{0xee}}
	m.Session[0], m.Session[31] = 0x11, 0x22
	frame, err := encodeFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = append(want, 0x08, 0x01)       // 1 version = 1
	want = append(want, 0x12, 0x20, 0x11) // 2 session, 32 bytes
	want = append(want, make([]byte, 30)...)
	want = append(want, 0x22)
	want = append(want, 0x18, 0x05)       // 3 type = protocol
	want = append(want, 0x22, 0x01, 'A')  // 4 from
	want = append(want, 0x2a, 0x01, 'B')  // 5 to
	want = append(want, 0x2a, 0x01, 'C')  // 5 to
	want = append(want, 0x30, 0x01)       // 6 broadcast
	want = append(want, 0x38, 0x02)       // 7 round
	want = append(want, 0x42, 0x01, 0xee) // 8 payload
	want = append([]byte{byte(len(want))}, want...)
	if !bytes.Equal(frame, want) {
		t.Fatalf("frame\n %x\nwant\n %x", frame, want)
	}
}

func TestEncodeFrame_RefusesWhatReceiversRefuse(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*tss.Message)
		want   error
	}{
		{"payload over the limit", func(m *tss.Message) { m.Payload = make([]byte, tss.MaxPayloadSize+1) }, tss.ErrMessageTooLarge},
		{"unknown type", func(m *tss.Message) { m.Type = 0 }, ErrMalformedEnvelope},
		{"no sender", func(m *tss.Message) { m.From = "" }, ErrMalformedEnvelope},
		{"no recipients", func(m *tss.Message) { m.To = nil }, ErrMalformedEnvelope},
		{"too many recipients", func(m *tss.Message) { m.To = make([]tss.PartyID, MaxRecipients+1) }, ErrMalformedEnvelope},
		{"bad recipient", func(m *tss.Message) { m.To = []tss.PartyID{"has space"} }, ErrMalformedEnvelope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleMessage()
			tc.mutate(m)
			if _, err := encodeFrame(m); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := encodeFrame(nil); !errors.Is(err, ErrMalformedEnvelope) {
		t.Fatalf("nil message: got %v", err)
	}
}

// field helpers for hand-built envelopes.
func vfield(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func bfield(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// env builds an envelope field by field: a valid base, with fields
// replaced (set), left out (omit) or appended (extra).
type env struct {
	set   map[protowire.Number][]byte // replacement encoded field(s)
	omit  map[protowire.Number]bool
	extra []byte
}

func (e env) bytes() []byte {
	base := []struct {
		num protowire.Number
		enc []byte
	}{
		{fieldVersion, vfield(nil, fieldVersion, 1)},
		{fieldSession, bfield(nil, fieldSession, make([]byte, 32))},
		{fieldType, vfield(nil, fieldType, uint64(tss.MsgProtocol))},
		{fieldFrom, bfield(nil, fieldFrom, []byte("A"))},
		{fieldTo, bfield(nil, fieldTo, []byte("B"))},
	}
	var b []byte
	for _, f := range base {
		switch {
		case e.omit[f.num]:
		case e.set[f.num] != nil:
			b = append(b, e.set[f.num]...)
		default:
			b = append(b, f.enc...)
		}
	}
	return append(b, e.extra...)
}

func TestDecodeEnvelope_IsStrict(t *testing.T) {
	if _, err := decodeEnvelope(env{}.bytes()); err != nil {
		t.Fatalf("the valid base envelope: %v", err)
	}
	no := func(n protowire.Number) map[protowire.Number]bool { return map[protowire.Number]bool{n: true} }
	set := func(n protowire.Number, b []byte) map[protowire.Number][]byte {
		return map[protowire.Number][]byte{n: b}
	}
	manyTo := bfield(nil, fieldTo, []byte("B"))
	for range MaxRecipients {
		manyTo = bfield(manyTo, fieldTo, []byte("B"))
	}
	tests := []struct {
		name   string
		e      env
		want   error
		detail string // part of the error message naming the reason
	}{
		{"no version", env{omit: no(fieldVersion)}, ErrMalformedEnvelope, "no version"},
		{"version 2", env{set: set(fieldVersion, vfield(nil, fieldVersion, 2))}, ErrUnsupportedVersion, "version 2"},
		{"version twice", env{extra: vfield(nil, fieldVersion, 1)}, ErrMalformedEnvelope, "field 1 appears twice"},
		{"unknown field", env{extra: vfield(nil, 9, 1)}, ErrMalformedEnvelope, "unknown field 9"},
		{"field number 0", env{extra: []byte{0x00, 0x00}}, ErrMalformedEnvelope, "field tag"},
		{"wrong wire type", env{extra: bfield(nil, fieldRound, []byte{1})}, ErrMalformedEnvelope, "field 7 has wire type 2"},
		{"fixed64 wire type", env{extra: protowire.AppendFixed64(protowire.AppendTag(nil, fieldRound, protowire.Fixed64Type), 1)}, ErrMalformedEnvelope, "field 7 has wire type 1"},
		{"no session", env{omit: no(fieldSession)}, ErrMalformedEnvelope, "no session"},
		{"short session", env{set: set(fieldSession, bfield(nil, fieldSession, make([]byte, 31)))}, ErrMalformedEnvelope, "session ID of 31 bytes"},
		{"session twice", env{extra: bfield(nil, fieldSession, make([]byte, 32))}, ErrMalformedEnvelope, "field 2 appears twice"},
		{"no type", env{omit: no(fieldType)}, ErrMalformedEnvelope, "no message type"},
		{"type 0", env{set: set(fieldType, vfield(nil, fieldType, 0))}, ErrMalformedEnvelope, "message type 0"},
		{"type 10", env{set: set(fieldType, vfield(nil, fieldType, 10))}, ErrMalformedEnvelope, "message type 10"},
		{"type 256+5", env{set: set(fieldType, vfield(nil, fieldType, 256+5))}, ErrMalformedEnvelope, "message type 261"},
		{"no sender", env{omit: no(fieldFrom)}, ErrMalformedEnvelope, "no sender"},
		{"bad sender", env{set: set(fieldFrom, bfield(nil, fieldFrom, []byte("A\x00")))}, ErrMalformedEnvelope, "sender"},
		{"from twice", env{extra: bfield(nil, fieldFrom, []byte("C"))}, ErrMalformedEnvelope, "field 4 appears twice"},
		{"no recipients", env{omit: no(fieldTo)}, ErrMalformedEnvelope, "no recipients"},
		{"bad recipient", env{extra: bfield(nil, fieldTo, []byte(strings.Repeat("x", 129)))}, ErrMalformedEnvelope, "recipient"},
		{"too many recipients", env{set: set(fieldTo, manyTo)}, ErrMalformedEnvelope, "more than 256 recipients"},
		{"broadcast 2", env{extra: vfield(nil, fieldBroadcast, 2)}, ErrMalformedEnvelope, "broadcast flag 2"},
		{"round over 32 bits", env{extra: vfield(nil, fieldRound, 1<<32)}, ErrMalformedEnvelope, "does not fit in 32 bits"},
		{"truncated varint", env{extra: []byte{0x38, 0x80}}, ErrMalformedEnvelope, "field 7"},
		{"truncated bytes", env{extra: []byte{0x42, 0x05, 'x'}}, ErrMalformedEnvelope, "field 8"},
		{"payload over the limit", env{extra: bfield(nil, fieldPayload, make([]byte, tss.MaxPayloadSize+1))}, ErrEnvelopeTooLarge, "payload of 2097153 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeEnvelope(tc.e.bytes())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.detail)
			}
		})
	}
	if _, err := decodeEnvelope(nil); !errors.Is(err, ErrMalformedEnvelope) {
		t.Fatalf("empty envelope: got %v", err)
	}
}

func TestReadFrame(t *testing.T) {
	read := func(b []byte) ([]byte, error) { return readFrame(bufio.NewReader(bytes.NewReader(b))) }
	if _, err := read(nil); err != io.EOF {
		t.Fatalf("empty stream: got %v, want io.EOF", err)
	}
	if _, err := read([]byte{0x85}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut inside the length: got %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := read([]byte{5, 1, 2}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut inside the body: got %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := read(protowire.AppendVarint(nil, MaxEnvelopeSize+1)); !errors.Is(err, ErrEnvelopeTooLarge) {
		t.Fatalf("length over the limit: got %v, want ErrEnvelopeTooLarge", err)
	}
	if _, err := read([]byte{0x80, 0x80, 0x80, 0x80, 0x01}); !errors.Is(err, ErrEnvelopeTooLarge) {
		t.Fatalf("5-byte length: got %v, want ErrEnvelopeTooLarge", err)
	}
	// Exactly the limit is read (the body is then too short here).
	if _, err := read(protowire.AppendVarint(nil, MaxEnvelopeSize)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("length at the limit: got %v, want io.ErrUnexpectedEOF", err)
	}
	// A non-minimal length encoding within 4 bytes is accepted.
	got, err := read([]byte{0x82, 0x80, 0x00, 'h', 'i'})
	if err != nil || string(got) != "hi" {
		t.Fatalf("non-minimal length: got %q, %v", got, err)
	}
}

// FuzzDecodeEnvelope checks that decoding never panics and that whatever
// it accepts re-encodes to an envelope that decodes to the same message.
func FuzzDecodeEnvelope(f *testing.F) {
	frame, _ := encodeFrame(sampleMessage())
	f.Add(frame[1:])
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedEnvelope) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrEnvelopeTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		frame, err := encodeFrame(m)
		if err != nil {
			t.Fatalf("accepted envelope does not re-encode: %v", err)
		}
		again := decodeFrame(t, frame)
		if again.Session != m.Session || again.Type != m.Type || again.From != m.From || !equalParties(again.To, m.To) ||
			again.Broadcast != m.Broadcast || again.Round != m.Round || !bytes.Equal(again.Payload, m.Payload) {
			t.Fatalf("re-encoding changed the message: %+v vs %+v", again, m)
		}
	})
}
