package gg20

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// complainInstead returns a tamper function that replaces the cheater's
// message of round slot with the given complaint payload.
func complainInstead(slot int, payload []byte) func(*Message) {
	return func(msg *Message) {
		if msg.From == cheater && msg.Round == slot {
			msg.Payload = payload
		}
	}
}

// A signer that complains about valid proofs is named by every honest
// signer, the falsely accused honest provers included; the accused are not.
func TestComplaint_FalseAccusationNamesTheComplainer(t *testing.T) {
	for _, tc := range []struct{ about, slot int }{{1, 2}, {2, 3}, {5, 6}} {
		for _, accused := range [][]int{{0}, {2}, {0, 2}} {
			t.Run(fmt.Sprintf("round %d proofs of %v", tc.about, accused), func(t *testing.T) {
				c := &msgComplaint{about: tc.about, provers: accused}
				errs := runCheat(t, func(nw *network) { nw.tamper = complainInstead(tc.slot, c.encode()) })
				for i, err := range errs {
					assertCulprit(t, i, err, ErrFalseComplaint, cheater)
					var ce *CulpritError
					errors.As(err, &ce)
					if ce.Round != tc.about {
						t.Fatalf("signer %d: culprit error for round %d, want %d", i, ce.Round, tc.about)
					}
				}
			})
		}
	}
}

// Complaints that cannot be right are refused as malformed, naming their
// sender, before anything is checked.
func TestComplaint_MalformedIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		slot    int
		payload []byte
	}{
		{"accuses its sender", 2, []byte{payloadComplaint, 1, 1, cheater}},
		{"accuses nobody", 2, []byte{payloadComplaint, 1, 0}},
		{"accuses everyone", 2, []byte{payloadComplaint, 1, 3, 0, 1, 2}},
		{"accuses a signer twice", 3, []byte{payloadComplaint, 2, 2, 0, 0}},
		{"accuses out of order", 3, []byte{payloadComplaint, 2, 2, 2, 0}},
		{"accuses an unknown signer", 3, []byte{payloadComplaint, 2, 1, 3}},
		{"about another round than the one before", 3, []byte{payloadComplaint, 1, 1, 0}},
		{"in a round after checks everyone makes", 4, []byte{payloadComplaint, 3, 1, 0}},
		{"with a trailing byte", 6, []byte{payloadComplaint, 5, 1, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := runCheat(t, func(nw *network) { nw.tamper = complainInstead(tc.slot, tc.payload) })
			for i, err := range errs {
				assertCulprit(t, i, err, ErrMalformed, cheater)
			}
		})
	}
}

// When ∏R̄ⱼ ≠ g the run enters the type-5 reveal; a signer whose PDL
// proof from the cheater failed complains in place of its reveal, and the
// complaint decides the run: every honest signer names the cheater for the
// PDL proof.
func TestComplaint_InPlaceOfTheType5Reveal(t *testing.T) {
	one := big.NewInt(1)
	for _, victim := range []int{0, 2} {
		complained := false
		errs := runCheat(t, func(nw *network) {
			done := false
			nw.after = func(i int, p *Presigner) {
				if i == cheater && p.round == 3 && !done {
					done = true
					d := p.pub.delta[cheater]
					d.Add(d, one).Mod(d, secp.Q)
				}
			}
			round3 := tamperRound(t, 3, func(m *msg3) {
				d := m.delta
				d.Add(d, one).Mod(d, secp.Q)
			})
			round5 := tamperRound(t, 3, func(m *msg5) {
				pf := m.pdl[slot(cheater, victim)]
				pf.S1.Add(pf.S1, one)
			})
			nw.tamper = func(m *Message) {
				round3(m)
				round5(m)
				if m.From == victim && m.Round == RoundRevealRbar && m.Payload[0] == payloadComplaint {
					complained = true
				}
			}
		})
		if !complained {
			t.Fatalf("victim %d sent no complaint in place of its type-5 reveal", victim)
		}
		for i, err := range errs {
			assertCulprit(t, i, err, ErrPDLProof, cheater)
			var ce *CulpritError
			errors.As(err, &ce)
			if ce.Round != 5 {
				t.Fatalf("victim %d, signer %d: culprit error for round %d, want 5", victim, i, ce.Round)
			}
		}
	}
}

// A cheater that a complaint has proven guilty is not waited for: even if
// it sends nothing after its bad proof, every honest signer names it.
func TestComplaint_ProvenCheaterIsNotWaitedFor(t *testing.T) {
	one := big.NewInt(1)
	for _, victim := range []int{0, 2} {
		errs := runCheat(t, func(nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg1) {
				pf := m.rng[slot(cheater, victim)]
				pf.S1.Add(pf.S1, one)
			})
			nw.drop = func(m Message) bool { return m.From == cheater && m.Round > 1 }
		})
		for i, err := range errs {
			assertCulprit(t, i, err, ErrRangeProof, cheater)
		}
	}
}

// Every signer's own check of a proof (as a third party, without the CRT)
// agrees with the designated verifier's on every proof of an honest run,
// so an honest complaint is never judged false and an honest prover never
// accused rightly. Four signers, so that each proof has two third parties.
func TestComplaint_EverySignerAcceptsEveryHonestProof(t *testing.T) {
	ks := keys(t, "3-of-5")
	ps := newPresigners(t, ks, []int{0, 1, 3, 4}, nil)
	nw := newNetwork(ps)
	checked := map[[2]int]bool{}
	nw.after = func(i int, p *Presigner) {
		k := p.kept
		if k == nil || checked[[2]int{i, k.round}] {
			return
		}
		checked[[2]int{i, k.round}] = true
		for prover := 0; prover < p.st.n; prover++ {
			for verifier := 0; verifier < p.st.n; verifier++ {
				if prover == verifier {
					continue
				}
				if err := k.verifySlot(prover, verifier); err != nil {
					t.Errorf("signer %d: round %d proof of %d for %d: %v", i, k.round, prover, verifier, err)
				}
			}
		}
	}
	for i, err := range nw.run(t) {
		if err != nil {
			t.Fatalf("signer %d: %v", i, err)
		}
	}
	if len(checked) != 3*len(ps) {
		t.Fatalf("checked %d (signer, round) pairs, want %d", len(checked), 3*len(ps))
	}
}
