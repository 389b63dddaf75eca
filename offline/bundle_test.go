package offline

import (
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// FuzzParseBundle: no input makes the decoders panic or accept a bundle
// whose layout differs from its re-encoding.
func FuzzParseBundle(f *testing.F) {
	var s tss.SessionID
	h := Header{Committee: "cold-1", Sender: "QmA", Recipient: "QmB", Sequence: 1, Messages: 1, Contents: []Content{{Session: s, Round: 1}}}
	h.Created = time.UnixMilli(1_772_366_400_000)
	h.Expires = h.Created.Add(DefaultTTL)
	good := appendHeader(nil, &h)
	good = append(good, encLen)
	good = append(good, make([]byte, encLen)...)
	good = appendU32Bytes(good, make([]byte, 32))
	good = append(good, 8, 0x30, 6, 2, 1, 1, 2, 1, 1)
	if _, err := parseBundle(good); err != nil {
		f.Fatalf("seed does not parse: %v", err)
	}
	f.Add(good)
	f.Add([]byte("KQOB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		bd, err := parseBundle(b)
		if err != nil {
			return
		}
		re := appendHeader(nil, &bd.Header)
		if string(re) != string(bd.header) {
			t.Fatalf("header re-encodes differently:\n%x\n%x", re, bd.header)
		}
		// The plaintext decoder takes the same input as a plaintext.
		_, _ = parseMessages(bd, b)
	})
}
