// Package secp is the secp256k1 group arithmetic of GG20 presigning: points
// with a strict 33-byte compressed encoding, scalar multiplication and the
// NUMS second generator h.
//
// Points are immutable values; every operation returns a new point. Scalars
// are *big.Int values, reduced modulo the group order q before use.
//
// Scalar multiplication comes in two kinds. BaseMult, Mul and Commit take
// time independent of the scalar's value (a fixed-window ladder over
// complete addition formulas, see ct.go): use them whenever a scalar is
// secret — a share, a nonce, a proof's randomness. BaseMultVarTime and
// MulVarTime are dcrd's faster variable-time multiplications and must only
// see public scalars, such as proof responses and challenges during
// verification. Add and Sum use the complete formulas too; Equal, Bytes
// and the other accessors work on points, which are public.
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

// Scalar converts k mod q to the curve library's scalar type. Its time
// depends on k: use it for public values.
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

// BaseMult returns k·g in time independent of the value of k (only its
// sign and its length in 256-bit chunks matter), for a secret k.
func BaseMult(k *big.Int) *Point {
	s := secretScalar(k)
	r := linearCombination([]*table{generatorTable()}, []*[32]byte{&s}, nil)
	clear(s[:])
	return r.toPoint()
}

// Mul returns k·P in time independent of the value of k (only its sign and
// its length in 256-bit chunks matter), for a secret k and a public P.
func (p *Point) Mul(k *big.Int) *Point {
	if p.IsIdentity() {
		return Identity()
	}
	s := secretScalar(k)
	pp := toProj(p)
	r := linearCombination([]*table{newTable(&pp)}, []*[32]byte{&s}, nil)
	clear(s[:])
	return r.toPoint()
}

// Commit returns the Pedersen commitment a·g + b·h in time independent of
// the values of a and b, for secrets a and b and a public h.
func Commit(a *big.Int, h *Point, b *big.Int) *Point {
	sa, sb := secretScalar(a), secretScalar(b)
	hp := toProj(h)
	r := linearCombination([]*table{generatorTable(), newTable(&hp)}, []*[32]byte{&sa, &sb}, nil)
	clear(sa[:])
	clear(sb[:])
	return r.toPoint()
}

// BaseMultVarTime returns k·g with dcrd's variable-time multiplication. Its
// time depends on k: use it only for public k.
func BaseMultVarTime(k *big.Int) *Point {
	var r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(Scalar(k), &r)
	return fromJacobian(&r)
}

// MulVarTime returns k·P with dcrd's variable-time multiplication. Its time
// depends on k: use it only for public k.
func (p *Point) MulVarTime(k *big.Int) *Point {
	if p.IsIdentity() {
		return Identity()
	}
	var r secp256k1.JacobianPoint
	secp256k1.ScalarMultNonConst(Scalar(k), &p.j, &r)
	return fromJacobian(&r)
}

// Add returns P + R with the complete addition formulas (no branch on the
// points).
func (p *Point) Add(r *Point) *Point {
	a, b := toProj(p), toProj(r)
	a.add(&a, &b)
	return a.toPoint()
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

// Sum returns the sum of the points, with the complete addition formulas
// and one field inversion.
func Sum(points ...*Point) *Point {
	var acc proj
	acc.setIdentity()
	for _, p := range points {
		t := toProj(p)
		acc.add(&acc, &t)
	}
	return acc.toPoint()
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
