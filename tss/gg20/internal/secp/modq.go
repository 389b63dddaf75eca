package secp

import (
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ModQ is an integer modulo the group order q, for secrets such as kᵢ, σᵢ
// and the shares they are computed from. Its arithmetic is dcrd's
// ModNScalar, which takes time independent of the values; math/big's
// Mul and Mod on the same secrets would not (the division behind Mod
// branches on the operands). The zero value is 0.
type ModQ struct{ s secp256k1.ModNScalar }

// NewModQ returns k mod q, reduced without branching on the value of k
// (only k's sign and its length in 256-bit chunks matter).
func NewModQ(k *big.Int) *ModQ {
	b := secretScalar(k)
	z := new(ModQ)
	z.s.SetBytes(&b)
	clear(b[:])
	return z
}

// Add sets z = z + x mod q and returns z.
func (z *ModQ) Add(x *ModQ) *ModQ {
	z.s.Add(&x.s)
	return z
}

// Sub sets z = z − x mod q and returns z.
func (z *ModQ) Sub(x *ModQ) *ModQ {
	var n secp256k1.ModNScalar
	n.NegateVal(&x.s)
	z.s.Add(&n)
	n.Zero()
	return z
}

// Mul sets z = z·x mod q and returns z.
func (z *ModQ) Mul(x *ModQ) *ModQ {
	z.s.Mul(&x.s)
	return z
}

// Int returns z as an integer in [0, q). math/big stores it without leading
// zero words, so only its length in 64-bit words shows in what follows.
func (z *ModQ) Int() *big.Int {
	b := z.s.Bytes()
	out := new(big.Int).SetBytes(b[:])
	clear(b[:])
	return out
}

// Wipe sets z to 0.
func (z *ModQ) Wipe() { z.s.Zero() }

// ModQFromBytes returns the 32-byte big-endian integer b as a ModQ; ok is
// false if b is not 32 bytes or not below q (the comparison itself does not
// branch on b).
func ModQFromBytes(b []byte) (z *ModQ, ok bool) {
	z = new(ModQ)
	if len(b) != 32 {
		return z, false
	}
	var a [32]byte
	copy(a[:], b)
	overflow := z.s.SetBytes(&a)
	clear(a[:])
	return z, overflow == 0
}

// IsZero reports whether z is 0.
func (z *ModQ) IsZero() bool { return z.s.IsZero() }

// MulAdd returns e·x + a mod q with constant-time arithmetic: the response
// z = a + e·x of a Schnorr-type proof for a secret witness x, a secret
// nonce a and a public challenge e.
func MulAdd(e, x, a *big.Int) *big.Int {
	xq, aq := NewModQ(x), NewModQ(a)
	z := NewModQ(e)
	out := z.Mul(xq).Add(aq).Int()
	z.Wipe()
	xq.Wipe()
	aq.Wipe()
	return out
}
