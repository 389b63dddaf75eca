package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkst"
)

// round6 is GG20 Phase 6: every signer broadcasts Sᵢ = R^{σᵢ}, proven
// consistent with its commitment Tᵢ, and the presignature is complete if
// ΠSⱼ is the public key.
type round6 struct {
	*Presigner
	inbox[msg6, *msg6]
}

var _ round = (*round6)(nil)

// start is GG20 Phase 6 for signer i:
//
//	Sᵢ = R^{σᵢ},  π^ST_i : Sᵢ = R^{σᵢ} and Tᵢ = g^{σᵢ}·h^{lᵢ} for the same σᵢ
//
// and broadcasts (Sᵢ, π^ST_i).
func (r *round6) start() ([]Message, error) {
	st := r.st
	S := r.pub.R.Mul(r.sec.sigma)
	r.pub.S[st.self] = S
	stmt := &zkst.Statement{R: r.pub.R, H: st.h, S: S, T: r.pub.T[st.self]}
	pf, err := zkst.Prove(st.session("st", st.self, Broadcast), stmt, r.sec.sigma, r.sec.l, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: ST proof: %v", ErrInternal, err)
	}
	m := &msg6{S: S, pST: pf}
	return r.broadcast(m), nil
}

// verify checks every peer's π^ST_j, which shows Sⱼ = R^{σⱼ} for the σⱼ
// committed in Tⱼ, and returns the messages. It changes no state.
func (r *round6) verify() ([]*msg6, error) {
	st := r.st
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			stmt := &zkst.Statement{R: r.pub.R, H: st.h, S: msgs[j].S, T: r.pub.T[j]}
			if err := zkst.Verify(st.session("st", j, Broadcast), msgs[j].pST, stmt); err != nil {
				return fmt.Errorf("%w: %v", ErrSTProof, err)
			}
			return nil
		}
	}
	if err := blame(6, others, runAll(tasks)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// store puts every peer's Sⱼ into the transcript.
func (r *round6) store(msgs []*msg6) {
	for _, j := range peers(r.st.n, r.st.self) {
		r.pub.S[j] = msgs[j].S
	}
}

// finish verifies and stores round 6, then checks Πⱼ Sⱼ = y'
// (Σσⱼ·R = k·x'·g^{1/k}). If the product is right the presignature is
// complete; otherwise the run goes on with the type-7 blame reveal (GG20
// §4.3).
func (r *round6) finish() (int, map[int]error, error) {
	msgs, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(msgs)
	if !secp.Sum(r.pub.S...).Equal(r.st.y) {
		return RoundRevealS, nil, nil
	}
	st := r.st
	r.result = &Presignature{
		sessionID: st.sid,
		signers:   cloneInts(st.ids),
		self:      st.self,
		tweak:     new(big.Int).Set(st.tweak),
		pub:       st.y,
		bigR:      r.pub.R,
		r:         new(big.Int).Set(r.pub.r),
		rbar:      append([]*secp.Point(nil), r.pub.Rbar...),
		s:         append([]*secp.Point(nil), r.pub.S...),
		k:         new(big.Int).Set(r.sec.k),
		sigma:     new(big.Int).Set(r.sec.sigma),
	}
	return 0, nil, nil
}

func cloneInts(in []*big.Int) []*big.Int {
	out := make([]*big.Int, len(in))
	for i, v := range in {
		out[i] = new(big.Int).Set(v)
	}
	return out
}
