package gg20

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// The tests in this file run a 3-signer session in which signer cheater
// deviates, and check that every honest signer names it with the sentinel
// of the check that caught it.

const cheater = 1

// tamperRound returns a tamper function that rewrites the cheater's
// message of M's round in a run of n signers.
func tamperRound[M any, PM msgPtr[M]](t testing.TB, n int, f func(m PM)) func(*Message) {
	var zero PM
	round := zero.round()
	return func(msg *Message) {
		if msg.From != cheater || msg.Round != round {
			return
		}
		m, _, err := decodeMessage[M, PM](msg.Payload, n, cheater)
		if err != nil || m == nil {
			t.Fatalf("decode own round %d message: %v", round, err)
		}
		f(m)
		msg.Payload = m.encode()
	}
}

// runCheat runs a 2-of-3 session with all three signers and returns the
// errors of the honest signers.
func runCheat(t *testing.T, setup func(nw *network)) map[int]error {
	t.Helper()
	ks := keys(t, "2-of-3")
	nw := newNetwork(newPresigners(t, ks, []int{0, 1, 2}, nil))
	setup(nw)
	errs := nw.run(t)
	out := map[int]error{}
	for i, err := range errs {
		if i != cheater {
			out[i] = err
		}
	}
	return out
}

func plusG(p *secp.Point) *secp.Point { return p.Add(secp.Generator()) }

func TestCheater_IsNamedByEveryHonestSigner(t *testing.T) {
	one := big.NewInt(1)
	cases := []struct {
		name     string
		setup    func(t *testing.T, nw *network)
		sentinel error
		round    int
	}{
		{"round 1 range proof for another ciphertext", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg1) { m.c.Add(m.c, one) })
		}, ErrRangeProof, 1},
		{"round 3 proof of T for another T", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg3) { m.T = plusG(m.T) })
		}, ErrTProof, 3},
		{"round 4 Gamma that does not open the commitment", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg4) { m.open[0] ^= 1 })
		}, ErrDecommit, 4},
		{"round 4 wrong proof of gamma", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg4) { m.pGamma.Z.Add(m.pGamma.Z, one) })
		}, ErrGammaProof, 4},
		{"round 5 bad Rbar", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg5) { m.Rbar = plusG(m.Rbar) })
		}, ErrPDLProof, 5},
		{"round 5 consistent Rbar but delta off (type 5 blame)", func(t *testing.T, nw *network) {
			// The cheater broadcasts δᵢ + 1 and uses it itself, so that its
			// R (and PDL proof) matches everyone else's.
			done := false
			nw.after = func(i int, p *Presigner) {
				if i == cheater && p.round == 3 && !done {
					done = true
					d := p.pub.delta[cheater]
					d.Add(d, one).Mod(d, secp.Q)
				}
			}
			nw.tamper = tamperRound(t, 3, func(m *msg3) {
				d := m.delta
				d.Add(d, one).Mod(d, secp.Q)
			})
		}, ErrRbarProduct, RoundRevealRbar},
		{"delta off without adjusting its own R", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg3) {
				d := m.delta
				d.Add(d, one).Mod(d, secp.Q)
			})
		}, ErrPDLProof, 5},
		{"round 5 consistent Rbar but MtA made with another gamma (type 5 blame)", func(t *testing.T, nw *network) {
			var saved *big.Int
			nw.after = func(i int, p *Presigner) {
				if i != cheater {
					return
				}
				if p.round == 1 && saved == nil {
					saved = p.sec.gamma
					p.sec.gamma = new(big.Int).Add(saved, one)
				}
				if p.round == 3 && saved != nil && p.sec.gamma != saved {
					p.sec.gamma = saved
				}
			}
		}, ErrRbarProduct, RoundRevealRbar},
		{"round 5 consistent Rbar but a reveal that lies about beta (type 5 blame)", func(t *testing.T, nw *network) {
			done := false
			nw.after = func(i int, p *Presigner) {
				if i == cheater && p.round == 2 && !done {
					done = true
					p.sec.betaPrm[0].Add(p.sec.betaPrm[0], one)
				}
			}
		}, ErrRbarProduct, RoundRevealRbar},
		{"round 6 bad S", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, func(m *msg6) { m.S = plusG(m.S) })
		}, ErrSTProof, 6},
		{"round 6 S and T consistent but sigma off (type 7 blame)", func(t *testing.T, nw *network) {
			done := false
			nw.after = func(i int, p *Presigner) {
				if i == cheater && p.round == 2 && !done {
					done = true
					p.sec.nuPrm[2].Add(p.sec.nuPrm[2], one)
				}
			}
		}, ErrSProduct, RoundRevealS},
		{"malformed round 2 payload", func(t *testing.T, nw *network) {
			nw.tamper = func(m *Message) {
				if m.From == cheater && m.Round == 2 {
					m.Payload = m.Payload[:len(m.Payload)-1]
				}
			}
		}, ErrMalformed, 2},
		{"round 6 payload with trailing bytes", func(t *testing.T, nw *network) {
			nw.tamper = func(m *Message) {
				if m.From == cheater && m.Round == 6 {
					m.Payload = append(m.Payload, 0)
				}
			}
		}, ErrMalformed, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := runCheat(t, func(nw *network) { tc.setup(t, nw) })
			for i, err := range errs {
				assertCulprit(t, i, err, tc.sentinel, cheater)
				var ce *CulpritError
				errors.As(err, &ce)
				if ce.Round != tc.round {
					t.Fatalf("signer %d: culprit error for round %d, want %d", i, ce.Round, tc.round)
				}
			}
		})
	}
}

// corruptSlot returns cases in which the cheater corrupts only the proof
// it addresses to one verifier: every other slot of its broadcast is valid,
// so only that verifier's own check fails.
func corruptSlot(t *testing.T, victim int) []struct {
	name     string
	round    int
	sentinel error
	tamper   func(*Message)
} {
	one := big.NewInt(1)
	s := slot(cheater, victim)
	return []struct {
		name     string
		round    int
		sentinel error
		tamper   func(*Message)
	}{
		{"round 1 range proof", 1, ErrRangeProof, tamperRound(t, 3, func(m *msg1) {
			pf := m.rng[s]
			pf.S1.Add(pf.S1, one)
		})},
		{"round 2 Bob proof for MtA(k, gamma)", 2, ErrMtAProof, tamperRound(t, 3, func(m *msg2) {
			pf := m.entries[s].pGamma
			pf.T1.Add(pf.T1, one)
		})},
		{"round 2 Bob proof for MtAwc(k, w)", 2, ErrMtAProof, tamperRound(t, 3, func(m *msg2) {
			pf := m.entries[s].pW
			pf.T2.Add(pf.T2, one)
		})},
		{"round 5 PDL proof", 5, ErrPDLProof, tamperRound(t, 3, func(m *msg5) {
			pf := m.pdl[s]
			pf.S3.Add(pf.S3, one)
		})},
	}
}

// A cheater that corrupts only the proof meant for one honest verifier is
// named, with the sentinel of that proof, by every honest signer: the
// verifier complains and everyone else checks the disputed proof itself.
func TestCheater_CorruptingOneVerifiersProofIsNamedByEveryHonestSigner(t *testing.T) {
	for _, victim := range []int{0, 2} {
		for _, tc := range corruptSlot(t, victim) {
			t.Run(fmt.Sprintf("%s for signer %d", tc.name, victim), func(t *testing.T) {
				errs := runCheat(t, func(nw *network) { nw.tamper = tc.tamper })
				for i, err := range errs {
					assertCulprit(t, i, err, tc.sentinel, cheater)
					var ce *CulpritError
					errors.As(err, &ce)
					if ce.Round != tc.round {
						t.Fatalf("signer %d: culprit error for round %d, want %d", i, ce.Round, tc.round)
					}
				}
			})
		}
	}
}

func TestCombine_NamesSignerWithBadShare(t *testing.T) {
	ks := keys(t, "3-of-5")
	pss := presign(t, ks, []int{0, 2, 4}, nil)
	digest := digestOf("online cheat")
	shares := signAll(t, pss, digest)
	shares[1] = new(big.Int).Add(shares[1], big.NewInt(1))
	for _, i := range []int{0, 2} {
		_, _, _, err := pss[i].Combine(digest, shares)
		assertCulprit(t, i, err, ErrBadShare, 1)
		var ce *CulpritError
		errors.As(err, &ce)
		if ce.Round != RoundOnline {
			t.Fatalf("round %d, want RoundOnline", ce.Round)
		}
		if err := pss[i].VerifyShare(1, digest, shares[1]); !errors.Is(err, ErrBadShare) {
			t.Fatalf("VerifyShare: %v", err)
		}
		if err := pss[i].VerifyShare(2, digest, shares[2]); err != nil {
			t.Fatalf("VerifyShare of a good share: %v", err)
		}
	}
	// A share for another digest is just as bad.
	if err := pss[0].VerifyShare(2, digestOf("other"), shares[2]); !errors.Is(err, ErrBadShare) {
		t.Fatalf("share for another digest accepted: %v", err)
	}
	shares[1] = nil
	_, _, _, err := pss[0].Combine(digest, shares)
	assertCulprit(t, 0, err, ErrMalformed, 1)
}

// A message for a round the run skips (here a type-5 reveal while the run
// goes from round 5 to 6) names its sender whether a signer receives it
// before the run skips that round or after: every honest signer gives the
// same verdict, whatever the order of delivery.
func TestCheater_MessageForASkippedRoundIsNamedHoweverItArrives(t *testing.T) {
	one := big.NewInt(1)
	e := revealGammaEntry{one, one, one, one}
	stray := Message{From: cheater, To: Broadcast, Round: RoundRevealRbar,
		Payload: (&msgRevealRbar{k: one, rho: one, gamma: one, entries: []revealGammaEntry{e, e}}).encode()}
	errs := runCheat(t, func(nw *network) {
		// Signer 0 receives it while in round 5, signer 2 once in round 6.
		when := map[int]int{0: 5, 2: 6}
		nw.after = func(i int, p *Presigner) {
			if r, ok := when[i]; ok && p.round == r {
				delete(when, i)
				if _, err := p.Handle(stray); err != nil {
					nw.errs[i] = err
				}
			}
		}
	})
	for i, err := range errs {
		assertCulprit(t, i, err, ErrUnexpectedMessage, cheater)
	}
}
