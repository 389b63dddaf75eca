package frost

import (
	"crypto/sha512"
	"crypto/subtle"

	"filippo.io/edwards25519"
)

// edScalar is a scalar modulo L = 2^252 + 27742317777372353535851937790883648493.
type edScalar struct{ s edwards25519.Scalar }

func (s *edScalar) set(x scalar) scalar    { s.s.Set(&x.(*edScalar).s); return s }
func (s *edScalar) add(x, y scalar) scalar { s.s.Add(&x.(*edScalar).s, &y.(*edScalar).s); return s }
func (s *edScalar) sub(x, y scalar) scalar {
	s.s.Subtract(&x.(*edScalar).s, &y.(*edScalar).s)
	return s
}
func (s *edScalar) mul(x, y scalar) scalar {
	s.s.Multiply(&x.(*edScalar).s, &y.(*edScalar).s)
	return s
}
func (s *edScalar) negate(x scalar) scalar { s.s.Negate(&x.(*edScalar).s); return s }
func (s *edScalar) invert(x scalar) scalar { s.s.Invert(&x.(*edScalar).s); return s }
func (s *edScalar) equal(x scalar) bool    { return s.s.Equal(&x.(*edScalar).s) == 1 }
func (s *edScalar) isZero() bool           { return s.s.Equal(edwards25519.NewScalar()) == 1 }
func (s *edScalar) bytes() []byte          { return s.s.Bytes() }
func (s *edScalar) wipe()                  { s.s.Set(edwards25519.NewScalar()) }
func (s *edScalar) setUint16(v uint16) scalar {
	var b [32]byte
	b[0], b[1] = byte(v), byte(v>>8) // little-endian (RFC 9591 §6.1 SerializeScalar)
	s.s.SetCanonicalBytes(b[:])      // cannot fail: v < L
	return s
}

// setWide reduces a 64-byte little-endian integer modulo L (RFC 9591 §6.1,
// H1 to H3).
func (s *edScalar) setWide(digest []byte) *edScalar {
	s.s.SetUniformBytes(digest) // cannot fail: callers pass SHA-512 output
	return s
}

// edElement is a point of the prime-order subgroup of edwards25519.
type edElement struct{ p edwards25519.Point }

func (p *edElement) set(q element) element { p.p.Set(&q.(*edElement).p); return p }
func (p *edElement) add(q, r element) element {
	p.p.Add(&q.(*edElement).p, &r.(*edElement).p)
	return p
}
func (p *edElement) negate(q element) element { p.p.Negate(&q.(*edElement).p); return p }
func (p *edElement) scalarMult(s scalar, q element) element {
	p.p.ScalarMult(&s.(*edScalar).s, &q.(*edElement).p)
	return p
}
func (p *edElement) scalarBaseMult(s scalar) element { p.p.ScalarBaseMult(&s.(*edScalar).s); return p }
func (p *edElement) equal(q element) bool            { return p.p.Equal(&q.(*edElement).p) == 1 }
func (p *edElement) isIdentity() bool                { return p.p.Equal(edwards25519.NewIdentityPoint()) == 1 }
func (p *edElement) bytes() []byte                   { return p.p.Bytes() }

type edGroup struct{}

func (edGroup) newScalar() scalar { return new(edScalar) }
func (edGroup) newElement() element {
	e := new(edElement)
	e.p.Set(edwards25519.NewIdentityPoint())
	return e
}
func (edGroup) scalarLen() int  { return 32 }
func (edGroup) elementLen() int { return 32 }

func (edGroup) decodeScalar(b []byte) (scalar, error) {
	s := new(edScalar)
	if len(b) != 32 {
		return nil, errEncoding("scalar has %d bytes, want 32", len(b))
	}
	if _, err := s.s.SetCanonicalBytes(b); err != nil {
		return nil, errEncoding("scalar is not below the group order")
	}
	return s, nil
}

// decodeElement is DeserializeElement of RFC 9591 §6.1: RFC 8032 §5.1.3
// decoding, plus the checks that the point is canonical, not the identity and
// in the prime-order subgroup.
func (edGroup) decodeElement(b []byte) (element, error) {
	if len(b) != 32 {
		return nil, errEncoding("element has %d bytes, want 32", len(b))
	}
	p := new(edElement)
	if _, err := p.p.SetBytes(b); err != nil {
		return nil, errEncoding("element is not a point of edwards25519")
	}
	// SetBytes accepts some non-canonical encodings (y ≥ p); re-encoding
	// and comparing rejects them.
	if subtle.ConstantTimeCompare(p.p.Bytes(), b) != 1 {
		return nil, errEncoding("element encoding is not canonical")
	}
	if p.isIdentity() {
		return nil, errEncoding("element is the identity")
	}
	// [L]P = O for P in the prime-order subgroup; computed as [L-1]P + P.
	var lm1 edwards25519.Scalar
	lm1.Subtract(edwards25519.NewScalar(), scalarOne())
	var q edwards25519.Point
	q.ScalarMult(&lm1, &p.p)
	q.Add(&q, &p.p)
	if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		return nil, errEncoding("element is not in the prime-order subgroup")
	}
	return p, nil
}

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

// Hash functions of FROST(Ed25519, SHA-512), RFC 9591 §6.1.

func edHashToScalar(parts ...[]byte) scalar {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	digest := h.Sum(nil)
	out := new(edScalar).setWide(digest)
	clear(digest) // the output of H3 is a nonce
	return out
}

func edHash(parts ...[]byte) []byte {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
