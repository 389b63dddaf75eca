package secp

import (
	"crypto/subtle"
	"math/big"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Constant-time group arithmetic.
//
// A point is kept in homogeneous projective coordinates (X : Y : Z), with
// affine x = X/Z, y = Y/Z; the identity is (0 : 1 : 0). Addition and
// doubling use the complete formulas of Renes, Costello and Batina,
// "Complete addition formulas for prime order elliptic curves" (EUROCRYPT
// 2016, eprint 2015/1060), Algorithms 7 and 9 for a = 0. They have no
// exceptional cases — the identity, P + P and P + (−P) go through the same
// steps as any other sum — so nothing here branches on a point or a scalar.
// dcrd's FieldVal operations used here (Add, Mul, Square, MulInt, Negate,
// Normalize, Inverse) are constant time.
//
// FieldVal leaves the caller to bound the "magnitude" of unnormalized values
// (Mul and Square need inputs of magnitude ≤ 8, Add needs the sum ≤ 32). Every
// proj coordinate is normalized (magnitude 1) between operations; inside
// add and double, the comment after each step gives the magnitude of its
// result.

// proj is a point in projective coordinates with normalized coordinates.
type proj struct{ x, y, z secp256k1.FieldVal }

// b3 is 3·b for the curve y² = x³ + 7.
const b3 = 21

// setIdentity sets r to (0 : 1 : 0).
func (r *proj) setIdentity() {
	r.x.Zero()
	r.y.SetInt(1)
	r.z.Zero()
}

// add sets r = p + q (RCB Algorithm 7). r may alias p or q.
func (r *proj) add(p, q *proj) {
	var t0, t1, t2, t3, t4, x3, y3, z3 secp256k1.FieldVal
	t0.Mul2(&p.x, &q.x)       // X1·X2                          (1)
	t1.Mul2(&p.y, &q.y)       // Y1·Y2                          (1)
	t2.Mul2(&p.z, &q.z)       // Z1·Z2                          (1)
	t3.Add2(&p.x, &p.y)       // X1+Y1                          (2)
	t4.Add2(&q.x, &q.y)       // X2+Y2                          (2)
	t3.Mul(&t4)               // (X1+Y1)(X2+Y2)                 (1)
	t4.Add2(&t0, &t1)         // X1X2+Y1Y2                      (2)
	t3.Add(t4.Negate(2))      // t3 = X1Y2+X2Y1                 (1+3)
	t4.Add2(&p.y, &p.z)       // Y1+Z1                          (2)
	x3.Add2(&q.y, &q.z)       // Y2+Z2                          (2)
	t4.Mul(&x3)               // (Y1+Z1)(Y2+Z2)                 (1)
	x3.Add2(&t1, &t2)         // Y1Y2+Z1Z2                      (2)
	t4.Add(x3.Negate(2))      // t4 = Y1Z2+Y2Z1                 (1+3)
	x3.Add2(&p.x, &p.z)       // X1+Z1                          (2)
	y3.Add2(&q.x, &q.z)       // X2+Z2                          (2)
	x3.Mul(&y3)               // (X1+Z1)(X2+Z2)                 (1)
	y3.Add2(&t0, &t2)         // X1X2+Z1Z2                      (2)
	y3.Negate(2).Add(&x3)     // y3 = X1Z2+X2Z1                 (3+1)
	x3.Add2(&t0, &t0)         // 2·X1X2                         (2)
	t0.Add(&x3)               // t0 = 3·X1X2                    (3)
	t2.MulInt(b3).Normalize() // t2 = 3b·Z1Z2                   (1)
	z3.Add2(&t1, &t2)         // z3 = Y1Y2+3bZ1Z2               (2)
	t1.Add(t2.Negate(1))      // t1 = Y1Y2−3bZ1Z2               (1+2)
	y3.Normalize().MulInt(b3) // 3b(X1Z2+X2Z1)                  (21)
	y3.Normalize()            //                                (1)
	x3.Mul2(&t4, &y3)         // 3b(Y1Z2+Y2Z1)(X1Z2+X2Z1)       (1)
	t2.Mul2(&t3, &t1)         // (X1Y2+X2Y1)(Y1Y2−3bZ1Z2)       (1)
	x3.Negate(1).Add(&t2)     // X3                             (2+1)
	y3.Mul(&t0)               // 9b·X1X2(X1Z2+X2Z1)             (1)
	t1.Mul(&z3)               // (Y1Y2−3bZ1Z2)(Y1Y2+3bZ1Z2)     (1)
	y3.Add(&t1)               // Y3                             (2)
	t0.Mul(&t3)               // 3X1X2(X1Y2+X2Y1)               (1)
	z3.Mul(&t4)               // (Y1Y2+3bZ1Z2)(Y1Z2+Y2Z1)       (1)
	z3.Add(&t0)               // Z3                             (2)
	r.x.Set(x3.Normalize())
	r.y.Set(y3.Normalize())
	r.z.Set(z3.Normalize())
}

// double sets r = 2p (RCB Algorithm 9). r may alias p.
func (r *proj) double(p *proj) {
	var t0, t1, t2, x3, y3, z3 secp256k1.FieldVal
	t0.SquareVal(&p.y)        // Y²                                (1)
	z3.Add2(&t0, &t0)         // 2Y²                               (2)
	z3.Add(&z3)               // 4Y²                               (4)
	z3.Add(&z3)               // 8Y²                               (8)
	t1.Mul2(&p.y, &p.z)       // YZ                                (1)
	t2.SquareVal(&p.z)        // Z²                                (1)
	t2.MulInt(b3).Normalize() // 3bZ²                              (1)
	x3.Mul2(&t2, &z3)         // 24bY²Z²                           (1)
	y3.Add2(&t0, &t2)         // Y²+3bZ²                           (2)
	z3.Mul(&t1)               // Z3 = 8Y³Z                         (1)
	t1.Add2(&t2, &t2)         // 6bZ²                              (2)
	t2.Add(&t1)               // 9bZ²                              (3)
	t0.Add(t2.Negate(3))      // Y²−9bZ²                           (1+4)
	y3.Mul(&t0)               // (Y²−9bZ²)(Y²+3bZ²)                (1)
	y3.Add(&x3)               // Y3                                (2)
	t1.Mul2(&p.x, &p.y)       // XY                                (1)
	x3.Mul2(&t0, &t1)         // XY(Y²−9bZ²)                       (1)
	x3.Add(&x3)               // X3 = 2XY(Y²−9bZ²)                 (2)
	r.x.Set(x3.Normalize())
	r.y.Set(y3.Normalize())
	r.z.Set(z3.Normalize())
}

// window is the width in bits of a digit of the fixed-window scalar
// multiplication; a table holds the 2^window multiples 0·P … 15·P.
const (
	window    = 4
	tableSize = 1 << window
	digits    = 256 / window
)

type table [tableSize]proj

// newTable returns 0·P, 1·P, …, 15·P.
func newTable(p *proj) *table {
	t := new(table)
	t[0].setIdentity()
	t[1] = *p
	for i := 2; i < tableSize; i++ {
		t[i].add(&t[i-1], p)
	}
	return t
}

// lookup sets r = t[idx] reading every entry, so that neither the time nor
// the memory accessed depends on idx < 16. Each coordinate is the sum over
// i of t[i]·[i = idx], with [i = idx] ∈ {0, 1} computed without branching.
func (r *proj) lookup(t *table, idx byte) {
	var x, y, z, v secp256k1.FieldVal
	for i := range t {
		bit := uint8(subtle.ConstantTimeByteEq(byte(i), idx))
		x.Add(v.Set(&t[i].x).MulInt(bit)) // sum of 16 magnitude-1 terms: ≤ 16
		y.Add(v.Set(&t[i].y).MulInt(bit))
		z.Add(v.Set(&t[i].z).MulInt(bit))
	}
	r.x.Set(x.Normalize())
	r.y.Set(y.Normalize())
	r.z.Set(z.Normalize())
}

// digit returns the i-th 4-bit digit of the big-endian scalar k, counting
// from the most significant (i = 0) to the least significant (i = 63).
func digit(k *[32]byte, i int) byte {
	return (k[i/2] >> (window * (1 - i%2))) & (tableSize - 1)
}

// trace records the sequence of group operations of a multiplication; tests
// compare it across scalars. A nil *trace records nothing.
type trace struct{ ops []byte }

func (t *trace) note(op byte) {
	if t != nil {
		t.ops = append(t.ops, op)
	}
}

// linearCombination returns Σᵢ kᵢ·Pᵢ for the tables of the Pᵢ and the
// big-endian scalars kᵢ (< 2^256), in constant time: for each of the 64
// digits, 4 doublings, then per point one table lookup and one addition,
// whatever the digits are (Straus' method with fixed windows).
func linearCombination(tables []*table, scalars []*[32]byte, tr *trace) proj {
	var acc, t proj
	acc.setIdentity()
	for i := 0; i < digits; i++ {
		for d := 0; d < window; d++ {
			acc.double(&acc)
			tr.note('D')
		}
		for j, tb := range tables {
			t.lookup(tb, digit(scalars[j], i))
			tr.note('L')
			acc.add(&acc, &t)
			tr.note('A')
		}
	}
	return acc
}

// toProj returns p in projective coordinates; p's affine form makes it
// (x : y : 1), the identity (0 : 1 : 0).
func toProj(p *Point) proj {
	var r proj
	if p.IsIdentity() {
		r.setIdentity()
		return r
	}
	r.x.Set(&p.j.X)
	r.y.Set(&p.j.Y)
	r.z.SetInt(1)
	return r
}

// toPoint converts r to an affine Point with one constant-time field
// inversion. Only whether the result is the identity decides a branch; the
// results of all multiplications here are public points.
func (r *proj) toPoint() *Point {
	if r.z.IsZero() {
		return Identity()
	}
	var zInv secp256k1.FieldVal
	zInv.Set(&r.z).Inverse()
	p := new(Point)
	p.j.X.Mul2(&r.x, &zInv).Normalize()
	p.j.Y.Mul2(&r.y, &zInv).Normalize()
	p.j.Z.SetInt(1)
	return p
}

// generatorTable holds 0·g … 15·g.
var generatorTable = sync.OnceValue(func() *table {
	g := toProj(Generator())
	return newTable(&g)
})

// two256 is 2^256 mod q.
var two256 = func() secp256k1.ModNScalar {
	var s secp256k1.ModNScalar
	v := new(big.Int).Lsh(big.NewInt(1), 256)
	s.SetByteSlice(v.Mod(v, Q).FillBytes(make([]byte, 32)))
	return s
}()

// secretScalar returns k mod q as 32 big-endian bytes without branching on
// the value of k: it reads k's magnitude in 256-bit chunks (Horner's rule
// with dcrd's constant-time ModNScalar arithmetic), so only k's sign and
// its length in 32-byte chunks decide the work done. Secrets are never
// negative; a negative k (a public value) is negated after reduction.
func secretScalar(k *big.Int) [32]byte {
	var acc, chunk secp256k1.ModNScalar
	mag := new(big.Int).Abs(k)
	chunks := (mag.BitLen() + 255) / 256
	buf := mag.FillBytes(make([]byte, 32*chunks))
	var c [32]byte
	for i := 0; i < chunks; i++ {
		copy(c[:], buf[32*i:])
		chunk.SetBytes(&c) // reduces a chunk ≥ q in constant time
		acc.Mul(&two256).Add(&chunk)
	}
	if k.Sign() < 0 {
		acc.Negate()
	}
	out := acc.Bytes()
	clear(buf)
	clear(c[:])
	chunk.Zero()
	acc.Zero()
	clear(mag.Bits())
	return out
}

func wipeTable(t *table) {
	for i := range t {
		t[i].x.Zero()
		t[i].y.Zero()
		t[i].z.Zero()
	}
}
