package gg20

import (
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// transcriptOf renders the public state of a run, nil entries included, so
// that two moments of a run can be compared.
func transcriptOf(p *Presigner) string {
	var b strings.Builder
	ints := func(name string, vs ...*big.Int) {
		for j, v := range vs {
			if v != nil {
				fmt.Fprintf(&b, "%s[%d]=%x ", name, j, v)
			}
		}
	}
	points := func(name string, ps []*secp.Point) {
		for j, v := range ps {
			if v != nil {
				fmt.Fprintf(&b, "%s[%d]=%x ", name, j, v.Bytes())
			}
		}
	}
	t := &p.pub
	for j, c := range t.commit {
		fmt.Fprintf(&b, "C[%d]=%x ", j, c)
	}
	ints("c", t.c...)
	for j := range t.cGamma {
		ints(fmt.Sprint("cGamma", j), t.cGamma[j]...)
		ints(fmt.Sprint("cW", j), t.cW[j]...)
	}
	ints("delta", t.delta...)
	ints("deltaSum", t.deltaSum)
	points("T", t.T)
	points("Gamma", t.Gamma)
	points("R", []*secp.Point{t.R})
	ints("r", t.r)
	points("Rbar", t.Rbar)
	points("S", t.S)
	return b.String()
}

// A message whose check fails leaves no trace in the transcript: a round
// verifies every message before it stores any value from one.
func TestHandle_RejectedMessageLeavesTranscriptUntouched(t *testing.T) {
	one := big.NewInt(1)
	for _, tc := range []struct {
		name     string
		round    int
		tamper   func(t *testing.T) func(*Message)
		sentinel error
	}{
		{"round 3 delta and T with a proof for another T", 3, func(t *testing.T) func(*Message) {
			return tamperRound(t, 3, func(m *msg3) {
				m.T = plusG(m.T)
				m.delta.Add(m.delta, one)
			})
		}, ErrTProof},
		{"round 4 Gamma that does not open the commitment", 4, func(t *testing.T) func(*Message) {
			return tamperRound(t, 3, func(m *msg4) { m.open[0] ^= 1 })
		}, ErrDecommit},
		{"round 6 S with a proof for another S", 6, func(t *testing.T) func(*Message) {
			return tamperRound(t, 3, func(m *msg6) { m.S = plusG(m.S) })
		}, ErrSTProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := keys(t, "2-of-3")
			ps := newPresigners(t, ks, []int{0, 1, 2}, nil)
			nw := newNetwork(ps)
			nw.tamper = tc.tamper(t)
			before := map[int]string{}
			nw.after = func(i int, p *Presigner) {
				if _, ok := before[i]; !ok && i != cheater && p.round == tc.round {
					before[i] = transcriptOf(p)
				}
			}
			errs := nw.run(t)
			for _, i := range []int{0, 2} {
				assertCulprit(t, i, errs[i], tc.sentinel, cheater)
				if before[i] == "" {
					t.Fatalf("signer %d never entered round %d", i, tc.round)
				}
				if after := transcriptOf(ps[i]); after != before[i] {
					t.Fatalf("signer %d: a rejected round %d message changed the transcript", i, tc.round)
				}
			}
		})
	}
}
