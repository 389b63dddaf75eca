// Package transcript derives Fiat–Shamir challenges for the proofs GG20
// presigning adds on top of tss-lib.
//
// A transcript is SHA-512 over a domain string and a sequence of labelled
// fields, each written as len(label) ‖ label ‖ len(value) ‖ value with 4-byte
// big-endian lengths, so no two different sequences of fields hash the same
// bytes (the ambiguity behind the TSSHOCK α-shuffle attack cannot arise).
// Every proof writes its domain, the session it belongs to and every element
// of its statement before its commitments.
package transcript

import (
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"math/big"
)

// Transcript accumulates the fields of one proof.
type Transcript struct {
	h hash.Hash
}

// New starts a transcript for the given domain (for example
// "keyquorum/gg20/zkpdl/v1").
func New(domain string) *Transcript {
	t := &Transcript{h: sha512.New()}
	t.Bytes("domain", []byte(domain))
	return t
}

// Bytes writes a labelled byte string.
func (t *Transcript) Bytes(label string, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(label)))
	t.h.Write(n[:])
	t.h.Write([]byte(label))
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	t.h.Write(n[:])
	t.h.Write(b)
}

// Int writes a labelled non-negative integer in minimal big-endian form; a
// nil or negative value is written as its absolute value with a distinct
// label suffix so that it can never collide with a valid one.
func (t *Transcript) Int(label string, x *big.Int) {
	switch {
	case x == nil:
		t.Bytes(label+"/nil", nil)
	case x.Sign() < 0:
		t.Bytes(label+"/neg", x.Bytes())
	default:
		t.Bytes(label, x.Bytes())
	}
}

// Uint writes a labelled unsigned integer.
func (t *Transcript) Uint(label string, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	t.Bytes(label, b[:])
}

// Challenge returns the digest of everything written so far, as an integer
// reduced modulo q. The 512-bit digest makes the bias of the reduction
// negligible (below 2⁻²⁵⁶ for a 256-bit q). The transcript can keep being
// written to afterwards.
func (t *Transcript) Challenge(q *big.Int) *big.Int {
	d := t.h.Sum(nil)
	e := new(big.Int).SetBytes(d)
	return e.Mod(e, q)
}
