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

// round1Start is GG20 Phase 1 for signer i:
//
//	kᵢ, γᵢ ←$ Z_q*,  Γᵢ = g^{γᵢ},  (Cᵢ, Dᵢ) = Com(Γᵢ)
//	cᵢ = Enc_i(kᵢ; ρᵢ)                         (once, for every peer)
//	π^range_{i→j} : cᵢ encrypts kᵢ < q³        (against Ñⱼ, h₁ⱼ, h₂ⱼ)
//
// and broadcasts (Cᵢ, cᵢ, [π^range_{i→j}]_{j≠i}).
func (p *Presigner) round1Start() ([]Message, error) {
	st := p.st
	var err error
	if p.sec.k, err = p.randomScalar(); err != nil {
		return nil, err
	}
	if p.sec.gamma, err = p.randomScalar(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(st.rand, p.sec.open[:]); err != nil {
		return nil, fmt.Errorf("%w: random source: %v", ErrInternal, err)
	}
	Gamma := secp.BaseMult(p.sec.gamma)
	p.pub.Gamma[st.self] = Gamma
	p.pub.commit[st.self] = st.commitGamma(st.self, Gamma, p.sec.open)

	c, rho, err := st.sk.Encrypt(st.rand, p.sec.k)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypt k: %v", ErrInternal, err)
	}
	p.pub.c[st.self], p.sec.rho = c, rho

	others := peers(st.n, st.self)
	proofs := make([]*mta.RangeProofAlice, len(others))
	tasks := make([]func() error, len(others))
	for i, j := range others {
		tasks[i] = func() error {
			pf, err := zkmta.ProveRange(st.session("range", st.self, j), st.sk.Public(), c, p.sec.k, rho, st.rp[j], st.rand)
			proofs[i] = pf
			return err
		}
	}
	if err := firstError(runAll(tasks)); err != nil {
		return nil, fmt.Errorf("%w: range proof: %v", ErrInternal, err)
	}
	m := &msg1{commit: p.pub.commit[st.self], c: c, rng: proofs}
	p.sent[1] = m
	return p.broadcast(1, m.encode()), nil
}

// round1Process verifies every peer's round-1 message — π^range_{j→i}
// against this party's own Ñᵢ (CRT) — and then runs round 2, or, if a proof
// for this party failed, sends a complaint in its place (complaint.go).
func (p *Presigner) round1Process() ([]Message, error) {
	st := p.st
	box := p.inbox[1]
	others := peers(st.n, st.self)
	tasks := make([]func() error, len(others))
	for i, j := range others {
		m := box[j].(*msg1)
		p.pub.c[j], p.pub.commit[j] = m.c, m.commit
		tasks[i] = func() error {
			if err := zkmta.VerifyRange(st.session("range", j, st.self), m.rng[slot(j, st.self)], st.pk[j], m.c, st.rp[st.self]); err != nil {
				return fmt.Errorf("%w: %v", ErrRangeProof, err)
			}
			return nil
		}
	}
	failed, err := failures(others, runAll(tasks))
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return p.complain(1, 2, failed), nil
	}
	return p.round2Start()
}
