// Package zkmta proves and verifies the zero-knowledge proofs of the
// multiplicative-to-additive (MtA) share conversion in tss-lib's own wire
// format: Alice's range proof (mta.RangeProofAlice, GG18 Fig. 9) and Bob's
// proofs with and without the check X = g^x (mta.ProofBobWC / mta.ProofBob,
// GG18 Figs. 10 and 11).
//
// The equations and the Fiat–Shamir hash are the ones of tss-lib v2.0.2
// (crypto/mta/range_proof.go, proofs.go), so a proof made by tss-lib verifies
// here and the other way round. What differs:
//
//   - Arithmetic goes through package arith, so a party verifying a proof made
//     against its own Ñ, or under its own Paillier key, uses the CRT.
//   - Verification rewrites c^{-e} checks as u·c^e = … so no modular inverse
//     is needed, and it checks every input first (with package
//     tss/internal/mtacheck, which also checks tss-lib's own GG18 proofs
//     before tss-lib sees them): ciphertexts and commitments
//     are units, responses lie in their ranges (including the checks tss-lib
//     added after v2.0.2 in PR #289: s ≠ 1, z ≠ 1, s1 ≠ s2), points are on the
//     curve and not the identity.
//   - The range proof takes a session: with a nil session it hashes exactly as
//     tss-lib (which binds no session); with a session it uses tss-lib's
//     tagged hash with the session as tag, which GG20 presigning always does.
package zkmta

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/internal/mtacheck"
)

var (
	// ErrMalformed is returned when a proof or its statement fails an input
	// check (missing field, value out of range, not a unit, not a point).
	ErrMalformed = errors.New("zkmta: malformed proof or statement")
	// ErrInvalid is returned when a well-formed proof fails its equations.
	ErrInvalid = errors.New("zkmta: proof equations do not hold")
)

var (
	one = big.NewInt(1)
	q   = secp.Q
	q3  = new(big.Int).Exp(q, big.NewInt(3), nil)
	q7  = new(big.Int).Exp(q, big.NewInt(7), nil)
)

// Bit lengths of the public bounds that the provers' secrets lie below.
// Constant-time exponentiations take them as exponent widths, so their time
// shows the bound, never the value.
var (
	qBits  = q.BitLen()
	q3Bits = q3.BitLen()
	q7Bits = q7.BitLen()
)

// challenge hashes like tss-lib: SHA512_256i over the values when session is
// nil, SHA512_256i_TAGGED with the session as tag otherwise; then mod q
// (tss-lib's RejectionSample is a plain reduction).
func challenge(session []byte, vals ...*big.Int) *big.Int {
	var h *big.Int
	if session == nil {
		h = common.SHA512_256i(vals...)
	} else {
		h = common.SHA512_256i_TAGGED(session, vals...)
	}
	return h.Mod(h, q)
}

func gamma(pk *arith.Paillier) *big.Int { return new(big.Int).Add(pk.N, one) }

// ProveRange proves that c = Γ^m·r^N mod N² encrypts m with m < q³ (Alice's
// range proof, GG18 Fig. 9), against the verifier's ring-Pedersen
// parameters v. pk is the prover's own key (its N² may use the CRT).
func ProveRange(session []byte, pk *arith.Paillier, c, m, r *big.Int, v *arith.RingPedersen, rnd io.Reader) (*mta.RangeProofAlice, error) {
	if pk == nil || v == nil || c == nil || m == nil || r == nil {
		return nil, fmt.Errorf("%w: nil argument to ProveRange", ErrMalformed)
	}
	if m.Sign() < 0 || m.BitLen() > q3Bits || r.Sign() < 0 || r.BitLen() > pk.N.BitLen() {
		return nil, fmt.Errorf("%w: witness of ProveRange out of range", ErrMalformed)
	}
	nt := v.N()
	qNt := new(big.Int).Mul(q, nt)
	q3Nt := new(big.Int).Mul(q3, nt)
	alpha, err := arith.RandomInt(rnd, q3)
	if err != nil {
		return nil, err
	}
	beta, betaN, err := pk.RandomNonce(rnd)
	if err != nil {
		return nil, err
	}
	gam, err := arith.RandomInt(rnd, q3Nt)
	if err != nil {
		return nil, err
	}
	rho, err := arith.RandomInt(rnd, qNt)
	if err != nil {
		return nil, err
	}
	z := v.Commit(m, q3Bits, rho, qNt.BitLen())
	u := pk.NN.Mul(pk.GammaExp(alpha), betaN)
	w := v.Commit(alpha, q3Bits, gam, q3Nt.BitLen())
	e := challenge(session, pk.N, gamma(pk), c, z, u, w)

	// s = r^e·β mod N: r and β are secret, e is not.
	s := pk.ModN.Mul(pk.ModN.Exp(r, e, qBits), beta)
	s1 := new(big.Int).Mul(e, m)
	s1.Add(s1, alpha)
	s2 := new(big.Int).Mul(e, rho)
	s2.Add(s2, gam)
	arith.WipeInt(alpha)
	arith.WipeInt(rho)
	arith.WipeInt(gam)
	arith.WipeInt(beta)
	return &mta.RangeProofAlice{Z: z, U: u, W: w, S: s, S1: s1, S2: s2}, nil
}

// VerifyRange checks a range proof that c, under the prover's key pk, holds a
// plaintext below q³, made against the verifier's parameters v.
func VerifyRange(session []byte, pf *mta.RangeProofAlice, pk *arith.Paillier, c *big.Int, v *arith.RingPedersen) error {
	if pf == nil || pk == nil || v == nil || c == nil || !pf.ValidateBasic() {
		return fmt.Errorf("%w: missing range proof field or argument", ErrMalformed)
	}
	if !pk.IsCiphertext(c) {
		return fmt.Errorf("%w: ciphertext is not a unit modulo N²", ErrMalformed)
	}
	// Units, response ranges and tss-lib PR #289 (after v2.0.2): the checks
	// package tss also applies to tss-lib's GG18 messages.
	if err := mtacheck.RangeProof(pf, mtacheck.Moduli{N: pk.N, NN: pk.NN.M(), NTilde: v.N()}); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e := challenge(session, pk.N, gamma(pk), c, pf.Z, pf.U, pf.W)

	// Γ^s1 · s^N ≟ u · c^e  (mod N²)
	left := pk.NN.MulVarTime(pk.GammaExp(pf.S1), pk.NN.ExpVarTime(pf.S, pk.N))
	right := pk.NN.MulVarTime(pf.U, pk.NN.ExpVarTime(c, e))
	if left.Cmp(right) != 0 {
		return fmt.Errorf("%w: Paillier equation", ErrInvalid)
	}
	// h1^s1 · h2^s2 ≟ w · z^e  (mod Ñ)
	left = v.CommitVarTime(pf.S1, pf.S2)
	right = v.NT.MulVarTime(pf.W, v.NT.ExpVarTime(pf.Z, e))
	if left.Cmp(right) != 0 {
		return fmt.Errorf("%w: ring-Pedersen equation", ErrInvalid)
	}
	return nil
}
