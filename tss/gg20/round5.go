package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpdl"
)

// round5Start is GG20 Phase 5 for signer i:
//
//	Γ = Πⱼ Γⱼ,  R = Γ^{δ⁻¹} (= g^{1/k}),  r = R.x mod q
//	R̄ᵢ = R^{kᵢ},  π^PDL_{i→j} : R̄ᵢ = R^{kᵢ} for the kᵢ inside cᵢ  (against Ñⱼ)
//
// and broadcasts (R̄ᵢ, [π^PDL_{i→j}]_{j≠i}).
func (p *Presigner) round5Start() ([]Message, error) {
	st := p.st
	q := secp.Q
	Gamma := secp.Sum(p.pub.Gamma...)
	inv := new(big.Int).ModInverse(p.pub.deltaSum, q)
	R := Gamma.Mul(inv)
	if R.IsIdentity() {
		// Γ = Σγⱼ·g with every γⱼ committed before any was known: only a
		// negligible event, or a broken commitment, gets here.
		return nil, &CulpritError{Round: 4, Err: ErrRbarProduct}
	}
	rx, _ := R.XY()
	r := rx.Mod(rx, q)
	if r.Sign() == 0 {
		return nil, &CulpritError{Round: 4, Err: ErrRbarProduct}
	}
	p.pub.R, p.pub.r = R, r
	Rbar := R.Mul(p.sec.k)
	p.pub.Rbar[st.self] = Rbar

	others := peers(st.n, st.self)
	proofs := make([]*zkpdl.Proof, len(others))
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			stmt := &zkpdl.Statement{PK: st.pk[st.self], C: p.pub.c[st.self], R: R, Rbar: Rbar, V: st.rp[j]}
			pf, err := zkpdl.Prove(st.session("pdl", st.self, j), stmt, p.sec.k, p.sec.rho, st.rand)
			proofs[i] = pf
			return err
		}
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: PDL proof: %v", ErrInternal, err)
	}
	m := &msg5{Rbar: Rbar, pdl: proofs}
	p.sent[5] = m
	return p.broadcast(5, m.encode()), nil
}

// round5Process verifies every peer's π^PDL_{j→i} against this party's own
// Ñᵢ (CRT), then checks Πⱼ R̄ⱼ = g (Σkⱼ·R = k·g^{1/k}). If the product is
// right it runs round 6; otherwise it starts the type-5 blame reveal
// (GG20 §4.3). If a proof for this party failed, it sends a complaint in
// place of its message of whichever of the two rounds the run enters
// (complaint.go); the product is of broadcast values, so every signer
// enters the same one.
func (p *Presigner) round5Process() ([]Message, int, error) {
	st := p.st
	box := p.inbox[5]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msg5)
		tasks[i] = func() error {
			stmt := &zkpdl.Statement{PK: st.pk[j], C: p.pub.c[j], R: p.pub.R, Rbar: m.Rbar, V: st.rp[st.self]}
			if err := zkpdl.Verify(st.session("pdl", j, st.self), m.pdl[slot(j, st.self)], stmt); err != nil {
				return fmt.Errorf("%w: %v", ErrPDLProof, err)
			}
			return nil
		}
	}
	failed, err := failures(others, runAll(tasks))
	if err != nil {
		return nil, 0, err
	}
	for _, j := range others {
		p.pub.Rbar[j] = box[j].(*msg5).Rbar
	}
	next := 6
	if !secp.Sum(p.pub.Rbar...).Equal(secp.Generator()) {
		next = RoundRevealRbar
	}
	switch {
	case len(failed) > 0:
		return p.complain(5, next, failed), next, nil
	case next == RoundRevealRbar:
		out, err := p.revealRbarStart()
		return out, next, err
	}
	out, err := p.round6Start()
	return out, next, err
}
