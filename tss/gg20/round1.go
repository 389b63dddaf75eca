package gg20

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkmta"
)

// round1 is GG20 Phase 1: every signer commits to Γᵢ and sends cᵢ, its kᵢ
// encrypted under its own Paillier key, with a range proof for each
// verifier.
type round1 struct {
	*Presigner
	inbox[msg1, *msg1]
	own *msg1 // this party's message, until round 1 is stored
}

var _ round = (*round1)(nil)

// accepted1 is what round 1 accepted: every peer's message, and the
// provers whose range proof for this party failed.
type accepted1 struct {
	msgs   []*msg1       // by signer index; this party's entry is nil
	failed map[int]error // prover → why its proof failed
}

// commitGamma returns the round-1 commitment of signer i to Γᵢ:
// Cᵢ = SHA-256(tag ‖ context ‖ i ‖ Γᵢ ‖ Dᵢ) with a 32-byte random opening
// Dᵢ. It binds the run context (session ID, signers, keys) and the signer.
func (st *setup) commitGamma(i int, Gamma *secp.Point, open [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("keyquorum/gg20/commit-gamma/v1"))
	h.Write(st.ctx[:])
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	h.Write(b[:])
	h.Write(Gamma.Bytes())
	h.Write(open[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// start is GG20 Phase 1 for signer i:
//
//	kᵢ, γᵢ ←$ Z_q*,  Γᵢ = g^{γᵢ},  (Cᵢ, Dᵢ) = Com(Γᵢ)
//	cᵢ = Enc_i(kᵢ; ρᵢ)                         (once, for every peer)
//	π^range_{i→j} : cᵢ encrypts kᵢ < q³        (against Ñⱼ, h₁ⱼ, h₂ⱼ)
//
// and broadcasts (Cᵢ, cᵢ, [π^range_{i→j}]_{j≠i}).
func (r *round1) start() ([]Message, error) {
	st := r.st
	var err error
	if r.sec.k, err = r.randomScalar(); err != nil {
		return nil, err
	}
	if r.sec.gamma, err = r.randomScalar(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(st.rand, r.sec.open[:]); err != nil {
		return nil, fmt.Errorf("%w: random source: %v", ErrInternal, err)
	}
	Gamma := secp.BaseMult(r.sec.gamma)
	r.pub.Gamma[st.self] = Gamma
	r.pub.commit[st.self] = st.commitGamma(st.self, Gamma, r.sec.open)

	c, rho, err := st.sk.Encrypt(st.rand, r.sec.k)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypt k: %v", ErrInternal, err)
	}
	r.pub.c[st.self], r.sec.rho = c, rho

	others := peers(st.n, st.self)
	proofs := make([]*mta.RangeProofAlice, len(others))
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			pf, err := zkmta.ProveRange(st.session("range", st.self, j), st.sk.Public(), c, r.sec.k, rho, st.rp[j], st.rand)
			proofs[i] = pf
			return err
		}
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: range proof: %v", ErrInternal, err)
	}
	r.own = &msg1{commit: r.pub.commit[st.self], c: c, rng: proofs}
	return r.broadcast(r.own), nil
}

// verify checks, for every peer j, the range proof π^range_{j→i} that j
// made against this party's Ñᵢ (with the CRT). It changes no state. A
// failed proof does not end the run: it is reported in failed, for this
// party's complaint.
func (r *round1) verify() (*accepted1, error) {
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
	return &accepted1{msgs: msgs, failed: failed}, nil
}

// verifySlot checks the range proof in prover's message m that is
// addressed to verifier:
//
//	π^range_{prover→verifier} : c_prover encrypts a k < q³  (against Ñ_verifier)
//
// The verifier itself checks it with the CRT over its own Ñ; any other
// signer, judging the verifier's complaint, with the public parameters.
func (r *round1) verifySlot(m *msg1, prover, verifier int) error {
	st := r.st
	if err := zkmta.VerifyRange(st.session("range", prover, verifier), m.rng[slot(prover, verifier)], st.pk[prover], m.c, st.rp[verifier]); err != nil {
		return fmt.Errorf("%w: %v", ErrRangeProof, err)
	}
	return nil
}

// store puts every peer's Cⱼ and cⱼ into the transcript and keeps the
// round's messages, this party's own included, for complaints about them
// in round 2.
func (r *round1) store(a *accepted1) {
	for _, j := range peers(r.st.n, r.st.self) {
		r.pub.c[j], r.pub.commit[j] = a.msgs[j].c, a.msgs[j].commit
	}
	msgs := a.msgs
	msgs[r.st.self], r.own = r.own, nil
	r.keep(1, func(prover, verifier int) error { return r.verifySlot(msgs[prover], prover, verifier) })
}

// finish verifies and stores round 1; the run goes on with round 2.
func (r *round1) finish() (int, map[int]error, error) {
	a, err := r.verify()
	if err != nil {
		return 0, nil, err
	}
	r.store(a)
	return 2, a.failed, nil
}
