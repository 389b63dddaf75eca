package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpedersen"
)

// round3 is GG20 Phase 3: every signer broadcasts its share δᵢ of kγ and a
// Pedersen commitment Tᵢ to its share σᵢ of kx.
type round3 struct {
	*Presigner
	inbox[msg3, *msg3]
}

var _ round = (*round3)(nil)

// start is GG20 Phase 3 for signer i:
//
//	δᵢ = kᵢγᵢ + Σ_{j≠i} (α_{ij} + β_{ij})   with α_{ij} = α'_{ij} mod q
//	σᵢ = kᵢwᵢ + Σ_{j≠i} (μ_{ij} + ν_{ij})   with μ_{ij} = μ'_{ij} mod q
//	lᵢ ←$ Z_q,  Tᵢ = g^{σᵢ}·h^{lᵢ},  π^T_i : knowledge of (σᵢ, lᵢ)
//
// and broadcasts (δᵢ, Tᵢ, π^T_i). Σδᵢ = kγ and Σσᵢ = k·x' for k = Σkᵢ,
// γ = Σγᵢ and x' the (tweaked) secret key.
func (r *round3) start() ([]Message, error) {
	st := r.st
	// Constant-time arithmetic mod q: every term is secret.
	var tmp []*secp.ModQ
	val := func(x *big.Int) *secp.ModQ {
		v := secp.NewModQ(x)
		tmp = append(tmp, v)
		return v
	}
	k := val(r.sec.k)
	deltaQ := val(r.sec.gamma).Mul(k)
	sigmaQ := val(st.w).Mul(k)
	for _, j := range peers(st.n, st.self) {
		deltaQ.Add(val(r.sec.alphaPlain[j])).Sub(val(r.sec.betaPrm[j]))
		sigmaQ.Add(val(r.sec.muPlain[j])).Sub(val(r.sec.nuPrm[j]))
	}
	delta, sigma := deltaQ.Int(), sigmaQ.Int()
	for _, v := range tmp {
		v.Wipe()
	}
	r.sec.sigma = sigma
	r.pub.delta[st.self] = delta

	var T *secp.Point
	for T == nil || T.IsIdentity() {
		l, err := r.randomScalar()
		if err != nil {
			return nil, err
		}
		r.sec.l = l
		T = secp.Commit(sigma, st.h, l)
	}
	r.pub.T[st.self] = T
	pf, err := zkpedersen.Prove(st.session("T", st.self, Broadcast), st.h, T, sigma, r.sec.l, st.rand)
	if err != nil {
		return nil, fmt.Errorf("%w: T proof: %v", ErrInternal, err)
	}
	m := &msg3{delta: delta, T: T, pT: pf}
	return r.broadcast(m), nil
}

// verify checks every peer's π^T_j, the proof of knowledge of (σⱼ, lⱼ)
// with Tⱼ = g^{σⱼ}·h^{lⱼ}, and returns the messages. It changes no state.
func (r *round3) verify() ([]*msg3, error) {
	st := r.st
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			if err := zkpedersen.Verify(st.session("T", j, Broadcast), msgs[j].pT, st.h, msgs[j].T); err != nil {
				return fmt.Errorf("%w: %v", ErrTProof, err)
			}
			return nil
		}
	}
	if err := blame(3, others, runAll(tasks)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// store puts every peer's δⱼ and Tⱼ into the transcript and adds up
// δ = Σⱼ δⱼ mod q.
func (r *round3) store(msgs []*msg3) {
	for _, j := range peers(r.st.n, r.st.self) {
		r.pub.delta[j], r.pub.T[j] = msgs[j].delta, msgs[j].T
	}
	sum := new(big.Int)
	for _, d := range r.pub.delta {
		sum.Add(sum, d)
	}
	r.pub.deltaSum = sum.Mod(sum, secp.Q)
}

// finish verifies and stores round 3; the run goes on with round 4.
func (r *round3) finish() (int, map[int]error, error) {
	msgs, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(msgs)
	return 4, nil, nil
}
