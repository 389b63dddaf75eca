// Package arith does the modular arithmetic of GG20 presigning: exponentiation
// modulo Paillier moduli N² and ring-Pedersen moduli Ñ, accelerated with the
// Chinese remainder theorem when the party doing the computation knows the
// factorisation (its own Paillier key, its own Ñ).
//
// A Modulus made with New computes plainly. One made with NewCRT computes each
// exponentiation modulo the two coprime factors m₁, m₂ with the exponent
// reduced modulo the order of the unit group of each factor, and recombines
// with Garner's formula. For a 2048-bit Ñ = P'·Q' this replaces one
// 2048-bit-modulus exponentiation with a long exponent by two 1024-bit-modulus
// exponentiations with exponents below 1024 bits, about 6–8× less work.
//
// Every function here works on non-negative integers and never panics on
// adversarial input: a base that shares a factor with the modulus is handled
// without exponent reduction, and a negative exponent yields 0, which can
// never equal a unit, so a verification that meets one fails closed.
package arith

import (
	"errors"
	"math/big"
)

var one = big.NewInt(1)

// Modulus is arithmetic modulo m, with an optional CRT decomposition.
type Modulus struct {
	m   *big.Int
	crt *crtParams
}

type crtParams struct {
	m1, m2 *big.Int // coprime factors, m = m1·m2
	o1, o2 *big.Int // exponents of (Z/m1)*, (Z/m2)*: x^o1 ≡ 1 mod m1 for every unit x
	m2inv  *big.Int // m2⁻¹ mod m1
}

// New returns a Modulus that computes modulo m without any secret. m must be
// greater than 1.
func New(m *big.Int) *Modulus {
	return &Modulus{m: new(big.Int).Set(m)}
}

// NewCRT returns a Modulus for m = m1·m2 that computes with the CRT. o1 and o2
// must be multiples of the orders of the unit groups modulo m1 and m2 (for
// example φ(m1), φ(m2)); m1 and m2 must be coprime.
func NewCRT(m1, o1, m2, o2 *big.Int) (*Modulus, error) {
	for _, v := range []*big.Int{m1, o1, m2, o2} {
		if v == nil || v.Cmp(one) <= 0 {
			return nil, errors.New("arith: CRT factors and orders must be greater than 1")
		}
	}
	inv := new(big.Int).ModInverse(m2, m1)
	if inv == nil {
		return nil, errors.New("arith: CRT factors are not coprime")
	}
	return &Modulus{
		m: new(big.Int).Mul(m1, m2),
		crt: &crtParams{
			m1: new(big.Int).Set(m1), m2: new(big.Int).Set(m2),
			o1: new(big.Int).Set(o1), o2: new(big.Int).Set(o2),
			m2inv: inv,
		},
	}, nil
}

// M returns the modulus. The caller must not modify it.
func (M *Modulus) M() *big.Int { return M.m }

// HasCRT reports whether M knows the factorisation of its modulus.
func (M *Modulus) HasCRT() bool { return M.crt != nil }

// Mul returns a·b mod m.
func (M *Modulus) Mul(a, b *big.Int) *big.Int {
	z := new(big.Int).Mul(a, b)
	return z.Mod(z, M.m)
}

// Reduce returns x mod m in [0, m).
func (M *Modulus) Reduce(x *big.Int) *big.Int { return new(big.Int).Mod(x, M.m) }

// Exp returns x^e mod m for e ≥ 0. For e < 0 it returns 0 (see the package
// comment).
func (M *Modulus) Exp(x, e *big.Int) *big.Int {
	if e.Sign() < 0 {
		return new(big.Int)
	}
	if M.crt == nil {
		return new(big.Int).Exp(x, e, M.m)
	}
	c := M.crt
	return c.combine(expReduced(x, e, c.m1, c.o1), expReduced(x, e, c.m2, c.o2))
}

// combine returns the r mod m1·m2 with r ≡ r1 (mod m1), r ≡ r2 (mod m2), by
// Garner's formula r = r2 + m2·((r1 − r2)·m2⁻¹ mod m1). It reuses r1.
func (c *crtParams) combine(r1, r2 *big.Int) *big.Int {
	t := r1.Sub(r1, r2)
	t.Mul(t, c.m2inv)
	t.Mod(t, c.m1)
	t.Mul(t, c.m2)
	return t.Add(t, r2)
}

// expReduced returns x^e mod m, reducing e modulo the group exponent o when x
// is a unit modulo m (Euler). For a non-unit the exponent is used as given.
func expReduced(x, e, m, o *big.Int) *big.Int {
	xm := new(big.Int).Mod(x, m)
	if e.Cmp(o) >= 0 && new(big.Int).GCD(nil, nil, xm, m).Cmp(one) == 0 {
		return xm.Exp(xm, new(big.Int).Mod(e, o), m)
	}
	return xm.Exp(xm, e, m)
}

// Exp2 returns x1^e1 · x2^e2 mod m.
func (M *Modulus) Exp2(x1, e1, x2, e2 *big.Int) *big.Int {
	return M.Mul(M.Exp(x1, e1), M.Exp(x2, e2))
}

// IsUnit reports whether 0 < x < m and gcd(x, m) = 1.
func (M *Modulus) IsUnit(x *big.Int) bool {
	return IsUnit(x, M.m)
}

// IsUnit reports whether x is non-nil, 0 < x < m and gcd(x, m) = 1.
func IsUnit(x, m *big.Int) bool {
	if x == nil || x.Sign() <= 0 || x.Cmp(m) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, x, m).Cmp(one) == 0
}

// wipe overwrites the CRT factors and drops them, so that M computes plainly
// from then on.
func (M *Modulus) wipe() {
	if c := M.crt; c != nil {
		for _, v := range []*big.Int{c.m1, c.m2, c.o1, c.o2, c.m2inv} {
			WipeInt(v)
		}
		M.crt = nil
	}
}
