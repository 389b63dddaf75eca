package gg20

import (
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkmta"
)

// round2Start is GG20 Phase 2 for signer i as Bob towards every Alice j:
//
//	MtA(kⱼ, γᵢ):   c^γ_{ji} = cⱼ^{γᵢ}·Enc_j(β'_{ij}),  βᵢⱼ = −β'_{ij} mod q
//	MtAwc(kⱼ, wᵢ): c^w_{ji} = cⱼ^{wᵢ}·Enc_j(ν'_{ij}),  νᵢⱼ = −ν'_{ij} mod q
//
// each with Bob's proof against Ñⱼ (the MtAwc proof also shows g^{wᵢ} = Wᵢ).
// All responses go into one broadcast so that every signer can check them in
// the blame rounds.
func (p *Presigner) round2Start() ([]Message, error) {
	st := p.st
	others := peers(st.n, st.self)
	entries := make([]mtaEntry, len(others))
	tasks := make([]func() error, 0, 2*len(others))
	for i, j := range others {
		tasks = append(tasks, func() error {
			resp, pf, _, err := mtaBob(st.session("mta-gamma", st.self, j), st.pk[j], st.rp[j], p.pub.c[j], p.sec.gamma, nil, st.rand)
			if err != nil {
				return err
			}
			entries[i].cGamma, entries[i].pGamma = resp.c, pf
			p.sec.betaPrm[j], p.sec.betaNonce[j] = resp.betaPrm, resp.nonce
			return nil
		}, func() error {
			resp, _, pf, err := mtaBob(st.session("mta-w", st.self, j), st.pk[j], st.rp[j], p.pub.c[j], st.w, st.W[st.self], st.rand)
			if err != nil {
				return err
			}
			entries[i].cW, entries[i].pW = resp.c, pf
			p.sec.nuPrm[j], p.sec.nuNonce[j] = resp.betaPrm, resp.nonce
			return nil
		})
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: MtA response: %v", ErrInternal, err)
	}
	for i, j := range others {
		p.pub.cGamma[st.self][j], p.pub.cW[st.self][j] = entries[i].cGamma, entries[i].cW
	}
	m := &msg2{entries: entries}
	p.sent[2] = m
	return p.broadcast(2, m.encode()), nil
}

// round2Process is GG20 Phase 2 for signer i as Alice: for every Bob j it
// verifies Bob's proofs for c^γ_{ij} and c^w_{ij} under its own Paillier key
// and Ñᵢ (both with the CRT; the MtAwc proof against Wⱼ = g^{wⱼ}) and
// decrypts α'_{ij} = Dec_i(c^γ_{ij}), μ'_{ij} = Dec_i(c^w_{ij}). Then it runs
// round 3, or, if a proof for this party failed, sends a complaint in its
// place (complaint.go).
func (p *Presigner) round2Process() ([]Message, error) {
	st := p.st
	box := p.inbox[2]
	others := peers(st.n, st.self)
	tasks := make([]func() error, 0, 2*len(others))
	who := make([]int, 0, 2*len(others))
	for _, j := range others {
		m := box[j].(*msg2)
		for _, a := range peers(st.n, j) {
			e := m.entries[slot(j, a)]
			p.pub.cGamma[j][a], p.pub.cW[j][a] = e.cGamma, e.cW
		}
		e := m.entries[slot(j, st.self)]
		tasks = append(tasks, func() error {
			return p.aliceEnd(st.session("mta-gamma", j, st.self), e.cGamma, e.pGamma, nil, j, false)
		}, func() error {
			return p.aliceEnd(st.session("mta-w", j, st.self), e.cW, nil, e.pW, j, true)
		})
		who = append(who, j, j)
	}
	failed, err := failures(who, runAll(tasks))
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return p.complain(2, 3, failed), nil
	}
	return p.round3Start()
}

// aliceEnd verifies Bob j's proof for ciphertext cB — with the plaintexts
// and nonces under this party's own key (zkmta.VerifyBobOwnKey) — and stores
// its decryption.
func (p *Presigner) aliceEnd(session []byte, cB *big.Int, pf *mta.ProofBob, pfwc *mta.ProofBobWC, j int, withCheck bool) error {
	st := p.st
	own := &zkmta.Opening{C: p.pub.c[st.self], M: p.sec.k}
	var (
		m   *big.Int
		err error
	)
	what := "MtA(k, gamma)"
	if withCheck {
		what = "MtAwc(k, w)"
		if pfwc == nil || pfwc.ProofBob == nil {
			return fmt.Errorf("%w: %s: missing proof", ErrMtAProof, what)
		}
		m, err = zkmta.VerifyBobOwnKey(session, pfwc.ProofBob, pfwc.U, st.sk, st.rp[st.self], own, cB, st.W[j])
	} else {
		m, err = zkmta.VerifyBobOwnKey(session, pf, nil, st.sk, st.rp[st.self], own, cB, nil)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMtAProof, what, err)
	}
	if withCheck {
		p.sec.muPlain[j] = m
	} else {
		p.sec.alphaPlain[j] = m
	}
	return nil
}
