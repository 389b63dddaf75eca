package arith

import (
	"errors"
	"math/big"

	"filippo.io/bigmod"
)

// RingPedersen holds ring-Pedersen parameters (Ñ, h₁, h₂) of one party, the
// verifier of the range and consistency proofs made against them. When it
// comes from NewRingPedersenSecret, Ñ computes with the CRT.
type RingPedersen struct {
	NT     *Modulus
	H1, H2 *big.Int

	h   [2]*bigmod.Nat    // h₁, h₂ modulo Ñ
	crt [2][2]*bigmod.Nat // [factor][base]: h₁, h₂ modulo P' and Q' (secret)
}

// MinModulusBits and MaxModulusBits bound the Paillier N and the Ñ this
// package accepts. tss-lib v2.0.2 keygen makes both 2048 bits; the upper
// bound keeps a malicious key from making every proof arbitrarily slow.
const (
	MinModulusBits = 2048
	MaxModulusBits = 4096
)

// NewRingPedersen returns public ring-Pedersen parameters after checking that
// Ñ has an acceptable size and h₁, h₂ are distinct units other than 1.
func NewRingPedersen(nTilde, h1, h2 *big.Int) (*RingPedersen, error) {
	if err := checkRingPedersen(nTilde, h1, h2); err != nil {
		return nil, err
	}
	return newRingPedersen(New(nTilde), h1, h2), nil
}

func newRingPedersen(nt *Modulus, h1, h2 *big.Int) *RingPedersen {
	rp := &RingPedersen{NT: nt, H1: new(big.Int).Set(h1), H2: new(big.Int).Set(h2)}
	for i, h := range []*big.Int{h1, h2} {
		rp.h[i] = nt.ct.reducePublic(h, nt.m)
	}
	return rp
}

// NewRingPedersenSecret returns ring-Pedersen parameters with CRT arithmetic
// for a party that knows the factorisation Ñ = (2P+1)(2Q+1), P and Q being
// the Sophie Germain primes that tss-lib's keygen pre-parameters keep
// (ecdsa/keygen/prepare.go: NTildei = P'·Q' with P' = 2P+1, Q' = 2Q+1).
func NewRingPedersenSecret(nTilde, h1, h2, P, Q *big.Int) (*RingPedersen, error) {
	if err := checkRingPedersen(nTilde, h1, h2); err != nil {
		return nil, err
	}
	if P == nil || Q == nil || P.Cmp(one) <= 0 || Q.Cmp(one) <= 0 {
		return nil, errors.New("arith: missing ring-Pedersen factors")
	}
	p1 := new(big.Int).Lsh(P, 1)
	p1.Add(p1, one)
	q1 := new(big.Int).Lsh(Q, 1)
	q1.Add(q1, one)
	defer WipeInt(p1)
	defer WipeInt(q1)
	if new(big.Int).Mul(p1, q1).Cmp(nTilde) != 0 {
		return nil, errors.New("arith: Ñ != (2P+1)(2Q+1) for the given P, Q")
	}
	o1, o2 := new(big.Int).Lsh(P, 1), new(big.Int).Lsh(Q, 1)
	defer WipeInt(o1)
	defer WipeInt(o2)
	m, err := NewCRT(p1, o1, q1, o2)
	if err != nil {
		return nil, err
	}
	rp := newRingPedersen(m, h1, h2)
	for i, f := range []*ctMod{m.crt.m1, m.crt.m2} {
		for k, h := range rp.h {
			rp.crt[i][k] = bigmod.NewNat().Mod(h, f.m)
		}
	}
	return rp, nil
}

func checkRingPedersen(nTilde, h1, h2 *big.Int) error {
	if nTilde == nil || h1 == nil || h2 == nil {
		return errors.New("arith: missing ring-Pedersen parameter")
	}
	if b := nTilde.BitLen(); b < MinModulusBits || b > MaxModulusBits || nTilde.Bit(0) == 0 {
		return errors.New("arith: Ñ must be an odd modulus of 2048 to 4096 bits")
	}
	if !IsUnit(h1, nTilde) || !IsUnit(h2, nTilde) || h1.Cmp(one) == 0 || h2.Cmp(one) == 0 || h1.Cmp(h2) == 0 {
		return errors.New("arith: h1, h2 must be distinct units modulo Ñ other than 1")
	}
	return nil
}

// N returns Ñ. The caller must not modify it.
func (rp *RingPedersen) N() *big.Int { return rp.NT.m }

// Commit returns h₁^x · h₂^r mod Ñ for secret 0 ≤ x < 2^xBits and
// 0 ≤ r < 2^rBits, in time that depends on xBits, rBits and the size of Ñ
// only; xBits and rBits must come from the public bounds x and r were
// sampled below. It returns 0 if x or r is out of range.
//
// With the CRT (the owner's parameters), an exponent longer than the
// factor's group order 2P (or 2Q) is first reduced modulo it in constant
// time; h₁ and h₂ are units, so that changes nothing.
func (rp *RingPedersen) Commit(x *big.Int, xBits int, r *big.Int, rBits int) *big.Int {
	if !fits(x, xBits) || !fits(r, rBits) {
		return new(big.Int)
	}
	if c := rp.NT.crt; c != nil && rp.crt[0][0] != nil {
		var parts [2]*bigmod.Nat
		for i, f := range []struct{ m, o *ctMod }{{c.m1, c.o1}, {c.m2, c.o2}} {
			a := rp.expFactor(f.m, f.o, rp.crt[i][0], x, xBits)
			b := rp.expFactor(f.m, f.o, rp.crt[i][1], r, rBits)
			parts[i] = a.Mul(b, f.m.m)
			wipeNat(b)
		}
		res := c.combine(parts[0], parts[1], rp.NT.ct)
		out := rp.NT.ct.int(res)
		wipeNat(res)
		wipeNat(parts[1])
		return out
	}
	ct := rp.NT.ct
	xb, _ := expBytes(x, xBits)
	rb, _ := expBytes(r, rBits)
	a := ct.exp(rp.h[0], xb)
	b := ct.exp(rp.h[1], rb)
	clear(xb)
	clear(rb)
	a.Mul(b, ct.m)
	out := ct.int(a)
	wipeNat(a)
	wipeNat(b)
	return out
}

// expFactor returns h^e modulo the factor m with group order o, for
// 0 ≤ e < 2^eBits.
func (rp *RingPedersen) expFactor(m, o *ctMod, h *bigmod.Nat, e *big.Int, eBits int) *bigmod.Nat {
	var eb []byte
	if eBits > o.bits {
		r, _ := o.reduce(e, (eBits+7)/8)
		eb = r.Bytes(o.m)
		wipeNat(r)
	} else {
		eb, _ = expBytes(e, eBits)
	}
	out := m.exp(h, eb)
	clear(eb)
	return out
}

// CommitVarTime returns h₁^x · h₂^r mod Ñ for public x, r ≥ 0 (0 if either
// is negative), in time that depends on their lengths — and, with the CRT,
// never on the factors.
func (rp *RingPedersen) CommitVarTime(x, r *big.Int) *big.Int {
	if x.Sign() < 0 || r.Sign() < 0 {
		return new(big.Int)
	}
	return rp.Commit(x, x.BitLen(), r, r.BitLen())
}

// Wipe overwrites the values derived from the factors, if any, and drops
// the factorisation; rp then computes without it.
func (rp *RingPedersen) Wipe() {
	for i := range rp.crt {
		for k := range rp.crt[i] {
			wipeNat(rp.crt[i][k])
			rp.crt[i][k] = nil
		}
	}
	rp.NT.wipe()
}
