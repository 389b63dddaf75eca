// Package wire is the byte encoding of GG20 presigning messages and proofs.
//
// Integers are non-negative, written as a 2-byte big-endian length followed by
// the minimal big-endian bytes (zero is the empty string; a leading zero byte
// is rejected, so every value has exactly one encoding). Points are 33-byte
// compressed secp256k1 encodings. A Reader records the first error and
// returns zero values afterwards, so a decoder reads every field and checks
// the error once at the end.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// MaxIntLen is the longest integer encoding any reader accepts (bytes); a
// 4096-bit N² fits in 1024, responses are below 700.
const MaxIntLen = 1100

// ErrMalformed is returned for any encoding error.
var ErrMalformed = errors.New("wire: malformed encoding")

// Writer appends encoded fields to a buffer.
type Writer struct {
	b []byte
}

// Bytes returns the encoding written so far.
func (w *Writer) Bytes() []byte { return w.b }

// Uint8 writes one byte.
func (w *Writer) Uint8(v uint8) { w.b = append(w.b, v) }

// Uint16 writes a big-endian 16-bit value.
func (w *Writer) Uint16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }

// Fixed writes b as is.
func (w *Writer) Fixed(b []byte) { w.b = append(w.b, b...) }

// Int writes a non-negative integer; nil writes zero. It panics on a negative
// value or one over MaxIntLen bytes, which only a programming error produces.
func (w *Writer) Int(x *big.Int) {
	if x == nil {
		w.Uint16(0)
		return
	}
	if x.Sign() < 0 || (x.BitLen()+7)/8 > MaxIntLen {
		panic("wire: integer out of encodable range")
	}
	b := x.Bytes()
	w.Uint16(uint16(len(b)))
	w.b = append(w.b, b...)
}

// Scalar writes x mod q as exactly 32 bytes.
func (w *Writer) Scalar(x *big.Int) {
	var b [32]byte
	new(big.Int).Mod(x, secp.Q).FillBytes(b[:])
	w.b = append(w.b, b[:]...)
}

// Point writes a 33-byte compressed point.
func (w *Writer) Point(p *secp.Point) { w.b = append(w.b, p.Bytes()...) }

// Reader decodes fields from a buffer.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met.
func (r *Reader) Err() error { return r.err }

func (r *Reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
}

// Fail records an error found by the caller while decoding (for example a
// value out of its range).
func (r *Reader) Fail(format string, a ...any) { r.fail(format, a...) }

// Fixed reads n bytes.
func (r *Reader) Fixed(n int, what string) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.b) < n {
		r.fail("%s: truncated", what)
		return make([]byte, n)
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// Uint8 reads one byte.
func (r *Reader) Uint8(what string) uint8 { return r.Fixed(1, what)[0] }

// Uint16 reads a big-endian 16-bit value.
func (r *Reader) Uint16(what string) uint16 { return binary.BigEndian.Uint16(r.Fixed(2, what)) }

// Int reads an integer of at most maxLen bytes (and at most MaxIntLen).
func (r *Reader) Int(maxLen int, what string) *big.Int {
	n := int(r.Uint16(what))
	if r.err != nil {
		return new(big.Int)
	}
	if n > maxLen || n > MaxIntLen {
		r.fail("%s: %d bytes, at most %d allowed", what, n, min(maxLen, MaxIntLen))
		return new(big.Int)
	}
	b := r.Fixed(n, what)
	if n > 0 && b[0] == 0 {
		r.fail("%s: non-minimal integer encoding", what)
		return new(big.Int)
	}
	return new(big.Int).SetBytes(b)
}

// Scalar reads a 32-byte value and requires it to be below q.
func (r *Reader) Scalar(what string) *big.Int {
	x := new(big.Int).SetBytes(r.Fixed(32, what))
	if r.err == nil && x.Cmp(secp.Q) >= 0 {
		r.fail("%s: scalar not below the group order", what)
	}
	return x
}

// Point reads a compressed point; the identity and off-curve points fail.
func (r *Reader) Point(what string) *secp.Point {
	b := r.Fixed(secp.PointLen, what)
	if r.err != nil {
		return secp.Identity()
	}
	p, err := secp.Parse(b)
	if err != nil {
		r.fail("%s: not a compressed secp256k1 point", what)
		return secp.Identity()
	}
	return p
}

// Done returns the first error, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
