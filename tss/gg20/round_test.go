package gg20

import (
	"fmt"
	"math/big"
	"reflect"
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

// secretsOf renders this party's secret values of a run, for comparison
// within a test only.
func secretsOf(p *Presigner) string {
	s := &p.sec
	var b strings.Builder
	for _, v := range []*big.Int{s.k, s.gamma, s.rho, s.l, s.sigma} {
		fmt.Fprintf(&b, "%v ", v)
	}
	for _, vs := range [][]*big.Int{s.betaPrm, s.betaNonce, s.nuPrm, s.nuNonce, s.alphaPlain, s.muPlain} {
		fmt.Fprintf(&b, "%v ", vs)
	}
	fmt.Fprintf(&b, "%x", s.open)
	return b.String()
}

// pure runs verify twice and fails the test if it changed the run's
// transcript, secrets, complaint state or inbox, or gave another answer
// the second time.
func pure[A any](t *testing.T, p *Presigner, verify func() (A, error)) {
	t.Helper()
	rd := p.rounds[p.round]
	state := func() string {
		return fmt.Sprint(transcriptOf(p), secretsOf(p), p.kept != nil, len(p.findings), rd.senders(), p.round, p.passed)
	}
	before := state()
	a1, err1 := verify()
	if after := state(); after != before {
		t.Fatalf("round %d: verify changed the run's state", p.round)
	}
	a2, err2 := verify()
	if !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(err1, err2) {
		t.Fatalf("round %d: verify gave another answer the second time", p.round)
	}
}

// The verify step of every round changes no state: an honest run, in
// which every round's verify runs twice before the round is stored and
// each time leaves the state as it found it, ends with presignatures that
// sign.
func TestRounds_VerifyChangesNoState(t *testing.T) {
	ks := keys(t, "2-of-3")
	ps := newPresigners(t, ks, []int{0, 1, 2}, nil)
	var queue []Message
	for _, p := range ps {
		out, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		queue = append(queue, out...)
	}
	verified := map[int]bool{}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		for i, p := range ps {
			if i == m.From {
				continue
			}
			if err := p.rounds[m.Round].put(m.From, m.Payload); err != nil {
				t.Fatalf("signer %d: %v", i, err)
			}
			for p.state == stateRunning && p.ready() {
				switch rd := p.rounds[p.round].(type) {
				case *round1:
					pure(t, p, rd.verify)
				case *round2:
					pure(t, p, rd.verify)
				case *round3:
					pure(t, p, rd.verify)
				case *round4:
					pure(t, p, rd.verify)
				case *round5:
					pure(t, p, rd.verify)
				case *round6:
					pure(t, p, rd.verify)
				default:
					t.Fatalf("signer %d: an honest run in round %d", i, p.round)
				}
				verified[p.round] = true
				out, err := p.safely(p.process)
				if err != nil {
					t.Fatalf("signer %d: %v", i, err)
				}
				queue = append(queue, out...)
			}
		}
	}
	pss := make([]*Presignature, len(ps))
	for i, p := range ps {
		var err error
		if pss[i], err = p.Presignature(); err != nil {
			t.Fatalf("signer %d: %v", i, err)
		}
	}
	if len(verified) != 6 {
		t.Fatalf("verified rounds %v, want 1 to 6", verified)
	}
	digest := digestOf("verify changes no state")
	if _, _, _, err := pss[0].Combine(digest, signAll(t, pss, digest)); err != nil {
		t.Fatal(err)
	}
}
