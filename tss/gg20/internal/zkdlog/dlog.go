// Package zkdlog is a Schnorr proof of knowledge of a discrete logarithm:
// given X, the prover shows it knows x with X = x·g. GG20 presigning uses it
// in round 4 for Γᵢ = γᵢ·g (GG20 §3, Phase 4).
//
// Protocol (Fiat–Shamir): a ←$ Z_q, A = a·g, e = H(session, g, X, A) mod q,
// z = a + e·x mod q; the verifier checks z·g = A + e·X.
package zkdlog

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

const domain = "keyquorum/gg20/zkdlog/v1"

var (
	// ErrMalformed is returned when the proof or statement fails an input check.
	ErrMalformed = errors.New("zkdlog: malformed proof or statement")
	// ErrInvalid is returned when the verification equation does not hold.
	ErrInvalid = errors.New("zkdlog: proof equation does not hold")
)

// Proof is a proof of knowledge of log_g X.
type Proof struct {
	A *secp.Point
	Z *big.Int
}

func challenge(session []byte, X, A *secp.Point) *big.Int {
	t := transcript.New(domain)
	t.Bytes("session", session)
	t.Bytes("g", secp.Generator().Bytes())
	t.Bytes("X", X.Bytes())
	t.Bytes("A", A.Bytes())
	return t.Challenge(secp.Q)
}

// Prove proves knowledge of x with X = x·g.
func Prove(session []byte, X *secp.Point, x *big.Int, rnd io.Reader) (*Proof, error) {
	if X.IsIdentity() || x == nil {
		return nil, fmt.Errorf("%w: X is the identity", ErrMalformed)
	}
	a, err := nonZero(rnd)
	if err != nil {
		return nil, err
	}
	A := secp.BaseMult(a)
	e := challenge(session, X, A)
	z := secp.MulAdd(e, x, a)
	arith.WipeInt(a)
	return &Proof{A: A, Z: z}, nil
}

// Verify checks a proof of knowledge of log_g X.
func Verify(session []byte, pf *Proof, X *secp.Point) error {
	if pf == nil || pf.A.IsIdentity() || pf.Z == nil || pf.Z.Sign() < 0 || pf.Z.Cmp(secp.Q) >= 0 || X.IsIdentity() {
		return fmt.Errorf("%w: identity point or response out of range", ErrMalformed)
	}
	e := challenge(session, X, pf.A)
	if !secp.BaseMultVarTime(pf.Z).Equal(pf.A.Add(X.MulVarTime(e))) {
		return ErrInvalid
	}
	return nil
}

// Encode writes the proof.
func (pf *Proof) Encode(w *wire.Writer) {
	w.Point(pf.A)
	w.Scalar(pf.Z)
}

// Decode reads a proof written by Encode.
func Decode(r *wire.Reader) *Proof {
	return &Proof{A: r.Point("dlog A"), Z: r.Scalar("dlog z")}
}

func nonZero(rnd io.Reader) (*big.Int, error) {
	for {
		a, err := arith.RandomInt(rnd, secp.Q)
		if err != nil {
			return nil, err
		}
		if a.Sign() != 0 {
			return a, nil
		}
	}
}
