package gg20

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdleq"
)

// The blame rounds of GG20 §4.3. Every proof of rounds 1–6 can pass while
// ∏R̄ⱼ ≠ g ("type 5": someone used a γⱼ in MtA other than the one in Γⱼ, or
// broadcast a δⱼ that does not match its MtA shares) or ∏Sⱼ ≠ y' ("type 7":
// someone's σⱼ is inconsistent with its MtAwc shares). Then each signer
// broadcasts openings of its values for this run — which the presignature
// is abandoned for, so nothing revealed is ever used to sign — and every
// signer recomputes the others' messages from the openings and the
// broadcast transcript. The Paillier ciphertexts of round 2 are part of the
// broadcast, so all honest signers reach the same verdict.
//
// Type 5 reveals kⱼ, γⱼ, the nonce ρⱼ of cⱼ, and for the MtA(k, γ) runs the
// Bob masks β'ⱼₐ with their nonces and the Alice plaintexts α'ⱼₐ with their
// nonces (nothing in type 5 involves the key shares). Type 7 must keep wⱼ
// secret, so it reveals kⱼ, ρⱼ and only the Alice side of MtAwc (μ'ⱼₐ with
// nonces); everyone then computes
//
//	g^{σⱼ} = Wⱼ^{Σₐkₐ} · g^{Σ_{a≠j}(μ'ⱼₐ − μ'ₐⱼ)}
//
// (because ν'ⱼₐ = μ'ₐⱼ − kₐ·wⱼ) and signer j proves with a Chaum–Pedersen
// proof that Sⱼ = R^{σⱼ} for that σⱼ.

var errReveal = errors.New("inconsistent blame reveal")

// roundRevealRbar is the type-5 blame reveal, entered after ∏R̄ⱼ ≠ g (or
// δ = 0). It always ends the run.
type roundRevealRbar struct {
	*Presigner
	inbox[msgRevealRbar, *msgRevealRbar]
}

var _ round = (*roundRevealRbar)(nil)

// roundRevealS is the type-7 blame reveal, entered after ∏Sⱼ ≠ y'. It
// always ends the run.
type roundRevealS struct {
	*Presigner
	inbox[msgRevealS, *msgRevealS]
}

var _ round = (*roundRevealS)(nil)

// start broadcasts this party's type-5 openings.
func (r *roundRevealRbar) start() ([]Message, error) {
	st := r.st
	m := &msgRevealRbar{k: r.sec.k, rho: r.sec.rho, gamma: r.sec.gamma}
	for _, j := range peers(st.n, st.self) {
		rnd, err := st.sk.Nonce(r.pub.cGamma[j][st.self])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInternal, err)
		}
		m.entries = append(m.entries, revealGammaEntry{
			betaPrm: r.sec.betaPrm[j], betaNonce: r.sec.betaNonce[j],
			alphaPlain: r.sec.alphaPlain[j], alphaRnd: rnd,
		})
	}
	return r.broadcast(m), nil
}

// openMatches reports whether plaintext m with nonce r encrypts to c under pk
// (m < N, r a unit modulo N).
func openMatches(pk *arith.Paillier, m, r, c *big.Int) bool {
	if m.Cmp(pk.N) >= 0 || !arith.IsUnit(r, pk.N) {
		return false
	}
	return pk.EncryptWithNonceVarTime(m, r).Cmp(c) == 0
}

// verify recomputes every peer's round 1, 2, 3 and 5 values from its
// type-5 openings and names the peers whose openings contradict the
// transcript:
//
//	cⱼ = Enc_j(kⱼ; ρⱼ),  Γⱼ = g^{γⱼ},  R̄ⱼ = R^{kⱼ}
//	c^γ_{aj} = c_a^{γⱼ}·Enc_a(β'ⱼₐ; νⱼₐ)     (j as Bob)
//	c^γ_{ja} = Enc_j(α'ⱼₐ; ρ'ⱼₐ)             (j as Alice)
//	δⱼ = kⱼγⱼ + Σₐ(α'ⱼₐ − β'ⱼₐ) mod q
//
// It changes no state, and always returns a *CulpritError wrapping
// ErrRbarProduct: the verdict that ends the run.
func (r *roundRevealRbar) verify() error {
	st := r.st
	q := secp.Q
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := msgs[j]
		tasks[i] = func() error {
			if !openMatches(st.pk[j], m.k, m.rho, r.pub.c[j]) {
				return fmt.Errorf("%w: %w: k_j does not open c_j", ErrRbarProduct, errReveal)
			}
			kq := new(big.Int).Mod(m.k, q)
			if !secp.BaseMult(m.gamma).Equal(r.pub.Gamma[j]) {
				return fmt.Errorf("%w: %w: gamma_j does not match Gamma_j", ErrRbarProduct, errReveal)
			}
			if r.pub.R != nil && r.pub.Rbar[j] != nil && !r.pub.R.Mul(kq).Equal(r.pub.Rbar[j]) {
				return fmt.Errorf("%w: %w: Rbar_j != R^k_j", ErrRbarProduct, errReveal)
			}
			delta := new(big.Int).Mul(kq, m.gamma)
			for _, a := range peers(st.n, j) {
				e := m.entries[slot(j, a)]
				if e.betaPrm.Cmp(st.pk[a].N) >= 0 || !arith.IsUnit(e.betaNonce, st.pk[a].N) {
					return fmt.Errorf("%w: %w: MtA mask towards signer %d out of range", ErrRbarProduct, errReveal, a)
				}
				want := st.pk[a].NN.MulVarTime(st.pk[a].NN.ExpVarTime(r.pub.c[a], m.gamma), st.pk[a].EncryptWithNonceVarTime(e.betaPrm, e.betaNonce))
				if want.Cmp(r.pub.cGamma[j][a]) != 0 {
					return fmt.Errorf("%w: %w: MtA response to signer %d was not made with gamma_j", ErrRbarProduct, errReveal, a)
				}
				if !openMatches(st.pk[j], e.alphaPlain, e.alphaRnd, r.pub.cGamma[a][j]) {
					return fmt.Errorf("%w: %w: alpha from signer %d does not open its ciphertext", ErrRbarProduct, errReveal, a)
				}
				delta.Add(delta, e.alphaPlain)
				delta.Sub(delta, e.betaPrm)
			}
			if delta.Mod(delta, q).Cmp(r.pub.delta[j]) != 0 {
				return fmt.Errorf("%w: %w: delta_j does not match the MtA values", ErrRbarProduct, errReveal)
			}
			return nil
		}
	}
	if err := blame(RoundRevealRbar, others, runAll(tasks)); err != nil {
		return err
	}
	return &CulpritError{Round: RoundRevealRbar, Err: ErrRbarProduct}
}

// finish ends the run with the verdict of verify; nothing is stored.
func (r *roundRevealRbar) finish() (int, map[int]error, error) {
	return 0, nil, r.verify()
}

// start broadcasts this party's type-7 openings and its proof that
// Sᵢ = R^{σᵢ} with g^{σᵢ} as recomputed by everyone.
func (r *roundRevealS) start() ([]Message, error) {
	st := r.st
	m := &msgRevealS{k: r.sec.k, rho: r.sec.rho}
	for _, j := range peers(st.n, st.self) {
		rnd, err := st.sk.Nonce(r.pub.cW[j][st.self])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInternal, err)
		}
		m.entries = append(m.entries, revealWEntry{muPlain: r.sec.muPlain[j], muRnd: rnd})
	}
	G := secp.BaseMult(r.sec.sigma)
	pf, err := zkdleq.Prove(st.session("dleq", st.self, Broadcast), r.pub.R, G, r.pub.S[st.self], r.sec.sigma, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: DLEQ proof: %v", ErrInternal, err)
	}
	m.pDLEQ = pf
	return r.broadcast(m), nil
}

// verify checks every peer's type-7 openings against the transcript
// (cⱼ = Enc_j(kⱼ; ρⱼ), R̄ⱼ = R^{kⱼ}, c^w_{ja} = Enc_j(μ'ⱼₐ; ·)), then, if all
// openings are consistent, recomputes g^{σⱼ} for every peer and verifies its
// Chaum–Pedersen proof for (g, g^{σⱼ}, R, Sⱼ). It changes no state, and
// always returns a *CulpritError wrapping ErrSProduct: the verdict that
// ends the run.
func (r *roundRevealS) verify() error {
	st := r.st
	q := secp.Q
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := msgs[j]
		tasks[i] = func() error {
			if !openMatches(st.pk[j], m.k, m.rho, r.pub.c[j]) {
				return fmt.Errorf("%w: %w: k_j does not open c_j", ErrSProduct, errReveal)
			}
			if !r.pub.R.Mul(m.k).Equal(r.pub.Rbar[j]) {
				return fmt.Errorf("%w: %w: Rbar_j != R^k_j", ErrSProduct, errReveal)
			}
			for _, a := range peers(st.n, j) {
				e := m.entries[slot(j, a)]
				if !openMatches(st.pk[j], e.muPlain, e.muRnd, r.pub.cW[a][j]) {
					return fmt.Errorf("%w: %w: mu from signer %d does not open its ciphertext", ErrSProduct, errReveal, a)
				}
			}
			return nil
		}
	}
	if err := blame(RoundRevealS, others, runAll(tasks)); err != nil {
		return err
	}

	// All openings are consistent: recompute g^{σⱼ}.
	mu := func(alice, bob int) *big.Int { // μ'_{alice,bob}
		if alice == st.self {
			return r.sec.muPlain[bob]
		}
		return msgs[alice].entries[slot(alice, bob)].muPlain
	}
	kSum := new(big.Int).Set(r.sec.k)
	for _, j := range others {
		kSum.Add(kSum, msgs[j].k)
	}
	kSum.Mod(kSum, q)
	for i, j := range others {
		m := msgs[j]
		tasks[i] = func() error {
			e := new(big.Int)
			for _, a := range peers(st.n, j) {
				e.Add(e, mu(j, a))
				e.Sub(e, mu(a, j))
			}
			G := st.W[j].Mul(kSum).Add(secp.BaseMult(e))
			if G.IsIdentity() {
				return fmt.Errorf("%w: %w: g^sigma_j is the identity", ErrSProduct, errReveal)
			}
			if err := zkdleq.Verify(st.session("dleq", j, Broadcast), m.pDLEQ, r.pub.R, G, r.pub.S[j]); err != nil {
				return fmt.Errorf("%w: S_j is not R^sigma_j for the sigma_j its MtA values give: %v", ErrSProduct, err)
			}
			return nil
		}
	}
	if err := blame(RoundRevealS, others, runAll(tasks)); err != nil {
		return err
	}
	return &CulpritError{Round: RoundRevealS, Err: ErrSProduct}
}

// finish ends the run with the verdict of verify; nothing is stored.
func (r *roundRevealS) finish() (int, map[int]error, error) {
	return 0, nil, r.verify()
}
