package gg20

import (
	"fmt"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdlog"
)

// round4 is GG20 Phase 4: every signer opens its round-1 commitment to Γᵢ.
type round4 struct {
	*Presigner
	inbox[msg4, *msg4]
}

var _ round = (*round4)(nil)

// start is GG20 Phase 4 for signer i: it opens Cᵢ by broadcasting
// (Γᵢ, Dᵢ) with π^γ_i, a proof of knowledge of γᵢ = log_g Γᵢ.
func (r *round4) start() ([]Message, error) {
	st := r.st
	Gamma := r.pub.Gamma[st.self]
	pf, err := zkdlog.Prove(st.session("gamma", st.self, Broadcast), Gamma, r.sec.gamma, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: gamma proof: %v", ErrInternal, err)
	}
	m := &msg4{Gamma: Gamma, open: r.sec.open, pGamma: pf}
	return r.broadcast(m), nil
}

// verify checks every peer's decommitment Com(Γⱼ, Dⱼ) = Cⱼ and π^γ_j,
// and returns the messages. It changes no state.
func (r *round4) verify() ([]*msg4, error) {
	st := r.st
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := msgs[j]
		tasks[i] = func() error {
			if st.commitGamma(j, m.Gamma, m.open) != r.pub.commit[j] {
				return ErrDecommit
			}
			if err := zkdlog.Verify(st.session("gamma", j, Broadcast), m.pGamma, m.Gamma); err != nil {
				return fmt.Errorf("%w: %v", ErrGammaProof, err)
			}
			return nil
		}
	}
	if err := blame(4, others, runAll(tasks)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// store puts every peer's Γⱼ into the transcript.
func (r *round4) store(msgs []*msg4) {
	for _, j := range peers(r.st.n, r.st.self) {
		r.pub.Gamma[j] = msgs[j].Gamma
	}
}

// finish verifies and stores round 4. The run goes on with round 5 — or,
// when δ = 0, with the type-5 blame reveal, which shows who broadcast a δⱼ
// inconsistent with its MtA values.
func (r *round4) finish() (int, map[int]error, error) {
	msgs, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(msgs)
	if r.pub.deltaSum.Sign() == 0 {
		return RoundRevealRbar, nil, nil
	}
	return 5, nil, nil
}
