package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpedersen"
)

// round3Start is GG20 Phase 3 for signer i:
//
//	δᵢ = kᵢγᵢ + Σ_{j≠i} (α_{ij} + β_{ij})   with α_{ij} = α'_{ij} mod q
//	σᵢ = kᵢwᵢ + Σ_{j≠i} (μ_{ij} + ν_{ij})   with μ_{ij} = μ'_{ij} mod q
//	lᵢ ←$ Z_q,  Tᵢ = g^{σᵢ}·h^{lᵢ},  π^T_i : knowledge of (σᵢ, lᵢ)
//
// and broadcasts (δᵢ, Tᵢ, π^T_i). Σδᵢ = kγ and Σσᵢ = k·x' for k = Σkᵢ,
// γ = Σγᵢ and x' the (tweaked) secret key.
func (p *Presigner) round3Start() ([]Message, error) {
	st := p.st
	// Constant-time arithmetic mod q: every term is secret.
	var tmp []*secp.ModQ
	val := func(x *big.Int) *secp.ModQ {
		v := secp.NewModQ(x)
		tmp = append(tmp, v)
		return v
	}
	k := val(p.sec.k)
	deltaQ := val(p.sec.gamma).Mul(k)
	sigmaQ := val(st.w).Mul(k)
	for _, j := range peers(st.n, st.self) {
		deltaQ.Add(val(p.sec.alphaPlain[j])).Sub(val(p.sec.betaPrm[j]))
		sigmaQ.Add(val(p.sec.muPlain[j])).Sub(val(p.sec.nuPrm[j]))
	}
	delta, sigma := deltaQ.Int(), sigmaQ.Int()
	for _, v := range tmp {
		v.Wipe()
	}
	p.sec.sigma = sigma
	p.pub.delta[st.self] = delta

	var T *secp.Point
	for T == nil || T.IsIdentity() {
		l, err := p.randomScalar()
		if err != nil {
			return nil, err
		}
		p.sec.l = l
		T = secp.Commit(sigma, st.h, l)
	}
	p.pub.T[st.self] = T
	pf, err := zkpedersen.Prove(st.session("T", st.self, Broadcast), st.h, T, sigma, p.sec.l, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: T proof: %v", ErrInternal, err)
	}
	m := &msg3{delta: delta, T: T, pT: pf}
	return p.broadcast(3, m.encode()), nil
}

// round3Process verifies every peer's π^T_j, adds up δ = Σδⱼ and runs
// round 4.
func (p *Presigner) round3Process() ([]Message, error) {
	st := p.st
	box := p.inbox[3]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msg3)
		p.pub.delta[j], p.pub.T[j] = m.delta, m.T
		tasks[i] = func() error {
			if err := zkpedersen.Verify(st.session("T", j, Broadcast), m.pT, st.h, m.T); err != nil {
				return fmt.Errorf("%w: %v", ErrTProof, err)
			}
			return nil
		}
	}
	if err := blame(3, others, runAll(tasks)); err != nil {
		return nil, err
	}
	sum := new(big.Int)
	for _, d := range p.pub.delta {
		sum.Add(sum, d)
	}
	p.pub.deltaSum = sum.Mod(sum, secp.Q)
	return p.round4Start()
}
