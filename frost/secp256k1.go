package frost

import (
	"crypto/sha256"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// kScalar is a scalar modulo the secp256k1 group order n.
type kScalar struct{ s secp256k1.ModNScalar }

func (s *kScalar) set(x scalar) scalar    { s.s.Set(&x.(*kScalar).s); return s }
func (s *kScalar) add(x, y scalar) scalar { s.s.Add2(&x.(*kScalar).s, &y.(*kScalar).s); return s }
func (s *kScalar) sub(x, y scalar) scalar {
	var ny secp256k1.ModNScalar
	ny.NegateVal(&y.(*kScalar).s)
	s.s.Add2(&x.(*kScalar).s, &ny)
	return s
}
func (s *kScalar) mul(x, y scalar) scalar { s.s.Mul2(&x.(*kScalar).s, &y.(*kScalar).s); return s }
func (s *kScalar) negate(x scalar) scalar { s.s.NegateVal(&x.(*kScalar).s); return s }
func (s *kScalar) invert(x scalar) scalar { s.s.InverseValNonConst(&x.(*kScalar).s); return s }
func (s *kScalar) equal(x scalar) bool    { return s.s.Equals(&x.(*kScalar).s) }
func (s *kScalar) isZero() bool           { return s.s.IsZero() }
func (s *kScalar) bytes() []byte          { b := s.s.Bytes(); return b[:] }
func (s *kScalar) wipe()                  { s.s.Zero() }
func (s *kScalar) setUint16(v uint16) scalar {
	s.s.SetInt(uint32(v))
	return s
}

// setReduced sets s to the big-endian integer b (at most 48 bytes) modulo n,
// in constant time: b = hi·2^256 + lo with hi < 2^128, and 2^256 ≡ 2^256 − n
// (mod n).
func (s *kScalar) setReduced(b []byte) *kScalar {
	var lo, hi [32]byte
	if len(b) > 32 {
		copy(hi[32-(len(b)-32):], b[:len(b)-32])
		copy(lo[:], b[len(b)-32:])
	} else {
		copy(lo[32-len(b):], b)
	}
	var l, h, c secp256k1.ModNScalar
	l.SetBytes(&lo) // reduces modulo n
	h.SetBytes(&hi)
	c.SetBytes(&twoTo256ModN)
	s.s.Mul2(&h, &c).Add(&l)
	// The input may be a nonce or key in the making: clear the copies.
	clear(lo[:])
	clear(hi[:])
	l.Zero()
	h.Zero()
	return s
}

// twoTo256ModN is 2^256 − n, big-endian.
var twoTo256ModN = [32]byte{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x45, 0x51, 0x23, 0x19, 0x50, 0xb7, 0x5f, 0xc4,
	0x40, 0x2d, 0xa1, 0x73, 0x2f, 0xc9, 0xbe, 0xbf,
}

// kElement is a point of secp256k1, in Jacobian coordinates.
type kElement struct{ p secp256k1.JacobianPoint }

func (p *kElement) set(q element) element { p.p.Set(&q.(*kElement).p); return p }
func (p *kElement) add(q, r element) element {
	var out secp256k1.JacobianPoint
	secp256k1.AddNonConst(&q.(*kElement).p, &r.(*kElement).p, &out)
	p.p.Set(&out)
	return p
}
func (p *kElement) negate(q element) element {
	p.p.Set(&q.(*kElement).p)
	if p.isIdentity() {
		return p
	}
	p.p.ToAffine()
	p.p.Y.Negate(1).Normalize()
	return p
}
func (p *kElement) scalarMult(s scalar, q element) element {
	var out secp256k1.JacobianPoint
	secp256k1.ScalarMultNonConst(&s.(*kScalar).s, &q.(*kElement).p, &out)
	p.p.Set(&out)
	return p
}
func (p *kElement) scalarBaseMult(s scalar) element {
	secp256k1.ScalarBaseMultNonConst(&s.(*kScalar).s, &p.p)
	return p
}
func (p *kElement) equal(q element) bool { return p.p.EquivalentNonConst(&q.(*kElement).p) }
func (p *kElement) isIdentity() bool {
	var x, y, z secp256k1.FieldVal
	x.Set(&p.p.X).Normalize()
	y.Set(&p.p.Y).Normalize()
	z.Set(&p.p.Z).Normalize()
	return (x.IsZero() && y.IsZero()) || z.IsZero()
}

// bytes is the SEC1 compressed encoding (RFC 9591 §6.5 SerializeElement).
func (p *kElement) bytes() []byte {
	a := p.affine()
	return secp256k1.NewPublicKey(&a.X, &a.Y).SerializeCompressed()
}

// affine returns a copy of p with Z = 1.
func (p *kElement) affine() secp256k1.JacobianPoint {
	var a secp256k1.JacobianPoint
	a.Set(&p.p)
	a.ToAffine()
	return a
}

// hasEvenY reports whether the affine Y coordinate is even (BIP-340).
func (p *kElement) hasEvenY() bool {
	a := p.affine()
	return !a.Y.IsOdd()
}

// xBytes is the 32-byte x coordinate (BIP-340 bytes(P)).
func (p *kElement) xBytes() []byte {
	a := p.affine()
	b := a.X.Bytes()
	return b[:]
}

type kGroup struct{}

func (kGroup) newScalar() scalar   { return new(kScalar) }
func (kGroup) newElement() element { return new(kElement) }
func (kGroup) scalarLen() int      { return 32 }
func (kGroup) elementLen() int     { return 33 }

func (kGroup) decodeScalar(b []byte) (scalar, error) {
	if len(b) != 32 {
		return nil, errEncoding("scalar has %d bytes, want 32", len(b))
	}
	s := new(kScalar)
	if s.s.SetByteSlice(b) {
		return nil, errEncoding("scalar is not below the group order")
	}
	return s, nil
}

// decodeElement is DeserializeElement of RFC 9591 §6.5: a 33-byte SEC1
// compressed point with x below the field prime, on the curve (SEC1
// §3.2.2.1; the cofactor is 1, so no subgroup check is needed). The identity
// has no compressed encoding.
func (kGroup) decodeElement(b []byte) (element, error) {
	if len(b) != 33 {
		return nil, errEncoding("element has %d bytes, want 33", len(b))
	}
	if b[0] != 0x02 && b[0] != 0x03 {
		return nil, errEncoding("element is not a compressed point")
	}
	pk, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, errEncoding("element is not a point of secp256k1")
	}
	p := new(kElement)
	pk.AsJacobian(&p.p)
	return p, nil
}

// liftX returns the point with x coordinate b and even Y (BIP-340 lift_x).
func liftX(b []byte) (*kElement, error) {
	if len(b) != 32 {
		return nil, errEncoding("x-only key has %d bytes, want 32", len(b))
	}
	var x, y secp256k1.FieldVal
	if x.SetByteSlice(b) {
		return nil, errEncoding("x coordinate is not below the field prime")
	}
	if !secp256k1.DecompressY(&x, false, &y) {
		return nil, errEncoding("x coordinate is not on the curve")
	}
	p := new(kElement)
	p.p.X.Set(&x)
	p.p.Y.Set(y.Normalize())
	p.p.Z.SetInt(1)
	return p, nil
}

// Hash functions of FROST(secp256k1, SHA-256), RFC 9591 §6.5.

// kHashToScalar is hash_to_field(m, 1) of RFC 9380 §5.2 with
// expand_message_xmd(SHA-256), L = 48, and the given DST.
func kHashToScalar(dst []byte, parts ...[]byte) scalar {
	var msg []byte
	for _, p := range parts {
		msg = append(msg, p...)
	}
	u := expandMessageXMD(msg, dst, 48)
	out := new(kScalar).setReduced(u)
	clear(u)
	clear(msg) // may hold a secret share (H3)
	return out
}

func kHash(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// expandMessageXMD is expand_message_xmd of RFC 9380 §5.3.1 with SHA-256.
// dst is at most 255 bytes and lenInBytes at most 255·32 at every call site.
func expandMessageXMD(msg, dst []byte, lenInBytes int) []byte {
	const bInBytes, sInBytes = 32, 64
	ell := (lenInBytes + bInBytes - 1) / bInBytes
	dstPrime := append(append([]byte{}, dst...), byte(len(dst)))
	h := sha256.New()
	h.Write(make([]byte, sInBytes)) // Z_pad
	h.Write(msg)
	h.Write([]byte{byte(lenInBytes >> 8), byte(lenInBytes)}) // l_i_b_str
	h.Write([]byte{0})
	h.Write(dstPrime)
	b0 := h.Sum(nil)

	h.Reset()
	h.Write(b0)
	h.Write([]byte{1})
	h.Write(dstPrime)
	bi := h.Sum(nil)
	out := append([]byte{}, bi...)
	for i := 2; i <= ell; i++ {
		x := make([]byte, bInBytes)
		for j := range x {
			x[j] = b0[j] ^ bi[j]
		}
		h.Reset()
		h.Write(x)
		h.Write([]byte{byte(i)})
		h.Write(dstPrime)
		bi = h.Sum(nil)
		out = append(out, bi...)
	}
	return out[:lenInBytes]
}
