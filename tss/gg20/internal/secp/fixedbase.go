package secp

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// FixedBase holds the multiples of one point needed to multiply it by any
// scalar with 32 additions and no doubling: entry [j][d-1] is d·2^(8j)·P in
// affine form, for every byte position j and byte value d. Building it costs
// about 8,000 point additions and takes 640 KiB, so it pays when one point
// is multiplied many times — the public key in batch signature checks.
// Like MultiScalarMult it is not constant-time: use it on public values.
type FixedBase struct {
	table [32][255]affine
}

type affine struct{ x, y secp256k1.FieldVal }

// NewFixedBase builds the table for p, which must not be the identity.
func NewFixedBase(p *Point) *FixedBase {
	fb := new(FixedBase)
	var jac [32][255]secp256k1.JacobianPoint
	base := p.j // affine, normalized
	for j := 0; j < 32; j++ {
		jac[j][0] = base
		for d := 1; d < 255; d++ {
			secp256k1.AddNonConst(&jac[j][d-1], &base, &jac[j][d])
		}
		// The next window's base: 256·base = 255·base + base.
		var next secp256k1.JacobianPoint
		secp256k1.AddNonConst(&jac[j][254], &base, &next)
		next.ToAffine()
		base = next
	}
	// Convert every entry to affine with one field inversion (Montgomery's
	// trick): prefix products of the Z values, invert the last, walk back.
	flat := make([]*secp256k1.JacobianPoint, 0, 32*255)
	for j := range jac {
		for d := range jac[j] {
			flat = append(flat, &jac[j][d])
		}
	}
	prefix := make([]secp256k1.FieldVal, len(flat))
	var acc secp256k1.FieldVal
	acc.SetInt(1)
	for i, q := range flat {
		prefix[i].Set(&acc)
		acc.Mul(&q.Z).Normalize()
	}
	acc.Inverse() // 1 / Π Z
	for i := len(flat) - 1; i >= 0; i-- {
		q := flat[i]
		var zInv, z2, z3 secp256k1.FieldVal
		zInv.Mul2(&acc, &prefix[i]).Normalize() // 1/Z_i
		acc.Mul(&q.Z).Normalize()               // drop Z_i from the running inverse
		z2.SquareVal(&zInv)
		z3.Mul2(&z2, &zInv)
		e := &fb.table[i/255][i%255]
		e.x.Mul2(&q.X, &z2).Normalize()
		e.y.Mul2(&q.Y, &z3).Normalize()
	}
	return fb
}

// Mul returns k·P.
func (fb *FixedBase) Mul(k *secp256k1.ModNScalar) secp256k1.JacobianPoint {
	b := k.Bytes()
	var acc secp256k1.JacobianPoint
	var e secp256k1.JacobianPoint
	e.Z.SetInt(1)
	for j := 0; j < 32; j++ {
		d := b[31-j]
		if d == 0 {
			continue
		}
		t := &fb.table[j][d-1]
		e.X.Set(&t.x)
		e.Y.Set(&t.y)
		secp256k1.AddNonConst(&acc, &e, &acc)
	}
	return acc
}

// VerifyECDSA checks an ECDSA signature (r, s) over hash with the key whose
// FixedBase this is: with w = s⁻¹, X = (e·w)·g + (r·w)·y must not be the
// identity and X.x mod q must equal r, where e is the first 32 bytes of
// hash reduced mod q (as crypto/ecdsa and dcrd do). It accepts exactly what
// dcrd's ecdsa.Signature.Verify accepts.
func (fb *FixedBase) VerifyECDSA(hash []byte, r, s *secp256k1.ModNScalar) bool {
	if r.IsZero() || s.IsZero() {
		return false
	}
	var e secp256k1.ModNScalar
	h := hash
	if len(h) > 32 {
		h = h[:32]
	}
	e.SetByteSlice(h)
	var w, u1, u2 secp256k1.ModNScalar
	w.InverseValNonConst(s)
	u1.Mul2(&e, &w)
	u2.Mul2(r, &w)
	var x1 secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&u1, &x1)
	x2 := fb.Mul(&u2)
	var x secp256k1.JacobianPoint
	secp256k1.AddNonConst(&x1, &x2, &x)
	if (x.X.IsZero() && x.Y.IsZero()) || x.Z.IsZero() {
		return false
	}
	x.ToAffine()
	var xs secp256k1.ModNScalar
	xb := x.X.Bytes()
	xs.SetBytes(xb) // reduces mod q
	return xs.Equals(r)
}
