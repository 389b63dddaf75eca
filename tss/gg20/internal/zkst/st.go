// Package zkst is the consistency proof of GG20 round 6 (GG20 §3, Phase 6):
// given points R, h, S and T, the prover shows it knows (σ, l) with
// S = σ·R and T = σ·g + l·h — the σᵢ behind Sᵢ = R^{σᵢ} is the one committed
// in Tᵢ = g^{σᵢ}·h^{lᵢ} in round 3.
//
// Protocol (Fiat–Shamir): a, b ←$ Z_q, A₁ = a·R, A₂ = a·g + b·h,
// e = H(session, g, h, R, S, T, A₁, A₂) mod q, z₁ = a + e·σ, z₂ = b + e·l
// (mod q); the verifier checks z₁·R = A₁ + e·S and z₁·g + z₂·h = A₂ + e·T.
// The statement is the one ZenGo-X's gg_2020 phase 6 proves with a
// homomorphic-ElGamal proof; this is a direct sigma protocol for it.
package zkst

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

const domain = "keyquorum/gg20/zkst/v1"

var (
	// ErrMalformed is returned when the proof or statement fails an input check.
	ErrMalformed = errors.New("zkst: malformed proof or statement")
	// ErrInvalid is returned when a verification equation does not hold.
	ErrInvalid = errors.New("zkst: proof equations do not hold")
)

// Proof shows that S = σ·R and T = σ·g + l·h share σ.
type Proof struct {
	A1, A2 *secp.Point
	Z1, Z2 *big.Int
}

// Statement is (R, h, S, T).
type Statement struct {
	R, H, S, T *secp.Point
}

func (st *Statement) valid() bool {
	return !st.R.IsIdentity() && !st.H.IsIdentity() && !st.S.IsIdentity() && !st.T.IsIdentity()
}

func challenge(session []byte, st *Statement, A1, A2 *secp.Point) *big.Int {
	t := transcript.New(domain)
	t.Bytes("session", session)
	t.Bytes("g", secp.Generator().Bytes())
	t.Bytes("h", st.H.Bytes())
	t.Bytes("R", st.R.Bytes())
	t.Bytes("S", st.S.Bytes())
	t.Bytes("T", st.T.Bytes())
	t.Bytes("A1", A1.Bytes())
	t.Bytes("A2", A2.Bytes())
	return t.Challenge(secp.Q)
}

// Prove proves the statement with witness (sigma, l).
func Prove(session []byte, st *Statement, sigma, l *big.Int, rnd io.Reader) (*Proof, error) {
	if st == nil || !st.valid() || sigma == nil || l == nil {
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
	A1 := st.R.Mul(a)
	A2 := secp.Commit(a, st.H, b)
	if A1.IsIdentity() || A2.IsIdentity() {
		return nil, errors.New("zkst: degenerate nonce, retry")
	}
	e := challenge(session, st, A1, A2)
	z1 := secp.MulAdd(e, sigma, a)
	z2 := secp.MulAdd(e, l, b)
	arith.WipeInt(a)
	arith.WipeInt(b)
	return &Proof{A1: A1, A2: A2, Z1: z1, Z2: z2}, nil
}

// Verify checks the proof against the statement.
func Verify(session []byte, pf *Proof, st *Statement) error {
	if pf == nil || st == nil || !st.valid() || pf.A1.IsIdentity() || pf.A2.IsIdentity() || !inRange(pf.Z1) || !inRange(pf.Z2) {
		return fmt.Errorf("%w: identity point or response out of range", ErrMalformed)
	}
	e := challenge(session, st, pf.A1, pf.A2)
	if !st.R.MulVarTime(pf.Z1).Equal(pf.A1.Add(st.S.MulVarTime(e))) {
		return fmt.Errorf("%w: S equation", ErrInvalid)
	}
	if !secp.BaseMultVarTime(pf.Z1).Add(st.H.MulVarTime(pf.Z2)).Equal(pf.A2.Add(st.T.MulVarTime(e))) {
		return fmt.Errorf("%w: T equation", ErrInvalid)
	}
	return nil
}

func inRange(z *big.Int) bool { return z != nil && z.Sign() >= 0 && z.Cmp(secp.Q) < 0 }

// Encode writes the proof.
func (pf *Proof) Encode(w *wire.Writer) {
	w.Point(pf.A1)
	w.Point(pf.A2)
	w.Scalar(pf.Z1)
	w.Scalar(pf.Z2)
}

// Decode reads a proof written by Encode.
func Decode(r *wire.Reader) *Proof {
	return &Proof{A1: r.Point("st A1"), A2: r.Point("st A2"), Z1: r.Scalar("st z1"), Z2: r.Scalar("st z2")}
}
