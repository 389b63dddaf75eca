// Package arith does the modular arithmetic of GG20 presigning: exponentiation
// modulo Paillier moduli N² and ring-Pedersen moduli Ñ, accelerated with the
// Chinese remainder theorem when the party doing the computation knows the
// factorisation (its own Paillier key, its own Ñ).
//
// Methods come in two kinds (see ct.go). Those without a suffix take time
// independent of the values of their arguments and of the secrets their
// receiver holds: use them whenever an argument is secret. Those named
// …VarTime may take time that depends on their arguments, which must be
// public (proof responses and challenges, ciphertexts, revealed openings);
// they still never branch on a factorisation their receiver holds.
//
// A Modulus made with New computes plainly. One made with NewCRT computes
// VarTime exponentiations modulo the two coprime factors m₁, m₂, with a long
// exponent reduced modulo the order of the unit group of each factor, and
// recombines with Garner's formula. For a 2048-bit Ñ = P'·Q' this replaces
// one 2048-bit-modulus exponentiation with a long exponent by two
// 1024-bit-modulus exponentiations with exponents below 1024 bits, about
// 6–8× less work.
//
// Every function here works on non-negative integers and never panics on
// adversarial input: a negative exponent, or one longer than declared, yields
// 0, which can never equal a unit, so a verification that meets one fails
// closed.
package arith

import (
	"errors"
	"math/big"

	"filippo.io/bigmod"
)

var (
	one = big.NewInt(1)
	two = big.NewInt(2)
)

// Modulus is arithmetic modulo an odd m > 1, with an optional CRT
// decomposition.
type Modulus struct {
	m   *big.Int
	ct  *ctMod // nil if m is not an odd number above 1
	crt *crtParams
}

// crtParams is the factorisation m = m1·m2; everything in it is secret.
type crtParams struct {
	m1, m2 *ctMod
	o1, o2 *ctMod      // exponents of (Z/m1)*, (Z/m2)*: x^o1 ≡ 1 mod m1 for every unit x
	m2inv  *bigmod.Nat // m2⁻¹ mod m1
	m2m    *bigmod.Nat // m2 as an element modulo m
}

// New returns a Modulus that computes modulo m without any secret. m must be
// odd and greater than 1; for any other m the constant-time methods return 0.
func New(m *big.Int) *Modulus {
	M := &Modulus{m: new(big.Int).Set(m)}
	if m.Bit(0) == 1 {
		M.ct, _ = newCTMod(m)
	}
	return M
}

// NewCRT returns a Modulus for m = m1·m2 that computes with the CRT. m1 and
// m2 must be odd and coprime; o1 and o2 must be multiples of the exponents
// of the unit groups modulo m1 and m2 (for example φ(m1), φ(m2)). Its
// precomputation, m2⁻¹ mod m1 = m2^(o1−1) mod m1, is constant time.
func NewCRT(m1, o1, m2, o2 *big.Int) (*Modulus, error) {
	for _, v := range []*big.Int{m1, o1, m2, o2} {
		if v == nil || v.Cmp(one) <= 0 {
			return nil, errors.New("arith: CRT factors and orders must be greater than 1")
		}
	}
	if m1.Bit(0) == 0 || m2.Bit(0) == 0 {
		return nil, errors.New("arith: CRT factors must be odd")
	}
	c := &crtParams{}
	var err error
	for _, p := range []struct {
		dst **ctMod
		v   *big.Int
	}{{&c.m1, m1}, {&c.m2, m2}, {&c.o1, o1}, {&c.o2, o2}} {
		if *p.dst, err = newCTMod(p.v); err != nil {
			return nil, err
		}
	}
	M := New(new(big.Int).Mul(m1, m2))
	m2r, _ := c.m1.reduce(m2, c.m2.size)
	e := new(big.Int).Sub(o1, one)
	eb, _ := expBytes(e, c.o1.bits)
	c.m2inv = c.m1.exp(m2r, eb)
	clear(eb)
	WipeInt(e)
	// m2·m2⁻¹ ≡ 1 (mod m1) holds exactly when gcd(m1, m2) = 1 (and o1 is right).
	m2r.Mul(c.m2inv, c.m1.m)
	coprime := m2r.IsOne() == 1
	wipeNat(m2r)
	if !coprime {
		return nil, errors.New("arith: CRT factors are not coprime, or o1 is not a multiple of the group exponent")
	}
	c.m2m, _ = M.ct.reduce(m2, c.m2.size)
	M.crt = c
	return M, nil
}

// M returns the modulus. The caller must not modify it.
func (M *Modulus) M() *big.Int { return M.m }

// HasCRT reports whether M knows the factorisation of its modulus.
func (M *Modulus) HasCRT() bool { return M.crt != nil }

// Mul returns a·b mod m for 0 ≤ a, b < m in constant time (0 if an operand
// is out of range).
func (M *Modulus) Mul(a, b *big.Int) *big.Int {
	if M.ct == nil {
		return new(big.Int)
	}
	x, okA := M.ct.reduce(a, M.ct.size)
	y, okB := M.ct.reduce(b, M.ct.size)
	if !okA || !okB {
		return new(big.Int)
	}
	x.Mul(y, M.ct.m)
	out := M.ct.int(x)
	wipeNat(x)
	wipeNat(y)
	return out
}

// MulVarTime returns a·b mod m for public a, b.
func (M *Modulus) MulVarTime(a, b *big.Int) *big.Int {
	z := new(big.Int).Mul(a, b)
	return z.Mod(z, M.m)
}

// Exp returns x^e mod m for a secret base 0 ≤ x < m or a secret exponent
// 0 ≤ e < 2^eBits, in time that depends on eBits and the size of m only.
// eBits must come from a public bound (the range e was sampled from), not
// from e. It returns 0 if x or e is out of range. It does not use the CRT.
func (M *Modulus) Exp(x, e *big.Int, eBits int) *big.Int {
	if M.ct == nil {
		return new(big.Int)
	}
	if !fits(e, eBits) {
		return new(big.Int)
	}
	xn, ok := M.ct.reduce(x, M.ct.size)
	if !ok {
		return new(big.Int)
	}
	eb, _ := expBytes(e, eBits)
	r := M.ct.exp(xn, eb)
	out := M.ct.int(r)
	clear(eb)
	wipeNat(xn)
	wipeNat(r)
	return out
}

// ExpVarTime returns x^e mod m for a public x and a public e ≥ 0 (0 for
// e < 0). With the CRT it is constant time in the factors: it computes
// modulo each factor with bigmod, reducing a long e modulo the factor's
// group exponent in constant time, and recombines in constant time.
func (M *Modulus) ExpVarTime(x, e *big.Int) *big.Int {
	if e.Sign() < 0 {
		return new(big.Int)
	}
	if M.crt == nil {
		return new(big.Int).Exp(x, e, M.m)
	}
	c := M.crt
	xn := M.ct.reducePublic(x, M.m)
	r1 := c.expPart(xn, e, c.m1, c.o1)
	r2 := c.expPart(xn, e, c.m2, c.o2)
	r := c.combine(r1, r2, M.ct)
	out := M.ct.int(r)
	for _, v := range []*bigmod.Nat{xn, r1, r2} {
		wipeNat(v)
	}
	return out
}

// expPart returns x^e modulo the factor mi, for the public e. An e longer
// than the group exponent oi is replaced by r = (e − 2) mod oi, computed in
// constant time, and x^e by x^r·x²: for a unit x that is Euler's theorem,
// and for a non-unit modulo a prime or a prime square (every factor here)
// both sides are 0 once e ≥ 2.
func (c *crtParams) expPart(x *bigmod.Nat, e *big.Int, mi, oi *ctMod) *bigmod.Nat {
	xi := bigmod.NewNat().Mod(x, mi.m)
	defer wipeNat(xi)
	if e.BitLen() <= oi.bits {
		return mi.exp(xi, e.Bytes())
	}
	em2 := new(big.Int).Sub(e, two)
	r, _ := oi.reduce(em2, (em2.BitLen()+7)/8)
	rb := r.Bytes(oi.m)
	y := mi.exp(xi, rb)
	clear(rb)
	wipeNat(r)
	y.Mul(xi, mi.m)
	y.Mul(xi, mi.m)
	return y
}

// combine returns the r modulo m = m1·m2 with r ≡ r1 (mod m1), r ≡ r2
// (mod m2), by Garner's formula r = r2 + m2·((r1 − r2)·m2⁻¹ mod m1), in
// constant time. It overwrites r1 and r2 and returns r1.
func (c *crtParams) combine(r1, r2 *bigmod.Nat, M *ctMod) *bigmod.Nat {
	t := bigmod.NewNat().Mod(r2, c.m1.m)
	r1.Sub(t, c.m1.m)
	wipeNat(t)
	r1.Mul(c.m2inv, c.m1.m)
	r1.ExpandFor(M.m)
	r1.Mul(c.m2m, M.m) // m2·h < m
	r2.ExpandFor(M.m)
	return r1.Add(r2, M.m)
}

// IsUnit reports whether 0 < x < m and gcd(x, m) = 1, for a public x.
func (M *Modulus) IsUnit(x *big.Int) bool {
	return IsUnit(x, M.m)
}

// IsUnit reports whether x is non-nil, 0 < x < m and gcd(x, m) = 1. Its
// time depends on x and m: use it on public values.
func IsUnit(x, m *big.Int) bool {
	if x == nil || x.Sign() <= 0 || x.Cmp(m) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, x, m).Cmp(one) == 0
}

// wipe overwrites the CRT values it can reach and drops the factorisation,
// so that M computes plainly from then on. bigmod keeps its own copy of
// each factor inside its Modulus values, which this cannot overwrite; it
// drops the references to them.
func (M *Modulus) wipe() {
	if c := M.crt; c != nil {
		wipeNat(c.m2inv)
		wipeNat(c.m2m)
		M.crt = nil
	}
}

// Add returns a + b mod m for 0 ≤ a, b < m in constant time (0 if an
// operand is out of range).
func (M *Modulus) Add(a, b *big.Int) *big.Int {
	if M.ct == nil {
		return new(big.Int)
	}
	x, okA := M.ct.reduce(a, M.ct.size)
	y, okB := M.ct.reduce(b, M.ct.size)
	if !okA || !okB {
		return new(big.Int)
	}
	x.Add(y, M.ct.m)
	out := M.ct.int(x)
	wipeNat(x)
	wipeNat(y)
	return out
}

// Equal reports whether a ≡ b (mod m) for 0 ≤ a, b < 2^(8·size of m),
// comparing in constant time.
func (M *Modulus) Equal(a, b *big.Int) bool {
	if M.ct == nil {
		return false
	}
	x, okA := M.ct.reduce(a, M.ct.size)
	y, okB := M.ct.reduce(b, M.ct.size)
	if !okA || !okB {
		return false
	}
	eq := x.Equal(y) == 1
	wipeNat(x)
	wipeNat(y)
	return eq
}
