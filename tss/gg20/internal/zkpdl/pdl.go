// Package zkpdl is the "PDL with slack" proof of GG20 round 5 (GG20 §3,
// Phase 5; Appendix: "Paillier–discrete-log with slack"): given a Paillier
// ciphertext c under the prover's key N and points R, R̄, the prover shows it
// knows k and ρ with c = Γ^k·ρ^N mod N² and R̄ = k·R, with |k| ≤ q³ (the
// "slack": the plaintext equals the discrete logarithm modulo q). The proof is
// made against the verifier's ring-Pedersen parameters (Ñ, h₁, h₂), so a
// prover sends one proof per verifier. ZenGo-X's zk_pdl_with_slack has the
// same equations; this version binds a session and checks every input.
//
// Protocol (Fiat–Shamir), with Γ = N + 1:
//
//	α ←$ [0, q³), β ←$ Z*_N, ρ' ←$ [0, q·Ñ), γ ←$ [0, q³·Ñ)
//	z  = h₁^k·h₂^ρ' mod Ñ
//	u₁ = α·R
//	u₂ = Γ^α·β^N mod N²
//	u₃ = h₁^α·h₂^γ mod Ñ
//	e  = H(session, N, Ñ, h₁, h₂, c, R, R̄, z, u₁, u₂, u₃) mod q
//	s₁ = e·k + α,  s₂ = ρ^e·β mod N,  s₃ = e·ρ' + γ
//
// The verifier checks, besides the input ranges,
//
//	s₁·R = u₁ + e·R̄
//	Γ^{s₁}·s₂^N = u₂·c^e  (mod N²)
//	h₁^{s₁}·h₂^{s₃} = u₃·z^e  (mod Ñ)
package zkpdl

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

const domain = "keyquorum/gg20/zkpdl/v1"

var (
	// ErrMalformed is returned when the proof or statement fails an input check.
	ErrMalformed = errors.New("zkpdl: malformed proof or statement")
	// ErrInvalid is returned when a verification equation does not hold.
	ErrInvalid = errors.New("zkpdl: proof equations do not hold")
)

var (
	q  = secp.Q
	q3 = new(big.Int).Exp(secp.Q, big.NewInt(3), nil)
)

// Proof is a PDL-with-slack proof.
type Proof struct {
	Z, U2, U3 *big.Int
	U1        *secp.Point
	S1, S2    *big.Int
	S3        *big.Int
}

// Statement is what the proof is about: c under pk, R and R̄ = k·R, and the
// verifier's ring-Pedersen parameters V.
type Statement struct {
	PK   *arith.Paillier
	C    *big.Int
	R    *secp.Point
	Rbar *secp.Point
	V    *arith.RingPedersen
}

func (st *Statement) challenge(session []byte, z *big.Int, u1 *secp.Point, u2, u3 *big.Int) *big.Int {
	t := transcript.New(domain)
	t.Bytes("session", session)
	t.Int("N", st.PK.N)
	t.Int("Ntilde", st.V.N())
	t.Int("h1", st.V.H1)
	t.Int("h2", st.V.H2)
	t.Int("c", st.C)
	t.Bytes("R", st.R.Bytes())
	t.Bytes("Rbar", st.Rbar.Bytes())
	t.Int("z", z)
	t.Bytes("u1", u1.Bytes())
	t.Int("u2", u2)
	t.Int("u3", u3)
	return t.Challenge(q)
}

// Prove makes the proof for plaintext k < q and Paillier nonce rho of st.C.
func Prove(session []byte, st *Statement, k, rho *big.Int, rnd io.Reader) (*Proof, error) {
	if st == nil || st.PK == nil || st.V == nil || st.C == nil || st.R.IsIdentity() || st.Rbar.IsIdentity() || k == nil || rho == nil {
		return nil, fmt.Errorf("%w: incomplete statement or witness", ErrMalformed)
	}
	if k.Sign() < 0 || k.BitLen() > q3.BitLen() || rho.Sign() < 0 || rho.BitLen() > st.PK.N.BitLen() {
		return nil, fmt.Errorf("%w: witness out of range", ErrMalformed)
	}
	nt := st.V.N()
	qNt := new(big.Int).Mul(q, nt)
	q3Nt := new(big.Int).Mul(q3, nt)
	alpha, err := arith.RandomInt(rnd, q3)
	if err != nil {
		return nil, err
	}
	beta, betaN, err := st.PK.RandomNonce(rnd)
	if err != nil {
		return nil, err
	}
	rhoPrm, err := arith.RandomInt(rnd, qNt)
	if err != nil {
		return nil, err
	}
	gam, err := arith.RandomInt(rnd, q3Nt)
	if err != nil {
		return nil, err
	}
	// Constant time in the secrets k, α, β, ρ, ρ', γ; the exponent widths
	// are those of the public bounds.
	z := st.V.Commit(k, q3.BitLen(), rhoPrm, qNt.BitLen())
	u1 := st.R.Mul(alpha)
	if u1.IsIdentity() {
		return nil, errors.New("zkpdl: degenerate nonce, retry")
	}
	u2 := st.PK.NN.Mul(st.PK.GammaExp(alpha), betaN)
	u3 := st.V.Commit(alpha, q3.BitLen(), gam, q3Nt.BitLen())
	e := st.challenge(session, z, u1, u2, u3)

	s1 := new(big.Int).Mul(e, k)
	s1.Add(s1, alpha)
	s2 := st.PK.ModN.Mul(st.PK.ModN.Exp(rho, e, q.BitLen()), beta)
	s3 := new(big.Int).Mul(e, rhoPrm)
	s3.Add(s3, gam)
	for _, v := range []*big.Int{alpha, beta, rhoPrm, gam} {
		arith.WipeInt(v)
	}
	return &Proof{Z: z, U1: u1, U2: u2, U3: u3, S1: s1, S2: s2, S3: s3}, nil
}

// Verify checks the proof against the statement.
func Verify(session []byte, pf *Proof, st *Statement) error {
	if pf == nil || st == nil || st.PK == nil || st.V == nil || st.C == nil {
		return fmt.Errorf("%w: missing proof or statement", ErrMalformed)
	}
	for _, v := range []*big.Int{pf.Z, pf.U2, pf.U3, pf.S1, pf.S2, pf.S3} {
		if v == nil {
			return fmt.Errorf("%w: missing proof field", ErrMalformed)
		}
	}
	nt := st.V.N()
	s3Max := new(big.Int).Mul(q3, nt)
	s3Max.Lsh(s3Max, 1)
	switch {
	case st.R.IsIdentity(), st.Rbar.IsIdentity(), pf.U1.IsIdentity():
		return fmt.Errorf("%w: identity point", ErrMalformed)
	case !st.PK.IsCiphertext(st.C):
		return fmt.Errorf("%w: ciphertext is not a unit modulo N²", ErrMalformed)
	case !arith.IsUnit(pf.Z, nt), !arith.IsUnit(pf.U3, nt):
		return fmt.Errorf("%w: z or u3 is not a unit modulo Ñ", ErrMalformed)
	case !st.PK.IsCiphertext(pf.U2):
		return fmt.Errorf("%w: u2 is not a unit modulo N²", ErrMalformed)
	case !arith.IsUnit(pf.S2, st.PK.N):
		return fmt.Errorf("%w: s2 is not a unit modulo N", ErrMalformed)
	case pf.S1.Sign() < 0 || pf.S1.Cmp(q3) > 0:
		return fmt.Errorf("%w: s1 outside [0, q³]", ErrMalformed)
	case pf.S3.Sign() < 0 || pf.S3.Cmp(s3Max) >= 0:
		return fmt.Errorf("%w: s3 outside [0, 2q³Ñ)", ErrMalformed)
	}
	e := st.challenge(session, pf.Z, pf.U1, pf.U2, pf.U3)
	// s₁·R ≟ u₁ + e·R̄
	if !st.R.MulVarTime(pf.S1).Equal(pf.U1.Add(st.Rbar.MulVarTime(e))) {
		return fmt.Errorf("%w: curve equation", ErrInvalid)
	}
	// Γ^{s₁}·s₂^N ≟ u₂·c^e (mod N²)
	nn := st.PK.NN
	if nn.MulVarTime(st.PK.GammaExp(pf.S1), nn.ExpVarTime(pf.S2, st.PK.N)).Cmp(nn.MulVarTime(pf.U2, nn.ExpVarTime(st.C, e))) != 0 {
		return fmt.Errorf("%w: Paillier equation", ErrInvalid)
	}
	// h₁^{s₁}·h₂^{s₃} ≟ u₃·z^e (mod Ñ)
	if st.V.CommitVarTime(pf.S1, pf.S3).Cmp(st.V.NT.MulVarTime(pf.U3, st.V.NT.ExpVarTime(pf.Z, e))) != 0 {
		return fmt.Errorf("%w: ring-Pedersen equation", ErrInvalid)
	}
	return nil
}

// Encode writes the proof.
func (pf *Proof) Encode(w *wire.Writer) {
	w.Int(pf.Z)
	w.Point(pf.U1)
	w.Int(pf.U2)
	w.Int(pf.U3)
	w.Int(pf.S1)
	w.Int(pf.S2)
	w.Int(pf.S3)
}

// Decode reads a proof written by Encode.
func Decode(r *wire.Reader) *Proof {
	return &Proof{
		Z:  r.Int(wire.MaxIntLen, "pdl z"),
		U1: r.Point("pdl u1"),
		U2: r.Int(wire.MaxIntLen, "pdl u2"),
		U3: r.Int(wire.MaxIntLen, "pdl u3"),
		S1: r.Int(wire.MaxIntLen, "pdl s1"),
		S2: r.Int(wire.MaxIntLen, "pdl s2"),
		S3: r.Int(wire.MaxIntLen, "pdl s3"),
	}
}
