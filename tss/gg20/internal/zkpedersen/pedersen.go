// Package zkpedersen is a proof of knowledge of the opening of a Pedersen
// commitment over secp256k1: given T, the prover shows it knows (σ, l) with
// T = σ·g + l·h. GG20 presigning uses it in round 3 for Tᵢ = g^{σᵢ}·h^{lᵢ}
// (GG20 §3, Phase 3), with h the NUMS generator of package gg20.
//
// Protocol (Fiat–Shamir): a, b ←$ Z_q, A = a·g + b·h,
// e = H(session, g, h, T, A) mod q, z₁ = a + e·σ, z₂ = b + e·l (mod q); the
// verifier checks z₁·g + z₂·h = A + e·T.
package zkpedersen

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/transcript"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

const domain = "keyquorum/gg20/zkpedersen/v1"

var (
	// ErrMalformed is returned when the proof or statement fails an input check.
	ErrMalformed = errors.New("zkpedersen: malformed proof or statement")
	// ErrInvalid is returned when the verification equation does not hold.
	ErrInvalid = errors.New("zkpedersen: proof equation does not hold")
)

// Proof is a proof of knowledge of (σ, l) with T = σ·g + l·h.
type Proof struct {
	A      *secp.Point
	Z1, Z2 *big.Int
}

func challenge(session []byte, h, T, A *secp.Point) *big.Int {
	t := transcript.New(domain)
	t.Bytes("session", session)
	t.Bytes("g", secp.Generator().Bytes())
	t.Bytes("h", h.Bytes())
	t.Bytes("T", T.Bytes())
	t.Bytes("A", A.Bytes())
	return t.Challenge(secp.Q)
}

// Prove proves knowledge of (sigma, l) with T = sigma·g + l·h.
func Prove(session []byte, h, T *secp.Point, sigma, l *big.Int, rnd io.Reader) (*Proof, error) {
	if h.IsIdentity() || T.IsIdentity() || sigma == nil || l == nil {
		return nil, fmt.Errorf("%w: identity point or missing witness", ErrMalformed)
	}
	a, err := arith.RandomInt(rnd, secp.Q)
	if err != nil {
		return nil, err
	}
	b, err := arith.RandomInt(rnd, secp.Q)
	if err != nil {
		return nil, err
	}
	A := secp.Commit(a, h, b)
	if A.IsIdentity() {
		return nil, errors.New("zkpedersen: degenerate nonce, retry")
	}
	e := challenge(session, h, T, A)
	z1 := secp.MulAdd(e, sigma, a)
	z2 := secp.MulAdd(e, l, b)
	arith.WipeInt(a)
	arith.WipeInt(b)
	return &Proof{A: A, Z1: z1, Z2: z2}, nil
}

// Verify checks a proof of knowledge of an opening of T with respect to g, h.
func Verify(session []byte, pf *Proof, h, T *secp.Point) error {
	if pf == nil || pf.A.IsIdentity() || !inRange(pf.Z1) || !inRange(pf.Z2) || h.IsIdentity() || T.IsIdentity() {
		return fmt.Errorf("%w: identity point or response out of range", ErrMalformed)
	}
	e := challenge(session, h, T, pf.A)
	left := secp.BaseMultVarTime(pf.Z1).Add(h.MulVarTime(pf.Z2))
	if !left.Equal(pf.A.Add(T.MulVarTime(e))) {
		return ErrInvalid
	}
	return nil
}

func inRange(z *big.Int) bool { return z != nil && z.Sign() >= 0 && z.Cmp(secp.Q) < 0 }

// Encode writes the proof.
func (pf *Proof) Encode(w *wire.Writer) {
	w.Point(pf.A)
	w.Scalar(pf.Z1)
	w.Scalar(pf.Z2)
}

// Decode reads a proof written by Encode.
func Decode(r *wire.Reader) *Proof {
	return &Proof{A: r.Point("pedersen A"), Z1: r.Scalar("pedersen z1"), Z2: r.Scalar("pedersen z2")}
}
