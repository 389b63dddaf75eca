package gg20

import (
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpdl"
)

// round5 is GG20 Phase 5: every signer computes R and broadcasts
// R̄ᵢ = R^{kᵢ} with a PDL proof for each verifier.
type round5 struct {
	*Presigner
	inbox[msg5, *msg5]
	own *msg5 // this party's message, until round 5 is stored
}

var _ round = (*round5)(nil)

// accepted5 is what round 5 accepted: every peer's message, and the
// provers whose PDL proof for this party failed.
type accepted5 struct {
	msgs   []*msg5       // by signer index; this party's entry is nil
	failed map[int]error // prover → why its proof failed
}

// start is GG20 Phase 5 for signer i:
//
//	Γ = Πⱼ Γⱼ,  R = Γ^{δ⁻¹} (= g^{1/k}),  r = R.x mod q
//	R̄ᵢ = R^{kᵢ},  π^PDL_{i→j} : R̄ᵢ = R^{kᵢ} for the kᵢ inside cᵢ  (against Ñⱼ)
//
// and broadcasts (R̄ᵢ, [π^PDL_{i→j}]_{j≠i}).
func (r *round5) start() ([]Message, error) {
	st := r.st
	q := secp.Q
	Gamma := secp.Sum(r.pub.Gamma...)
	inv := new(big.Int).ModInverse(r.pub.deltaSum, q)
	R := Gamma.Mul(inv)
	if R.IsIdentity() {
		// Γ = Σγⱼ·g with every γⱼ committed before any was known: only a
		// negligible event, or a broken commitment, gets here.
		return nil, &CulpritError{Round: 4, Err: ErrRbarProduct}
	}
	rx, _ := R.XY()
	rq := rx.Mod(rx, q)
	if rq.Sign() == 0 {
		return nil, &CulpritError{Round: 4, Err: ErrRbarProduct}
	}
	r.pub.R, r.pub.r = R, rq
	Rbar := R.Mul(r.sec.k)
	r.pub.Rbar[st.self] = Rbar

	others := peers(st.n, st.self)
	proofs := make([]*zkpdl.Proof, len(others))
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			stmt := &zkpdl.Statement{PK: st.pk[st.self], C: r.pub.c[st.self], R: R, Rbar: Rbar, V: st.rp[j]}
			pf, err := zkpdl.Prove(st.session("pdl", st.self, j), stmt, r.sec.k, r.sec.rho, st.rand)
			proofs[i] = pf
			return err
		}
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: PDL proof: %v", ErrInternal, err)
	}
	r.own = &msg5{Rbar: Rbar, pdl: proofs}
	return r.broadcast(r.own), nil
}

// verify checks, for every peer j, the PDL proof π^PDL_{j→i} that j made
// against this party's Ñᵢ (with the CRT). It changes no state. A failed
// proof does not end the run: it is reported in failed, for this party's
// complaint.
func (r *round5) verify() (*accepted5, error) {
	st := r.st
	msgs := r.received()
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error { return r.verifySlot(msgs[j], j, st.self) }
	}
	failed, err := failures(others, runAll(tasks))
	if err != nil {
		return nil, err
	}
	return &accepted5{msgs: msgs, failed: failed}, nil
}

// verifySlot checks the PDL proof in prover's message m that is addressed
// to verifier:
//
//	π^PDL_{prover→verifier} : R̄_prover = R^k for the k inside c_prover  (against Ñ_verifier)
//
// The verifier itself checks it with the CRT over its own Ñ; any other
// signer, judging the verifier's complaint, with the public parameters.
func (r *round5) verifySlot(m *msg5, prover, verifier int) error {
	st := r.st
	stmt := &zkpdl.Statement{PK: st.pk[prover], C: r.pub.c[prover], R: r.pub.R, Rbar: m.Rbar, V: st.rp[verifier]}
	if err := zkpdl.Verify(st.session("pdl", prover, verifier), m.pdl[slot(prover, verifier)], stmt); err != nil {
		return fmt.Errorf("%w: %v", ErrPDLProof, err)
	}
	return nil
}

// store puts every peer's R̄ⱼ into the transcript and keeps the round's
// messages, this party's own included, for complaints about them in the
// next round.
func (r *round5) store(a *accepted5) {
	for _, j := range peers(r.st.n, r.st.self) {
		r.pub.Rbar[j] = a.msgs[j].Rbar
	}
	msgs := a.msgs
	msgs[r.st.self], r.own = r.own, nil
	r.keep(5, func(prover, verifier int) error { return r.verifySlot(msgs[prover], prover, verifier) })
}

// finish verifies and stores round 5, then checks Πⱼ R̄ⱼ = g
// (Σkⱼ·R = k·g^{1/k}). If the product is right the run goes on with round
// 6; otherwise with the type-5 blame reveal (GG20 §4.3). A complaint of
// this party takes the place of its message of whichever of the two the
// run enters; the product is of broadcast values, so every signer enters
// the same one.
func (r *round5) finish() (int, map[int]error, error) {
	a, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(a)
	if !secp.Sum(r.pub.Rbar...).Equal(secp.Generator()) {
		return RoundRevealRbar, a.failed, nil
	}
	return 6, a.failed, nil
}
