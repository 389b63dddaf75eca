package frost

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

// fuzzSeeds returns valid encodings of every kind for every suite, plus some
// corruptions of them.
func fuzzSeeds(f *testing.F) {
	for _, s := range allSuites {
		d, err := Deal(s, nil, 2, 3, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		ks, err := d.KeyShares()
		if err != nil {
			f.Fatal(err)
		}
		nonce, c, _ := ks[0].Commit(rand.Reader)
		_, c2, _ := ks[1].Commit(rand.Reader)
		pkg := &SigningPackage{Message: []byte("m"), Commitments: []*Commitment{c, c2}}
		sh, err := ks[0].Sign(nonce, pkg)
		if err != nil {
			f.Fatal(err)
		}
		_, r1, err := NewDKG(DKGConfig{Suite: s, Self: 1, Participants: []Identifier{1, 2}, Threshold: 2})
		if err != nil {
			f.Fatal(err)
		}
		r2 := &DKGRound2{suite: s, from: 1, to: 2, share: s.g.newScalar().setUint16(7)}
		var blobs [][]byte
		for _, m := range []interface{ MarshalBinary() ([]byte, error) }{ks[0].PublicKey(), c, sh, d.Commitment, r1, r2} {
			b, _ := m.MarshalBinary()
			blobs = append(blobs, b)
		}
		for _, b := range blobs {
			f.Add(b)
			f.Add(b[:len(b)-1])
			f.Add(append(bytes.Clone(b), 0))
			flipped := bytes.Clone(b)
			flipped[len(b)/2] ^= 0x80
			f.Add(flipped)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 1, 0, 0})
	f.Add([]byte{1, 4, 2, 0xff, 0xff})
}

// FuzzParse feeds arbitrary bytes to every decoder: none may panic, and
// whatever decodes must re-encode to the same bytes.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, v interface{ MarshalBinary() ([]byte, error) }, err error) {
			if err != nil {
				return
			}
			out, err := v.MarshalBinary()
			if err != nil {
				t.Fatalf("%s: re-encode: %v", name, err)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("%s: re-encoding differs:\n%x\n%x", name, out, b)
			}
		}
		pk, err := ParsePublicKey(b)
		check("PublicKey", pk, err)
		c, err := ParseCommitment(b)
		check("Commitment", c, err)
		sh, err := ParseSignatureShare(b)
		check("SignatureShare", sh, err)
		v, err := ParseVSSCommitment(b)
		check("VSSCommitment", v, err)
		r1, err := ParseDKGRound1(b)
		check("DKGRound1", r1, err)
		r2, err := ParseDKGRound2(b)
		check("DKGRound2", r2, err)
		for _, s := range allSuites {
			_ = s.Verify(b[:min(len(b), 33)], b, b[min(len(b), 33):])
		}
	})
}

// TestParsePublicKey_LargestKeyIsCheap bounds the work an adversarial
// public-key blob can cause: the largest accepted key parses quickly.
func TestParsePublicKey_LargestKeyIsCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 128-of-256 key")
	}
	pub, _ := testKey(t, Secp256k1(), maxParticipants/2, maxParticipants)
	b, _ := pub.MarshalBinary()
	start := time.Now()
	if _, err := ParsePublicKey(b); err != nil {
		t.Fatal(err)
	}
	t.Logf("128-of-256 public key checked in %v", time.Since(start))
}
