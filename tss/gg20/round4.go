package gg20

import (
	"fmt"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdlog"
)

// round4Start is GG20 Phase 4 for signer i: it opens Cᵢ by broadcasting
// (Γᵢ, Dᵢ) with π^γ_i, a proof of knowledge of γᵢ = log_g Γᵢ.
func (p *Presigner) round4Start() ([]Message, error) {
	st := p.st
	Gamma := p.pub.Gamma[st.self]
	pf, err := zkdlog.Prove(st.session("gamma", st.self, Broadcast), Gamma, p.sec.gamma, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: gamma proof: %v", ErrInternal, err)
	}
	m := &msg4{Gamma: Gamma, open: p.sec.open, pGamma: pf}
	return p.broadcast(4, m.encode()), nil
}

// round4Process checks every peer's decommitment Com(Γⱼ, Dⱼ) = Cⱼ and π^γ_j,
// then runs round 5 — or, when δ = 0, the type-5 blame reveal, which shows
// who broadcast a δⱼ inconsistent with its MtA values.
func (p *Presigner) round4Process() ([]Message, int, error) {
	st := p.st
	box := p.inbox[4]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msg4)
		tasks[i] = func() error {
			if st.commitGamma(j, m.Gamma, m.open) != p.pub.commit[j] {
				return ErrDecommit
			}
			if err := zkdlog.Verify(st.session("gamma", j, Broadcast), m.pGamma, m.Gamma); err != nil {
				return fmt.Errorf("%w: %v", ErrGammaProof, err)
			}
			return nil
		}
	}
	if err := blame(4, others, runAll(tasks)); err != nil {
		return nil, 0, err
	}
	for _, j := range others {
		p.pub.Gamma[j] = box[j].(*msg4).Gamma
	}
	if p.pub.deltaSum.Sign() == 0 {
		out, err := p.revealRbarStart()
		return out, RoundRevealRbar, err
	}
	out, err := p.round5Start()
	return out, 5, err
}
