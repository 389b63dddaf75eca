package gg20

import (
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// The tests in this file run a 3-signer session in which signer cheater
// deviates, and check that every honest signer names it with the sentinel
// of the check that caught it.

const cheater = 1

func encodeMsg(t testing.TB, m any) []byte {
	t.Helper()
	switch m := m.(type) {
	case *msg1:
		return m.encode()
	case *msg2:
		return m.encode()
	case *msg3:
		return m.encode()
	case *msg4:
		return m.encode()
	case *msg5:
		return m.encode()
	case *msg6:
		return m.encode()
	case *msgRevealRbar:
		return m.encode()
	case *msgRevealS:
		return m.encode()
	}
	t.Fatalf("unknown message type %T", m)
	return nil
}

// tamperRound returns a tamper function that rewrites the cheater's message
// of the given round.
func tamperRound(t testing.TB, n, round int, f func(m any)) func(*Message) {
	return func(msg *Message) {
		if msg.From != cheater || msg.Round != round {
			return
		}
		m, err := decodePayload(round, n, msg.Payload)
		if err != nil {
			t.Fatalf("decode own round %d message: %v", round, err)
		}
		f(m)
		msg.Payload = encodeMsg(t, m)
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
			nw.tamper = tamperRound(t, 3, 1, func(m any) { m.(*msg1).c.Add(m.(*msg1).c, one) })
		}, ErrRangeProof, 1},
		{"round 3 proof of T for another T", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, 3, func(m any) { m.(*msg3).T = plusG(m.(*msg3).T) })
		}, ErrTProof, 3},
		{"round 4 Gamma that does not open the commitment", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, 4, func(m any) { m.(*msg4).open[0] ^= 1 })
		}, ErrDecommit, 4},
		{"round 4 wrong proof of gamma", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, 4, func(m any) { m.(*msg4).pGamma.Z.Add(m.(*msg4).pGamma.Z, one) })
		}, ErrGammaProof, 4},
		{"round 5 bad Rbar", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, 5, func(m any) { m.(*msg5).Rbar = plusG(m.(*msg5).Rbar) })
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
			nw.tamper = tamperRound(t, 3, 3, func(m any) {
				d := m.(*msg3).delta
				d.Add(d, one).Mod(d, secp.Q)
			})
		}, ErrRbarProduct, RoundRevealRbar},
		{"delta off without adjusting its own R", func(t *testing.T, nw *network) {
			nw.tamper = tamperRound(t, 3, 3, func(m any) {
				d := m.(*msg3).delta
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
			nw.tamper = tamperRound(t, 3, 6, func(m any) { m.(*msg6).S = plusG(m.(*msg6).S) })
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

// A bad Bob proof is checked only by the Alice it was made for.
func TestCheater_BadMtAProofIsNamedByItsVerifier(t *testing.T) {
	one := big.NewInt(1)
	for _, withCheck := range []bool{false, true} {
		errs := runCheat(t, func(nw *network) {
			nw.tamper = tamperRound(t, 3, 2, func(m any) {
				e := &m.(*msg2).entries[slot(cheater, 2)] // towards Alice 2
				if withCheck {
					e.pW.S1.Add(e.pW.S1, one)
				} else {
					e.pGamma.T1.Add(e.pGamma.T1, one)
				}
			})
		})
		assertCulprit(t, 2, errs[2], ErrMtAProof, cheater)
		if errs[0] != nil {
			t.Fatalf("signer 0 failed although its own MtA proofs were valid: %v", errs[0])
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
