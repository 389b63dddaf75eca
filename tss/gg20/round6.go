package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkst"
)

// round6Start is GG20 Phase 6 for signer i:
//
//	Sᵢ = R^{σᵢ},  π^ST_i : Sᵢ = R^{σᵢ} and Tᵢ = g^{σᵢ}·h^{lᵢ} for the same σᵢ
//
// and broadcasts (Sᵢ, π^ST_i).
func (p *Presigner) round6Start() ([]Message, error) {
	st := p.st
	S := p.pub.R.Mul(p.sec.sigma)
	p.pub.S[st.self] = S
	stmt := &zkst.Statement{R: p.pub.R, H: st.h, S: S, T: p.pub.T[st.self]}
	pf, err := zkst.Prove(st.session("st", st.self, Broadcast), stmt, p.sec.sigma, p.sec.l, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: ST proof: %v", ErrInternal, err)
	}
	m := &msg6{S: S, pST: pf}
	return p.broadcast(6, m.encode()), nil
}

// round6Process verifies every peer's π^ST_j and checks Πⱼ Sⱼ = y'
// (Σσⱼ·R = k·x'·g^{1/k}). If the product is right the presignature is
// complete; otherwise it starts the type-7 blame reveal (GG20 §4.3).
func (p *Presigner) round6Process() ([]Message, int, error) {
	st := p.st
	box := p.inbox[6]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msg6)
		tasks[i] = func() error {
			stmt := &zkst.Statement{R: p.pub.R, H: st.h, S: m.S, T: p.pub.T[j]}
			if err := zkst.Verify(st.session("st", j, Broadcast), m.pST, stmt); err != nil {
				return fmt.Errorf("%w: %v", ErrSTProof, err)
			}
			return nil
		}
	}
	if err := blame(6, others, runAll(tasks)); err != nil {
		return nil, 0, err
	}
	for _, j := range others {
		p.pub.S[j] = box[j].(*msg6).S
	}
	if !secp.Sum(p.pub.S...).Equal(st.y) {
		out, err := p.revealSStart()
		return out, RoundRevealS, err
	}
	p.result = &Presignature{
		sessionID: st.sid,
		signers:   cloneInts(st.ids),
		self:      st.self,
		tweak:     new(big.Int).Set(st.tweak),
		pub:       st.y,
		bigR:      p.pub.R,
		r:         new(big.Int).Set(p.pub.r),
		rbar:      append([]*secp.Point(nil), p.pub.Rbar...),
		s:         append([]*secp.Point(nil), p.pub.S...),
		k:         new(big.Int).Set(p.sec.k),
		sigma:     new(big.Int).Set(p.sec.sigma),
	}
	return nil, 0, nil
}

func cloneInts(in []*big.Int) []*big.Int {
	out := make([]*big.Int, len(in))
	for i, v := range in {
		out[i] = new(big.Int).Set(v)
	}
	return out
}
