package gg20

import (
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// messageScalar reduces a digest to m ∈ Z_q the way ECDSA verifiers do (Go's
// crypto/ecdsa, dcrd's secp256k1/ecdsa): the leftmost 256 bits, then mod q.
// A digest that gives 0 is refused: it would make sᵢ independent of the
// message.
func messageScalar(digest []byte) (*big.Int, error) {
	b := digest
	if len(b) > 32 {
		b = b[:32]
	}
	m := new(big.Int).SetBytes(b)
	m.Mod(m, secp.Q)
	if m.Sign() == 0 {
		return nil, ErrDigest
	}
	return m, nil
}

// SignShare returns this party's share of the signature of digest (GG20 §3,
// Phase 7): sᵢ = m·kᵢ + r·σᵢ mod q, with m the digest reduced as ECDSA does.
// It then wipes kᵢ and σᵢ: a presignature signs once, and a second call
// returns [ErrUsed]. The caller must have recorded the presignature as used,
// durably, before it releases sᵢ.
func (ps *Presignature) SignShare(digest []byte) (*big.Int, error) {
	if ps.used {
		return nil, ErrUsed
	}
	m, err := messageScalar(digest)
	if err != nil {
		return nil, err
	}
	s := signShare(m, ps.r, secp.NewModQ(ps.k), secp.NewModQ(ps.sigma))
	ps.Wipe()
	return s, nil
}

// signShare returns m·k + r·σ mod q with constant-time arithmetic and wipes
// k and σ.
func signShare(m, r *big.Int, k, sigma *secp.ModQ) *big.Int {
	s := secp.NewModQ(m).Mul(k)
	t := secp.NewModQ(r).Mul(sigma)
	out := s.Add(t).Int()
	for _, v := range []*secp.ModQ{k, sigma, s, t} {
		v.Wipe()
	}
	return out
}

// VerifyShare checks signer j's share sⱼ of the signature of digest:
// R^{sⱼ} = R̄ⱼ^m · Sⱼ^r. A failing share yields a *[CulpritError] naming j with
// [ErrBadShare] ([ErrMalformed] for a share outside [0, q)).
func (ps *Presignature) VerifyShare(j int, digest []byte, sj *big.Int) error {
	if j < 0 || j >= len(ps.signers) {
		return fmt.Errorf("%w: no signer %d among %d", ErrMalformed, j, len(ps.signers))
	}
	m, err := messageScalar(digest)
	if err != nil {
		return err
	}
	return ps.verifyShare(j, m, sj)
}

func (ps *Presignature) verifyShare(j int, m, sj *big.Int) error {
	if sj == nil || sj.Sign() < 0 || sj.Cmp(secp.Q) >= 0 {
		return &CulpritError{Culprits: []int{j}, Round: RoundOnline, Err: ErrMalformed}
	}
	left := ps.bigR.MulVarTime(sj)
	right := ps.rbar[j].MulVarTime(m).Add(ps.s[j].MulVarTime(ps.r))
	if !left.Equal(right) {
		return &CulpritError{Culprits: []int{j}, Round: RoundOnline, Err: ErrBadShare}
	}
	return nil
}

// Combine adds the shares (indexed by signer index, one per signer) into the
// signature (r, s) of digest, normalised to low s, checks it against the
// presignature's public key y' and returns it with its recovery ID (bit 0:
// parity of the y of the signature's R; bit 1: R.x ≥ q). If the signature
// does not verify, every share is checked with [Presignature.VerifyShare] and
// the error is a *[CulpritError] naming all signers whose share fails
// ([ErrBadShare]).
func (ps *Presignature) Combine(digest []byte, shares []*big.Int) (r, s *big.Int, recoveryID byte, err error) {
	m, err := messageScalar(digest)
	if err != nil {
		return nil, nil, 0, err
	}
	sum, err := sumShares(shares, len(ps.signers))
	if err != nil {
		return nil, nil, 0, err
	}
	q := secp.Q
	Rx, _ := ps.bigR.XY()
	if ps.bigR.YIsOdd() {
		recoveryID |= 1
	}
	if Rx.Cmp(q) >= 0 {
		recoveryID |= 2
	}
	halfQ := new(big.Int).Rsh(q, 1)
	if sum.Cmp(halfQ) > 0 {
		sum.Sub(q, sum)
		recoveryID ^= 1
	}
	if sum.Sign() != 0 && verifySignature(ps.pub, digest, ps.r, sum) {
		return new(big.Int).Set(ps.r), sum, recoveryID, nil
	}
	f := newFaults(RoundOnline)
	for j, sj := range shares {
		if err := ps.verifyShare(j, m, sj); err != nil {
			f.add(j, ErrBadShare)
		}
	}
	if !f.empty() {
		return nil, nil, 0, f.err()
	}
	return nil, nil, 0, ErrInvalidSignature
}

// sumShares adds the signers' shares mod q after checking there is one per
// signer and each lies in [0, q); a bad share is blamed on its signer.
func sumShares(shares []*big.Int, n int) (*big.Int, error) {
	if len(shares) != n {
		return nil, fmt.Errorf("%w: %d shares for %d signers", ErrMalformed, len(shares), n)
	}
	f := newFaults(RoundOnline)
	sum := new(big.Int)
	for j, sj := range shares {
		if sj == nil || sj.Sign() < 0 || sj.Cmp(secp.Q) >= 0 {
			f.add(j, fmt.Errorf("%w: share missing or outside [0, q)", ErrMalformed))
			continue
		}
		sum.Add(sum, sj)
	}
	if !f.empty() {
		return nil, f.err()
	}
	return sum.Mod(sum, secp.Q), nil
}

// verifySignature checks an ECDSA signature with dcrd's secp256k1 verifier.
func verifySignature(pub *secp.Point, digest []byte, r, s *big.Int) bool {
	var rs, ss secp256k1.ModNScalar
	rs.Set(secp.Scalar(r))
	ss.Set(secp.Scalar(s))
	return ecdsa.NewSignature(&rs, &ss).Verify(digest, pub.PublicKey())
}
