// Package zkdleq is the Chaum–Pedersen proof of equality of discrete
// logarithms: given X, R and Y, the prover shows it knows x with X = x·g and
// Y = x·R. GG20 presigning uses it in the blame round after ∏Sⱼ ≠ y
// (GG20 §4.3, "type 7"): party i shows that Sᵢ = R^{σᵢ} for the σᵢ whose
// g^{σᵢ} everyone recomputes from the revealed MtA values.
//
// Protocol (Fiat–Shamir): a ←$ Z_q, A₁ = a·g, A₂ = a·R,
// e = H(session, g, R, X, Y, A₁, A₂) mod q, z = a + e·x mod q; the verifier
// checks z·g = A₁ + e·X and z·R = A₂ + e·Y.
package zkdleq

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

const domain = "keyquorum/gg20/zkdleq/v1"

var (
	// ErrMalformed is returned when the proof or statement fails an input check.
	ErrMalformed = errors.New("zkdleq: malformed proof or statement")
	// ErrInvalid is returned when a verification equation does not hold.
	ErrInvalid = errors.New("zkdleq: proof equations do not hold")
)

// Proof shows log_g X = log_R Y.
type Proof struct {
	A1, A2 *secp.Point
	Z      *big.Int
}

func challenge(session []byte, R, X, Y, A1, A2 *secp.Point) *big.Int {
	t := transcript.New(domain)
	t.Bytes("session", session)
	t.Bytes("g", secp.Generator().Bytes())
	t.Bytes("R", R.Bytes())
	t.Bytes("X", X.Bytes())
	t.Bytes("Y", Y.Bytes())
	t.Bytes("A1", A1.Bytes())
	t.Bytes("A2", A2.Bytes())
	return t.Challenge(secp.Q)
}

// Prove proves X = x·g and Y = x·R.
func Prove(session []byte, R, X, Y *secp.Point, x *big.Int, rnd io.Reader) (*Proof, error) {
	if R.IsIdentity() || X.IsIdentity() || Y.IsIdentity() || x == nil {
		return nil, fmt.Errorf("%w: identity point or missing witness", ErrMalformed)
	}
	var a *big.Int
	for a == nil || a.Sign() == 0 {
		var err error
		if a, err = arith.RandomInt(rnd, secp.Q); err != nil {
			return nil, err
		}
	}
	A1, A2 := secp.BaseMult(a), R.Mul(a)
	e := challenge(session, R, X, Y, A1, A2)
	z := secp.MulAdd(e, x, a)
	arith.WipeInt(a)
	return &Proof{A1: A1, A2: A2, Z: z}, nil
}

// Verify checks the proof.
func Verify(session []byte, pf *Proof, R, X, Y *secp.Point) error {
	if pf == nil || pf.A1.IsIdentity() || pf.A2.IsIdentity() || pf.Z == nil || pf.Z.Sign() < 0 || pf.Z.Cmp(secp.Q) >= 0 ||
		R.IsIdentity() || X.IsIdentity() || Y.IsIdentity() {
		return fmt.Errorf("%w: identity point or response out of range", ErrMalformed)
	}
	e := challenge(session, R, X, Y, pf.A1, pf.A2)
	if !secp.BaseMultVarTime(pf.Z).Equal(pf.A1.Add(X.MulVarTime(e))) {
		return fmt.Errorf("%w: g equation", ErrInvalid)
	}
	if !R.MulVarTime(pf.Z).Equal(pf.A2.Add(Y.MulVarTime(e))) {
		return fmt.Errorf("%w: R equation", ErrInvalid)
	}
	return nil
}

// Encode writes the proof.
func (pf *Proof) Encode(w *wire.Writer) {
	w.Point(pf.A1)
	w.Point(pf.A2)
	w.Scalar(pf.Z)
}

// Decode reads a proof written by Encode.
func Decode(r *wire.Reader) *Proof {
	return &Proof{A1: r.Point("dleq A1"), A2: r.Point("dleq A2"), Z: r.Scalar("dleq z")}
}
