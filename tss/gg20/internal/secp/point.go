// Package secp is the secp256k1 group arithmetic of GG20 presigning: points
// with a strict 33-byte compressed encoding, scalar multiplication and the
// NUMS second generator h.
//
// Points are immutable values; every operation returns a new point. Scalars
// are *big.Int values, reduced modulo the group order q before use.
package secp

import (
	"errors"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// PointLen is the length of an encoded point (SEC 1 compressed form).
const PointLen = 33

// Q is the order of the secp256k1 group. Callers must not modify it.
var Q = secp256k1.S256().N

// ErrInvalidPoint is returned for an encoding that is not a point on the
// curve in compressed form (the identity has no encoding).
var ErrInvalidPoint = errors.New("secp: invalid compressed secp256k1 point")

// Point is an element of the secp256k1 group, possibly the identity.
type Point struct {
	j secp256k1.JacobianPoint // affine (Z = 1) or identity (Z = 0)
}

func fromJacobian(j *secp256k1.JacobianPoint) *Point {
	p := new(Point)
	p.j.Set(j)
	if (p.j.X.IsZero() && p.j.Y.IsZero()) || p.j.Z.IsZero() {
		p.j = secp256k1.JacobianPoint{}
		return p
	}
	p.j.ToAffine()
	return p
}

// Identity returns the identity element.
func Identity() *Point { return new(Point) }

// Generator returns the standard base point g.
func Generator() *Point {
	var k secp256k1.ModNScalar
	k.SetInt(1)
	var r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&k, &r)
	return fromJacobian(&r)
}

// Scalar converts k mod q to the curve library's scalar type.
func Scalar(k *big.Int) *secp256k1.ModNScalar {
	var s secp256k1.ModNScalar
	t := k
	if k.Sign() < 0 || k.Cmp(Q) >= 0 {
		t = new(big.Int).Mod(k, Q)
	}
	var b [32]byte
	t.FillBytes(b[:])
	s.SetBytes(&b)
	return &s
}

// BaseMult returns k·g.
func BaseMult(k *big.Int) *Point {
	var r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(Scalar(k), &r)
	return fromJacobian(&r)
}

// Mul returns k·P.
func (p *Point) Mul(k *big.Int) *Point {
	if p.IsIdentity() {
		return Identity()
	}
	var r secp256k1.JacobianPoint
	secp256k1.ScalarMultNonConst(Scalar(k), &p.j, &r)
	return fromJacobian(&r)
}

// Add returns P + R.
func (p *Point) Add(r *Point) *Point {
	var out secp256k1.JacobianPoint
	secp256k1.AddNonConst(&p.j, &r.j, &out)
	return fromJacobian(&out)
}

// Neg returns −P.
func (p *Point) Neg() *Point {
	out := new(Point)
	out.j.Set(&p.j)
	if !p.IsIdentity() {
		out.j.Y.Negate(1).Normalize()
	}
	return out
}

// Sum returns the sum of the points.
func Sum(points ...*Point) *Point {
	acc := Identity()
	for _, p := range points {
		acc = acc.Add(p)
	}
	return acc
}

// IsIdentity reports whether P is the identity.
func (p *Point) IsIdentity() bool { return p == nil || p.j.Z.IsZero() }

// Equal reports whether P and R are the same point.
func (p *Point) Equal(r *Point) bool {
	if p.IsIdentity() || r.IsIdentity() {
		return p.IsIdentity() && r.IsIdentity()
	}
	return p.j.X.Equals(&r.j.X) && p.j.Y.Equals(&r.j.Y)
}

// Bytes returns the 33-byte compressed encoding of P; the identity encodes as
// 33 zero bytes, which Parse rejects.
func (p *Point) Bytes() []byte {
	if p.IsIdentity() {
		return make([]byte, PointLen)
	}
	return secp256k1.NewPublicKey(&p.j.X, &p.j.Y).SerializeCompressed()
}

// Parse decodes a compressed point and rejects anything else, including the
// identity and points not on the curve.
func Parse(b []byte) (*Point, error) {
	if len(b) != PointLen || (b[0] != 2 && b[0] != 3) {
		return nil, ErrInvalidPoint
	}
	pk, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, ErrInvalidPoint
	}
	p := new(Point)
	pk.AsJacobian(&p.j)
	return p, nil
}

// FromXY returns the point with affine coordinates (x, y) after checking that
// it is on the curve.
func FromXY(x, y *big.Int) (*Point, error) {
	if x == nil || y == nil || x.Sign() < 0 || y.Sign() < 0 || x.BitLen() > 256 || y.BitLen() > 256 {
		return nil, ErrInvalidPoint
	}
	var fx, fy secp256k1.FieldVal
	if fx.SetByteSlice(x.Bytes()) || fy.SetByteSlice(y.Bytes()) {
		return nil, ErrInvalidPoint // coordinate ≥ field prime
	}
	pk := secp256k1.NewPublicKey(&fx, &fy)
	if !pk.IsOnCurve() {
		return nil, ErrInvalidPoint
	}
	p := new(Point)
	pk.AsJacobian(&p.j)
	return p, nil
}

// XY returns the affine coordinates of P; the identity returns (0, 0).
func (p *Point) XY() (x, y *big.Int) {
	if p.IsIdentity() {
		return new(big.Int), new(big.Int)
	}
	xb, yb := p.j.X.Bytes(), p.j.Y.Bytes()
	return new(big.Int).SetBytes(xb[:]), new(big.Int).SetBytes(yb[:])
}

// PublicKey returns P as a secp256k1 public key; P must not be the identity.
func (p *Point) PublicKey() *secp256k1.PublicKey {
	return secp256k1.NewPublicKey(&p.j.X, &p.j.Y)
}

// YIsOdd reports whether the y coordinate of P is odd.
func (p *Point) YIsOdd() bool { return !p.IsIdentity() && p.j.Y.IsOdd() }
