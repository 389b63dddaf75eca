package secp

import (
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Window parameters of FixedBase: a scalar is recoded into fbWindows
// signed digits of fbWidth bits each, in [-2^(fbWidth-1), 2^(fbWidth-1)).
// 22 windows of 12 bits cover 264 bits, so the carry out of the top digit
// of a 256-bit scalar is always zero.
const (
	fbWidth   = 12
	fbWindows = 22
	fbHalf    = 1 << (fbWidth - 1) // largest digit magnitude, 2048
)

// FixedBase holds the multiples of one point needed to multiply it by any
// scalar with at most 22 additions and no doubling: entry [j][d-1] is
// d·2^(12j)·P in affine form, for every window j and digit magnitude
// d = 1…2048; negative digits use the negated entry. Building it costs
// about 45,000 point additions and the table takes 3.4 MiB, so it pays
// when one point is multiplied many times — the generator and the public
// key in batch signature checks. It is not constant-time: use it on public
// values only.
type FixedBase struct {
	table [fbWindows][fbHalf]affine
}

type affine struct{ x, y secp256k1.FieldVal }

// NewFixedBase builds the table for p, which must not be the identity.
func NewFixedBase(p *Point) *FixedBase {
	fb := new(FixedBase)
	jac := make([]secp256k1.JacobianPoint, fbWindows*fbHalf)
	base := p.j // affine, normalized
	for j := 0; j < fbWindows; j++ {
		row := jac[j*fbHalf : (j+1)*fbHalf]
		row[0] = base
		for d := 1; d < fbHalf; d++ {
			// base is the second operand: dcrd's addition takes its fast
			// path when that one has Z = 1.
			secp256k1.AddNonConst(&row[d-1], &base, &row[d])
		}
		// The next window's base: 2^12·base = 2·(2^11·base).
		var next secp256k1.JacobianPoint
		secp256k1.DoubleNonConst(&row[fbHalf-1], &next)
		next.ToAffine()
		base = next
	}
	// Convert every entry to affine with one field inversion (Montgomery's
	// trick): prefix products of the Z values, invert the last, walk back.
	prefix := make([]secp256k1.FieldVal, len(jac))
	var acc secp256k1.FieldVal
	acc.SetInt(1)
	for i := range jac {
		prefix[i].Set(&acc)
		acc.Mul(&jac[i].Z).Normalize()
	}
	acc.Inverse() // 1 / Π Z
	for i := len(jac) - 1; i >= 0; i-- {
		q := &jac[i]
		var zInv, z2, z3 secp256k1.FieldVal
		zInv.Mul2(&acc, &prefix[i]).Normalize() // 1/Z_i
		acc.Mul(&q.Z).Normalize()               // drop Z_i from the running inverse
		z2.SquareVal(&zInv)
		z3.Mul2(&z2, &zInv)
		e := &fb.table[i/fbHalf][i%fbHalf]
		e.x.Mul2(&q.X, &z2).Normalize()
		e.y.Mul2(&q.Y, &z3).Normalize()
	}
	return fb
}

// recode writes k as Σ digits[j]·2^(12j) with every digit in
// [-2048, 2048).
func recode(k *secp256k1.ModNScalar) [fbWindows]int {
	be := k.Bytes()
	var le [36]byte // little-endian, zero-padded past bit 255
	for i := 0; i < 32; i++ {
		le[i] = be[31-i]
	}
	var digits [fbWindows]int
	carry := 0
	for j := 0; j < fbWindows; j++ {
		pos := fbWidth * j
		i, sh := pos/8, pos%8
		w := uint32(le[i]) | uint32(le[i+1])<<8 | uint32(le[i+2])<<16
		d := int(w>>sh)&(1<<fbWidth-1) + carry
		carry = 0
		if d >= fbHalf {
			d -= 1 << fbWidth
			carry = 1
		}
		digits[j] = d
	}
	return digits
}

// Mul returns k·P.
func (fb *FixedBase) Mul(k *secp256k1.ModNScalar) secp256k1.JacobianPoint {
	digits := recode(k)
	var acc secp256k1.JacobianPoint
	var e secp256k1.JacobianPoint
	e.Z.SetInt(1)
	for j, d := range digits {
		if d == 0 {
			continue
		}
		neg := d < 0
		if neg {
			d = -d
		}
		t := &fb.table[j][d-1]
		e.X.Set(&t.x)
		e.Y.Set(&t.y)
		if neg {
			e.Y.Negate(1).Normalize()
		}
		secp256k1.AddNonConst(&acc, &e, &acc)
	}
	return acc
}

// GeneratorTable returns the FixedBase of the standard generator g, which
// VerifyECDSA uses; it is built by the first call (as long as any other
// table) and shared after.
var GeneratorTable = sync.OnceValue(func() *FixedBase { return NewFixedBase(Generator()) })

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
	x1 := GeneratorTable().Mul(&u1)
	x2 := fb.Mul(&u2)
	var x secp256k1.JacobianPoint
	secp256k1.AddNonConst(&x1, &x2, &x)
	if (x.X.IsZero() && x.Y.IsZero()) || x.Z.IsZero() {
		return false
	}
	return xModQEquals(&x, r)
}

// xModQEquals reports whether the affine x coordinate of the Jacobian point
// x, reduced mod q, equals r, without a field inversion: the affine x is
// X/Z², so it tests r·Z² = X, and (r+q)·Z² = X when r+q is still below the
// field prime p (an x in [q, p), which happens with probability ≈ 2⁻¹²⁸).
func xModQEquals(x *secp256k1.JacobianPoint, r *secp256k1.ModNScalar) bool {
	var xx, z2, rf, t secp256k1.FieldVal
	xx.Set(&x.X).Normalize()
	z2.SquareVal(&x.Z)
	rb := r.Bytes()
	rf.SetBytes(&rb)
	if t.Mul2(&rf, &z2).Normalize().Equals(&xx) {
		return true
	}
	if rf.IsGtOrEqPrimeMinusOrder() {
		return false
	}
	rf.Add(&orderField).Normalize()
	return t.Mul2(&rf, &z2).Normalize().Equals(&xx)
}

// orderField is the group order q as a field element (q < p).
var orderField = func() secp256k1.FieldVal {
	var f secp256k1.FieldVal
	b := secp256k1.Params().N.FillBytes(make([]byte, 32))
	f.SetByteSlice(b)
	return f
}()
