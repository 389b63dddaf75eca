package tss

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/keyquorum/keyquorum/frost"
)

// dealtShare returns a Schnorr share record of a dealt 2-of-3 key.
func dealtShare(t testing.TB) *schnorrShare {
	t.Helper()
	d, err := frost.Deal(frost.Ed25519(), nil, 2, 3, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Wipe()
	shares, err := d.KeyShares()
	if err != nil {
		t.Fatal(err)
	}
	return &schnorrShare{keyID: "00112233445566778899aabbccddeeff", scheme: SchemeEd25519,
		parties: []PartyID{"a", "b", "c"}, threshold: 2, share: shares[0]}
}

func TestSchnorrShare_RoundTrip(t *testing.T) {
	s := dealtShare(t)
	b, err := s.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSchnorrShare(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := got.encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatal("a decoded share encodes differently")
	}
	// Every truncation is refused, none panics.
	for n := range len(b) {
		if _, err := decodeSchnorrShare(b[:n]); err == nil {
			t.Fatalf("a share record cut to %d of %d bytes decodes", n, len(b))
		}
	}
}

func FuzzDecodeSchnorrShare(f *testing.F) {
	b, err := dealtShare(f).encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeSchnorrShare(b); err == nil {
			s.wipe()
		}
	})
}

func FuzzDecodeSchnorrSign(f *testing.F) {
	f.Add([]byte{1, 32, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, true)
	f.Add([]byte{0, 0, 'h', 'i'}, false)
	f.Fuzz(func(t *testing.T, b []byte, bip340 bool) {
		scheme := SchemeEd25519
		if bip340 {
			scheme = SchemeBIP340
		}
		in, err := decodeSchnorrSign(b, scheme)
		if err == nil && scheme == SchemeBIP340 && len(in.message) != 32 {
			t.Fatalf("a %d-byte BIP-340 message accepted", len(in.message))
		}
		(&Proposal{Op: OpSchnorrSign, Payload: b}).SchnorrMessage()
	})
}
