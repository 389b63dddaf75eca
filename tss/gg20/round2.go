package gg20

import (
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkmta"
)

// round2 is GG20 Phase 2, the MtA and MtAwc conversions: every signer, as
// Bob, answers every other signer's cⱼ with Paillier ciphertexts of its
// shares and proofs of them, and, as Alice, decrypts the answers to its
// own cᵢ.
type round2 struct {
	*Presigner
	inbox[msg2, *msg2]
	own *msg2 // this party's message, until round 2 is stored
}

var _ round = (*round2)(nil)

// accepted2 is what round 2 accepted: every peer's message, this party's
// decryptions of the answers to its cᵢ (secret), and the provers whose
// proofs for this party failed.
type accepted2 struct {
	msgs      []*msg2       // by signer index; this party's entry is nil
	alpha, mu []*big.Int    // α'ᵢⱼ, μ'ᵢⱼ by Bob j; nil where its proof failed
	failed    map[int]error // prover → why its proof failed
}

// wipe overwrites the decryptions.
func (a *accepted2) wipe() {
	for _, vs := range [][]*big.Int{a.alpha, a.mu} {
		for _, v := range vs {
			arith.WipeInt(v)
		}
	}
}

// start is GG20 Phase 2 for signer i as Bob towards every Alice j:
//
//	MtA(kⱼ, γᵢ):   c^γ_{ji} = cⱼ^{γᵢ}·Enc_j(β'_{ij}),  βᵢⱼ = −β'_{ij} mod q
//	MtAwc(kⱼ, wᵢ): c^w_{ji} = cⱼ^{wᵢ}·Enc_j(ν'_{ij}),  νᵢⱼ = −ν'_{ij} mod q
//
// each with Bob's proof against Ñⱼ (the MtAwc proof also shows g^{wᵢ} = Wᵢ).
// All responses go into one broadcast so that every signer can check them in
// the blame rounds.
func (r *round2) start() ([]Message, error) {
	st := r.st
	others := peers(st.n, st.self)
	entries := make([]mtaEntry, len(others))
	tasks := make([]func() error, 0, 2*len(others))
	for i, j := range others {
		tasks = append(tasks, func() error {
			resp, pf, _, err := mtaBob(st.session("mta-gamma", st.self, j), st.pk[j], st.rp[j], r.pub.c[j], r.sec.gamma, nil, st.rand)
			if err != nil {
				return err
			}
			entries[i].cGamma, entries[i].pGamma = resp.c, pf
			r.sec.betaPrm[j], r.sec.betaNonce[j] = resp.betaPrm, resp.nonce
			return nil
		}, func() error {
			resp, _, pf, err := mtaBob(st.session("mta-w", st.self, j), st.pk[j], st.rp[j], r.pub.c[j], st.w, st.W[st.self], st.rand)
			if err != nil {
				return err
			}
			entries[i].cW, entries[i].pW = resp.c, pf
			r.sec.nuPrm[j], r.sec.nuNonce[j] = resp.betaPrm, resp.nonce
			return nil
		})
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: MtA response: %v", ErrInternal, err)
	}
	for i, j := range others {
		r.pub.cGamma[st.self][j], r.pub.cW[st.self][j] = entries[i].cGamma, entries[i].cW
	}
	r.own = &msg2{entries: entries}
	return r.broadcast(r.own), nil
}

// verify is GG20 Phase 2 for signer i as Alice: for every Bob j it checks
// Bob's proofs for c^γ_{ij} and c^w_{ij} under its own Paillier key and Ñᵢ
// (both with the CRT; the MtAwc proof against Wⱼ = g^{wⱼ}) and decrypts
//
//	α'ᵢⱼ = Dec_i(c^γ_{ij}),  μ'ᵢⱼ = Dec_i(c^w_{ij})
//
// It changes no state. A failed proof does not end the run: it is
// reported in failed, for this party's complaint.
func (r *round2) verify() (*accepted2, error) {
	st := r.st
	a := &accepted2{msgs: r.received(), alpha: make([]*big.Int, st.n), mu: make([]*big.Int, st.n)}
	others := peers(st.n, st.self)
	tasks := make([]func() error, 0, 2*len(others))
	who := make([]int, 0, 2*len(others))
	for _, j := range others {
		e := a.msgs[j].entries[slot(j, st.self)]
		tasks = append(tasks, func() (err error) {
			a.alpha[j], err = r.aliceEnd(st.session("mta-gamma", j, st.self), e.cGamma, e.pGamma, nil, j)
			return err
		}, func() (err error) {
			if e.pW == nil || e.pW.ProofBob == nil {
				return fmt.Errorf("%w: MtAwc(k, w): missing proof", ErrMtAProof)
			}
			a.mu[j], err = r.aliceEnd(st.session("mta-w", j, st.self), e.cW, e.pW.ProofBob, e.pW, j)
			return err
		})
		who = append(who, j, j)
	}
	failed, err := failures(who, runAll(tasks))
	if err != nil {
		a.wipe()
		return nil, err
	}
	a.failed = failed
	return a, nil
}

// aliceEnd checks Bob j's proof pf for ciphertext cB — MtAwc's (with U, for
// Wⱼ) if pfwc is set, MtA's otherwise — with the plaintexts and nonces
// under this party's own key (zkmta.VerifyBobOwnKey) and returns the
// decryption.
func (r *round2) aliceEnd(session []byte, cB *big.Int, pf *mta.ProofBob, pfwc *mta.ProofBobWC, j int) (*big.Int, error) {
	st := r.st
	own := &zkmta.Opening{C: r.pub.c[st.self], M: r.sec.k}
	what := "MtA(k, gamma)"
	var (
		m   *big.Int
		err error
	)
	if pfwc != nil {
		what = "MtAwc(k, w)"
		m, err = zkmta.VerifyBobOwnKey(session, pf, pfwc.U, st.sk, st.rp[st.self], own, cB, st.W[j])
	} else {
		m, err = zkmta.VerifyBobOwnKey(session, pf, nil, st.sk, st.rp[st.self], own, cB, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMtAProof, what, err)
	}
	return m, nil
}

// verifySlot checks, as any signer can, Bob's proofs in prover's message m
// for the ciphertexts it sent to Alice verifier:
//
//	c^γ_{verifier,prover} = c_verifier^{γ}·Enc(β')  and  c^w_{verifier,prover} = c_verifier^{w}·Enc(ν')
//
// against Alice's Paillier key and Ñ (the MtAwc proof against W_prover).
// It serves complaints; the verifier itself checks its slot in verify.
func (r *round2) verifySlot(m *msg2, prover, verifier int) error {
	st := r.st
	e := m.entries[slot(prover, verifier)]
	if err := zkmta.VerifyBob(st.session("mta-gamma", prover, verifier), e.pGamma, st.pk[verifier], st.rp[verifier], r.pub.c[verifier], e.cGamma); err != nil {
		return fmt.Errorf("%w: MtA(k, gamma): %v", ErrMtAProof, err)
	}
	if err := zkmta.VerifyBobWC(st.session("mta-w", prover, verifier), e.pW, st.pk[verifier], st.rp[verifier], r.pub.c[verifier], e.cW, st.W[prover]); err != nil {
		return fmt.Errorf("%w: MtAwc(k, w): %v", ErrMtAProof, err)
	}
	return nil
}

// store puts every peer's MtA and MtAwc ciphertexts (c^γ_{aj}, c^w_{aj} for
// every Alice a) into the transcript and this party's decryptions α'ᵢⱼ,
// μ'ᵢⱼ into its secrets, and keeps the round's messages, this party's own
// included, for complaints about them in round 3.
func (r *round2) store(a *accepted2) {
	st := r.st
	for _, j := range peers(st.n, st.self) {
		for _, alice := range peers(st.n, j) {
			e := a.msgs[j].entries[slot(j, alice)]
			r.pub.cGamma[j][alice], r.pub.cW[j][alice] = e.cGamma, e.cW
		}
		r.sec.alphaPlain[j], r.sec.muPlain[j] = a.alpha[j], a.mu[j]
	}
	msgs := a.msgs
	msgs[st.self], r.own = r.own, nil
	r.keep(2, func(prover, verifier int) error { return r.verifySlot(msgs[prover], prover, verifier) })
}

// finish verifies and stores round 2; the run goes on with round 3.
func (r *round2) finish() (int, map[int]error, error) {
	a, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(a)
	return 3, a.failed, nil
}
