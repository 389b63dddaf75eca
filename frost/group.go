package frost

import (
	"fmt"
	"io"
)

// The prime-order groups behind the ciphersuites (RFC 9591 §3.1). Each
// ciphersuite plugs in one implementation of [group]; the protocol code only
// sees [scalar] and [element].
//
// Scalars are secret-safe: both implementations (edwards25519.Scalar and
// secp256k1.ModNScalar) do their modular arithmetic in constant time. Point
// arithmetic is constant time for edwards25519 and variable time for
// secp256k1 (the dcrd library offers no constant-time scalar multiplication);
// see the package documentation.

// scalar is an element of the scalar field of a group. Methods set the
// receiver and return it, in the style of edwards25519.Scalar.
type scalar interface {
	set(x scalar) scalar
	add(x, y scalar) scalar
	sub(x, y scalar) scalar
	mul(x, y scalar) scalar
	negate(x scalar) scalar
	// invert sets the receiver to 1/x; x must not be zero. Only used on
	// public values (identifiers).
	invert(x scalar) scalar
	setUint16(v uint16) scalar
	equal(x scalar) bool
	isZero() bool
	// bytes returns SerializeScalar (RFC 9591 §3.1).
	bytes() []byte
	// wipe overwrites the value with zero.
	wipe()
}

// element is a point of a prime-order group.
type element interface {
	set(p element) element
	add(p, q element) element
	negate(p element) element
	scalarMult(s scalar, p element) element
	scalarBaseMult(s scalar) element
	equal(q element) bool
	isIdentity() bool
	// bytes returns SerializeElement (RFC 9591 §3.1). It must not be called
	// on the identity, which has no encoding.
	bytes() []byte
}

// group is one prime-order group with its canonical encodings.
type group interface {
	newScalar() scalar
	// newElement returns the identity.
	newElement() element
	scalarLen() int
	elementLen() int
	// decodeScalar is DeserializeScalar: exactly scalarLen bytes, canonical
	// (below the group order).
	decodeScalar(b []byte) (scalar, error)
	// decodeElement is DeserializeElement: exactly elementLen bytes, a
	// canonical encoding of a point of the prime-order subgroup other than
	// the identity.
	decodeElement(b []byte) (element, error)
}

// identifierScalar maps a participant identifier to its NonZeroScalar.
func identifierScalar(g group, id Identifier) scalar {
	return g.newScalar().setUint16(uint16(id))
}

// Format keeps scalars out of every fmt verb; a scalar may be a secret.
func (s *edScalar) Format(f fmt.State, _ rune) { io.WriteString(f, "[redacted]") }

// Format keeps scalars out of every fmt verb; a scalar may be a secret.
func (s *kScalar) Format(f fmt.State, _ rune) { io.WriteString(f, "[redacted]") }
