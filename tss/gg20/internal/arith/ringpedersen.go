package arith

import (
	"errors"
	"math/big"
)

// RingPedersen holds ring-Pedersen parameters (Ñ, h₁, h₂) of one party, the
// verifier of the range and consistency proofs made against them. When it
// comes from NewRingPedersenSecret, Ñ computes with the CRT.
type RingPedersen struct {
	NT     *Modulus
	H1, H2 *big.Int

	pub        *comb // tables of h₁, h₂ modulo Ñ (NewRingPedersenPrecomputed)
	crt1, crt2 *comb // tables of h₁, h₂ modulo each CRT factor (secret)
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
	return &RingPedersen{NT: New(nTilde), H1: new(big.Int).Set(h1), H2: new(big.Int).Set(h2)}, nil
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
	if new(big.Int).Mul(p1, q1).Cmp(nTilde) != 0 {
		return nil, errors.New("arith: Ñ != (2P+1)(2Q+1) for the given P, Q")
	}
	m, err := NewCRT(p1, new(big.Int).Lsh(P, 1), q1, new(big.Int).Lsh(Q, 1))
	if err != nil {
		return nil, err
	}
	rp := &RingPedersen{NT: m, H1: new(big.Int).Set(h1), H2: new(big.Int).Set(h2)}
	c := m.crt
	rp.crt1 = newComb(c.m1, []*big.Int{h1, h2}, c.o1.BitLen(), combRowsRun)
	rp.crt2 = newComb(c.m2, []*big.Int{h1, h2}, c.o2.BitLen(), combRowsRun)
	return rp, nil
}

// NewRingPedersenPrecomputed is NewRingPedersen with fixed-base tables for
// h₁ and h₂, for a party that makes many commitments against another
// party's parameters (its range, Bob and PDL proofs). Building the tables
// costs about four commitments; each commitment then costs less than half
// of one without them. The result is safe for concurrent use.
func NewRingPedersenPrecomputed(nTilde, h1, h2 *big.Int) (*RingPedersen, error) {
	rp, err := NewRingPedersen(nTilde, h1, h2)
	if err != nil {
		return nil, err
	}
	// Prover exponents go up to q³·Ñ·2 (about |Ñ| + 769 bits).
	rp.pub = newComb(rp.NT.m, []*big.Int{rp.H1, rp.H2}, nTilde.BitLen()+3*256+16, combRowsShared)
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

// Commit returns h₁^x · h₂^r mod Ñ for x, r ≥ 0 (0 if either is negative,
// like Modulus.Exp).
func (rp *RingPedersen) Commit(x, r *big.Int) *big.Int {
	if x.Sign() < 0 || r.Sign() < 0 {
		return new(big.Int)
	}
	if c := rp.NT.crt; c != nil && rp.crt1 != nil {
		// h₁, h₂ are units, so exponents reduce modulo each factor's group
		// order.
		r1 := rp.crt1.exp(new(big.Int).Mod(x, c.o1), new(big.Int).Mod(r, c.o1))
		r2 := rp.crt2.exp(new(big.Int).Mod(x, c.o2), new(big.Int).Mod(r, c.o2))
		return c.combine(r1, r2)
	}
	if rp.pub != nil && x.BitLen() <= rp.pub.maxBits() && r.BitLen() <= rp.pub.maxBits() {
		return rp.pub.exp(x, r)
	}
	return rp.NT.Exp2(rp.H1, x, rp.H2, r)
}

// Wipe overwrites the CRT factors, if any; rp then computes without them.
func (rp *RingPedersen) Wipe() {
	for _, c := range []*comb{rp.crt1, rp.crt2} {
		if c != nil {
			c.wipe()
		}
	}
	rp.crt1, rp.crt2 = nil, nil
	rp.NT.wipe()
}
