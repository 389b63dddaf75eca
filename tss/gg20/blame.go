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

// revealRbarStart broadcasts this party's type-5 openings.
func (p *Presigner) revealRbarStart() ([]Message, error) {
	st := p.st
	m := &msgRevealRbar{k: p.sec.k, rho: p.sec.rho, gamma: p.sec.gamma}
	for _, j := range peers(st.n, st.self) {
		rnd, err := st.sk.Nonce(p.pub.cGamma[j][st.self])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInternal, err)
		}
		m.entries = append(m.entries, revealGammaEntry{
			betaPrm: p.sec.betaPrm[j], betaNonce: p.sec.betaNonce[j],
			alphaPlain: p.sec.alphaPlain[j], alphaRnd: rnd,
		})
	}
	return p.broadcast(RoundRevealRbar, m.encode()), nil
}

// openMatches reports whether plaintext m with nonce r encrypts to c under pk
// (m < N, r a unit modulo N).
func openMatches(pk *arith.Paillier, m, r, c *big.Int) bool {
	if m.Cmp(pk.N) >= 0 || !arith.IsUnit(r, pk.N) {
		return false
	}
	return pk.EncryptWithNonceVarTime(m, r).Cmp(c) == 0
}

// revealRbarProcess recomputes every peer's round 1, 2, 3 and 5 values from
// its type-5 openings and names the peers whose openings contradict the
// transcript:
//
//	cⱼ = Enc_j(kⱼ; ρⱼ),  Γⱼ = g^{γⱼ},  R̄ⱼ = R^{kⱼ}
//	c^γ_{aj} = c_a^{γⱼ}·Enc_a(β'ⱼₐ; νⱼₐ)     (j as Bob)
//	c^γ_{ja} = Enc_j(α'ⱼₐ; ρ'ⱼₐ)             (j as Alice)
//	δⱼ = kⱼγⱼ + Σₐ(α'ⱼₐ − β'ⱼₐ) mod q
//
// It always ends the run with a *CulpritError wrapping ErrRbarProduct.
func (p *Presigner) revealRbarProcess() error {
	st := p.st
	q := secp.Q
	box := p.inbox[RoundRevealRbar]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msgRevealRbar)
		tasks[i] = func() error {
			if !openMatches(st.pk[j], m.k, m.rho, p.pub.c[j]) {
				return fmt.Errorf("%w: %w: k_j does not open c_j", ErrRbarProduct, errReveal)
			}
			kq := new(big.Int).Mod(m.k, q)
			if !secp.BaseMult(m.gamma).Equal(p.pub.Gamma[j]) {
				return fmt.Errorf("%w: %w: gamma_j does not match Gamma_j", ErrRbarProduct, errReveal)
			}
			if p.pub.R != nil && p.pub.Rbar[j] != nil && !p.pub.R.Mul(kq).Equal(p.pub.Rbar[j]) {
				return fmt.Errorf("%w: %w: Rbar_j != R^k_j", ErrRbarProduct, errReveal)
			}
			delta := new(big.Int).Mul(kq, m.gamma)
			for _, a := range peers(st.n, j) {
				e := m.entries[slot(j, a)]
				if e.betaPrm.Cmp(st.pk[a].N) >= 0 || !arith.IsUnit(e.betaNonce, st.pk[a].N) {
					return fmt.Errorf("%w: %w: MtA mask towards signer %d out of range", ErrRbarProduct, errReveal, a)
				}
				want := st.pk[a].NN.MulVarTime(st.pk[a].NN.ExpVarTime(p.pub.c[a], m.gamma), st.pk[a].EncryptWithNonceVarTime(e.betaPrm, e.betaNonce))
				if want.Cmp(p.pub.cGamma[j][a]) != 0 {
					return fmt.Errorf("%w: %w: MtA response to signer %d was not made with gamma_j", ErrRbarProduct, errReveal, a)
				}
				if !openMatches(st.pk[j], e.alphaPlain, e.alphaRnd, p.pub.cGamma[a][j]) {
					return fmt.Errorf("%w: %w: alpha from signer %d does not open its ciphertext", ErrRbarProduct, errReveal, a)
				}
				delta.Add(delta, e.alphaPlain)
				delta.Sub(delta, e.betaPrm)
			}
			if delta.Mod(delta, q).Cmp(p.pub.delta[j]) != 0 {
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

// revealSStart broadcasts this party's type-7 openings and its proof that
// Sᵢ = R^{σᵢ} with g^{σᵢ} as recomputed by everyone.
func (p *Presigner) revealSStart() ([]Message, error) {
	st := p.st
	m := &msgRevealS{k: p.sec.k, rho: p.sec.rho}
	for _, j := range peers(st.n, st.self) {
		rnd, err := st.sk.Nonce(p.pub.cW[j][st.self])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInternal, err)
		}
		m.entries = append(m.entries, revealWEntry{muPlain: p.sec.muPlain[j], muRnd: rnd})
	}
	G := secp.BaseMult(p.sec.sigma)
	pf, err := zkdleq.Prove(st.session("dleq", st.self, Broadcast), p.pub.R, G, p.pub.S[st.self], p.sec.sigma, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: DLEQ proof: %v", ErrInternal, err)
	}
	m.pDLEQ = pf
	return p.broadcast(RoundRevealS, m.encode()), nil
}

// revealSProcess checks every peer's type-7 openings against the transcript
// (cⱼ = Enc_j(kⱼ; ρⱼ), R̄ⱼ = R^{kⱼ}, c^w_{ja} = Enc_j(μ'ⱼₐ; ·)), then, if all
// openings are consistent, recomputes g^{σⱼ} for every peer and verifies its
// Chaum–Pedersen proof for (g, g^{σⱼ}, R, Sⱼ). It always ends the run with a
// *CulpritError wrapping ErrSProduct.
func (p *Presigner) revealSProcess() error {
	st := p.st
	q := secp.Q
	box := p.inbox[RoundRevealS]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msgRevealS)
		tasks[i] = func() error {
			if !openMatches(st.pk[j], m.k, m.rho, p.pub.c[j]) {
				return fmt.Errorf("%w: %w: k_j does not open c_j", ErrSProduct, errReveal)
			}
			if !p.pub.R.Mul(m.k).Equal(p.pub.Rbar[j]) {
				return fmt.Errorf("%w: %w: Rbar_j != R^k_j", ErrSProduct, errReveal)
			}
			for _, a := range peers(st.n, j) {
				e := m.entries[slot(j, a)]
				if !openMatches(st.pk[j], e.muPlain, e.muRnd, p.pub.cW[a][j]) {
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
			return p.sec.muPlain[bob]
		}
		return box[alice].(*msgRevealS).entries[slot(alice, bob)].muPlain
	}
	kSum := new(big.Int).Set(p.sec.k)
	for _, j := range others {
		kSum.Add(kSum, box[j].(*msgRevealS).k)
	}
	kSum.Mod(kSum, q)
	for i, j := range others {
		m := box[j].(*msgRevealS)
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
			if err := zkdleq.Verify(st.session("dleq", j, Broadcast), m.pDLEQ, p.pub.R, G, p.pub.S[j]); err != nil {
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
