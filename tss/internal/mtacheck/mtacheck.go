// Package mtacheck checks the public values of the MtA zero-knowledge
// proofs of tss-lib v2.0.2 (crypto/mta: Alice's range proof, GG18 Fig. 9;
// Bob's proofs with and without check, GG18 Figs. 10 and 11) before anything
// exponentiates them: every value present, every group element a unit of
// its group, every response inside the interval an honest prover's response
// lies in. It does no modular exponentiation, only comparisons and gcds.
//
// Two verifiers share it: package tss checks inbound GG18 signing messages
// with it before tss-lib sees them (tss-lib v2.0.2 lacks several of these
// checks and dereferences nil on some inputs), and tss/gg20's zkmta checks
// its own proofs with it before their equations.
//
// The checks are those of tss-lib v2.0.2's Verify methods, the ones tss-lib
// added after v2.0.2 in PR #289 (range proof: s ≠ 1, z ≠ 1, s1 ≠ s2), and
// the upper bounds of later upstream versions (s2, t2 < 2·q³·Ñ), plus the
// ciphertext check upstream added to RangeProofAlice.Verify after v2.0.2
// (c a unit modulo N²; tss-lib v2.0.2 computes c^(−e), which is nil for a
// non-unit, and then dereferences it).
package mtacheck

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

var (
	// ErrMissing means a proof or one of its values is absent.
	ErrMissing = errors.New("mtacheck: proof value missing")
	// ErrNotUnit means a value that must be a unit of Z*_N, Z*_N² or Z*_Ñ is
	// not (zero, out of range, or sharing a factor with the modulus).
	ErrNotUnit = errors.New("mtacheck: value is not a unit of its group")
	// ErrRange means a response lies outside the interval an honest
	// prover's response lies in, or is degenerate.
	ErrRange = errors.New("mtacheck: response outside its range")
)

var (
	one = big.NewInt(1)
	// Q is the order of secp256k1. Callers must not modify it.
	Q  = new(big.Int).Set(tss.S256().Params().N)
	q3 = new(big.Int).Exp(Q, big.NewInt(3), nil)
	q6 = new(big.Int).Exp(Q, big.NewInt(6), nil)
	q7 = new(big.Int).Exp(Q, big.NewInt(7), nil)
)

// Moduli are the moduli a proof is checked against: the Paillier modulus N
// of the key the ciphertexts are under (and N², passed in so that callers
// that keep it do not recompute it) and the ring-Pedersen modulus Ñ of the
// verifier.
type Moduli struct {
	N, NN, NTilde *big.Int
}

// IsUnit reports whether x is non-nil, 0 < x < m and gcd(x, m) = 1.
func IsUnit(x, m *big.Int) bool {
	if x == nil || m == nil || x.Sign() <= 0 || x.Cmp(m) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, x, m).Cmp(one) == 0
}

// IsCiphertext reports whether c is a unit modulo N² (0 < c < N² and
// gcd(c, N) = 1), the only values a Paillier encryption under N produces.
func IsCiphertext(c, n, nn *big.Int) bool {
	if c == nil || n == nil || nn == nil || c.Sign() <= 0 || c.Cmp(nn) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, c, n).Cmp(one) == 0
}

// bound2 returns 2·q³·Ñ: responses e·ρ + γ with ρ < q·Ñ (or q³·Ñ) and
// γ < q³·Ñ stay below it.
func bound2(nTilde *big.Int) *big.Int {
	b := new(big.Int).Mul(q3, nTilde)
	return b.Lsh(b, 1)
}

func inRange(x, lo, hi *big.Int, inclusive bool) bool {
	if x.Cmp(lo) < 0 {
		return false
	}
	c := x.Cmp(hi)
	return c < 0 || (inclusive && c == 0)
}

// RangeProof checks the values of Alice's range proof (GG18 Fig. 9) made
// for a ciphertext under m.N, against the verifier's Ñ: z, w units mod Ñ;
// u a unit mod N²; s a unit mod N; s1 ∈ [q, q³]; s2 ∈ [q, 2q³Ñ); and
// s ≠ 1, z ≠ 1, s1 ≠ s2 (tss-lib PR #289). It does not check the
// ciphertext itself (see IsCiphertext) nor the proof's equations.
func RangeProof(pf *mta.RangeProofAlice, m Moduli) error {
	if pf == nil || !pf.ValidateBasic() {
		return fmt.Errorf("%w: range proof", ErrMissing)
	}
	switch {
	case !IsUnit(pf.Z, m.NTilde):
		return fmt.Errorf("%w: range proof z", ErrNotUnit)
	case !IsUnit(pf.W, m.NTilde):
		return fmt.Errorf("%w: range proof w", ErrNotUnit)
	case !IsCiphertext(pf.U, m.N, m.NN):
		return fmt.Errorf("%w: range proof u", ErrNotUnit)
	case !IsUnit(pf.S, m.N):
		return fmt.Errorf("%w: range proof s", ErrNotUnit)
	case !inRange(pf.S1, Q, q3, true):
		return fmt.Errorf("%w: range proof s1 outside [q, q³]", ErrRange)
	case !inRange(pf.S2, Q, bound2(m.NTilde), false):
		return fmt.Errorf("%w: range proof s2 outside [q, 2q³Ñ)", ErrRange)
	case pf.S.Cmp(one) == 0, pf.Z.Cmp(one) == 0, pf.S1.Cmp(pf.S2) == 0:
		return fmt.Errorf("%w: range proof has s = 1, z = 1 or s1 = s2", ErrRange)
	}
	return nil
}

// BobProof checks the values of Bob's proof (GG18 Figs. 10 and 11) made
// under Alice's key m.N and Alice's Ñ: z, z', t, w units mod Ñ; v a unit
// mod N²; s a unit mod N; s1 ∈ [q, q³]; t1 ∈ [q, q⁷]; s2, t2 ∈ [q, 2q³Ñ).
// The point u of the proof with check is the caller's to check.
func BobProof(pf *mta.ProofBob, m Moduli) error {
	if pf == nil || !pf.ValidateBasic() {
		return fmt.Errorf("%w: Bob proof", ErrMissing)
	}
	b2 := bound2(m.NTilde)
	switch {
	case !IsUnit(pf.Z, m.NTilde), !IsUnit(pf.ZPrm, m.NTilde), !IsUnit(pf.T, m.NTilde), !IsUnit(pf.W, m.NTilde):
		return fmt.Errorf("%w: Bob proof z, z', t or w", ErrNotUnit)
	case !IsCiphertext(pf.V, m.N, m.NN):
		return fmt.Errorf("%w: Bob proof v", ErrNotUnit)
	case !IsUnit(pf.S, m.N):
		return fmt.Errorf("%w: Bob proof s", ErrNotUnit)
	case !inRange(pf.S1, Q, q3, true):
		return fmt.Errorf("%w: Bob proof s1 outside [q, q³]", ErrRange)
	case !inRange(pf.T1, Q, q7, true):
		return fmt.Errorf("%w: Bob proof t1 outside [q, q⁷]", ErrRange)
	case !inRange(pf.S2, Q, b2, false), !inRange(pf.T2, Q, b2, false):
		return fmt.Errorf("%w: Bob proof s2 or t2 outside [q, 2q³Ñ)", ErrRange)
	}
	return nil
}

// Plaintext checks the decryption α' of Bob's MtA ciphertext: an honest Bob
// sends Enc(a·b + β') with a, b < q and β' < q⁵, so α' < q⁶. A larger α'
// (a "negative" β' that wraps modulo N) makes α' mod q depend on whether
// a·b crossed a boundary Bob chose, which leaks Alice's secret a bit by bit
// through whether the signature verifies (Tymokhanov and Shlomovits,
// "Alpha-Rays", eprint 2021/1621). Later tss-lib versions reject it after
// decryption; so does this check.
func Plaintext(alpha *big.Int) error {
	if alpha == nil || alpha.Sign() < 0 || alpha.Cmp(q6) >= 0 {
		return fmt.Errorf("%w: MtA plaintext not below q⁶", ErrRange)
	}
	return nil
}
