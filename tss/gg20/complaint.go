package gg20

import (
	"errors"
	"fmt"
	"sort"
)

// Complaints (see "Identifiable abort" in the package documentation).
//
// In rounds 1, 2 and 5 a prover puts one proof per verifier into its
// broadcast, each made against that verifier's ring-Pedersen parameters
// (and in round 2 under its Paillier key), and only the verifier checks
// it: that is the check it can make with the CRT. When proofs addressed to
// signer V fail, V does not end the run. In place of its message of the
// next round it broadcasts a complaint naming the provers. Every signer
// that receives the complaint checks the disputed proofs itself on the
// broadcast it already holds — the same bytes V received, since broadcasts
// are echo-consistent — and records a finding: the prover cheated if the
// proof fails, V accused falsely if it holds. V's own complaint is a
// finding it already made.
//
// A complaint occupies its sender's slot of the next round, so a signer can
// send a complaint or its next message, never both, and the session
// layer's one-broadcast-per-round rule enforces that. The next round is
// decided once every other signer's slot is filled or that signer is a
// proven cheater (a finding shows one of its proofs failed): proven
// cheaters are not waited for. If the round holds any complaint, the run
// ends with the verdict: every proven cheater and every false accuser. A
// signer cannot be a round ahead of a complaint, because no signer can
// finish the next round without the complainer's slot.
//
// With a single cheater every honest signer decides with the same findings
// (all honest complaints are among them, and the cheater's own slot is
// either waited for or the cheater is already proven) and names exactly
// the cheater. No honest signer is ever named: its proofs hold and its
// complaints are true.

// finding is the outcome of checking one disputed proof.
type finding struct {
	complainer, prover int
	err                error // why the proof fails; nil if it holds
}

// disputable is the last round whose proofs only their designated
// verifiers checked (1, 2 or 5), held while the next round may bring
// complaints about them.
type disputable struct {
	round int
	// verifySlot checks, as any signer can, the proof that prover
	// addressed to verifier in the round, on the round's stored messages.
	verifySlot func(prover, verifier int) error
	judged     []bool // complaints already checked, by complainer
}

// keep records the round whose proofs complaints in the next round may
// dispute, with the check a complaint calls for; the round's store step
// calls it, after the proofs addressed to this party were verified.
func (p *Presigner) keep(round int, verifySlot func(prover, verifier int) error) {
	p.kept = &disputable{round: round, verifySlot: verifySlot, judged: make([]bool, p.st.n)}
}

// complain records this party's findings against the provers whose
// round-`about` proofs failed its check and returns its complaint for
// round slot.
func (p *Presigner) complain(about, slot int, failed map[int]error) []Message {
	m := &msgComplaint{about: about}
	for j := range failed {
		m.provers = append(m.provers, j)
	}
	sort.Ints(m.provers)
	for _, j := range m.provers {
		p.findings = append(p.findings, finding{complainer: p.st.self, prover: j, err: failed[j]})
	}
	return []Message{{From: p.st.self, To: Broadcast, Round: slot, Payload: m.encode()}}
}

// failures sorts the per-peer results of a designated-verifier round:
// an ErrInternal failure is returned as the error, every other failure is
// reported per prover (the first one for each).
func failures(who []int, errs []error) (map[int]error, error) {
	failed := map[int]error{}
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, ErrInternal) {
			return nil, err
		}
		if _, ok := failed[who[i]]; !ok {
			failed[who[i]] = err
		}
	}
	return failed, nil
}

// judgeComplaints checks the disputed proofs of every complaint of the
// current round that is not yet judged, if the run holds the disputed
// round's messages. Only an ErrInternal failure is returned.
func (p *Presigner) judgeComplaints() error {
	k := p.kept
	if k == nil {
		return nil
	}
	rd := p.rounds[p.round]
	type check struct{ complainer, prover int }
	var checks []check
	for v := range p.st.n {
		c := rd.complaint(v)
		if c == nil || k.judged[v] || c.about != k.round {
			continue
		}
		k.judged[v] = true
		for _, j := range c.provers {
			checks = append(checks, check{v, j})
		}
	}
	tasks := make([]func() error, len(checks))
	for i, c := range checks {
		tasks[i] = func() error { return k.verifySlot(c.prover, c.complainer) }
	}
	for i, err := range runAll(tasks) {
		if errors.Is(err, ErrInternal) {
			return err
		}
		p.findings = append(p.findings, finding{complainer: checks[i].complainer, prover: checks[i].prover, err: err})
	}
	return nil
}

// proven returns the signers a finding shows to have cheated.
func (p *Presigner) proven() []bool {
	out := make([]bool, p.st.n)
	for _, f := range p.findings {
		if f.err != nil {
			out[f.prover] = true
		}
	}
	return out
}

// disputed reports whether the current round holds a complaint.
func (p *Presigner) disputed() bool {
	if len(p.findings) > 0 {
		return true
	}
	rd := p.rounds[p.round]
	for v := range p.st.n {
		if rd.complaint(v) != nil {
			return true
		}
	}
	return false
}

// verdict ends a round that holds complaints. It names every prover whose
// disputed proof failed (with the sentinel of that proof) and every signer
// that accused a valid proof (ErrFalseComplaint), or that complained when
// the run had no proofs of that round to dispute. Findings are added in a
// fixed order — failed proofs before false accusations, each by complainer
// and prover — so that every signer deciding on the same findings returns
// the same error.
func (p *Presigner) verdict() error {
	about := 0
	if p.kept != nil {
		about = p.kept.round
	}
	fs := append([]finding(nil), p.findings...)
	sort.Slice(fs, func(a, b int) bool {
		if fs[a].complainer != fs[b].complainer {
			return fs[a].complainer < fs[b].complainer
		}
		return fs[a].prover < fs[b].prover
	})
	var unjudged []int
	rd := p.rounds[p.round]
	for v := range p.st.n {
		if c := rd.complaint(v); c != nil && (p.kept == nil || c.about != p.kept.round) {
			unjudged = append(unjudged, v)
			about = c.about
		}
	}
	f := newFaults(about)
	for _, x := range fs {
		if x.err != nil {
			f.add(x.prover, fmt.Errorf("%w (signer %d's complaint, checked here)", x.err, x.complainer))
		}
	}
	for _, x := range fs {
		if x.err == nil {
			f.add(x.complainer, fmt.Errorf("%w: accused signer %d, whose round %d proof for it holds", ErrFalseComplaint, x.prover, about))
		}
	}
	for _, v := range unjudged {
		f.add(v, fmt.Errorf("%w: complained about round %d proofs, which this run does not have", ErrFalseComplaint, about))
	}
	if f.empty() {
		return fmt.Errorf("%w: complaint round without findings", ErrInternal)
	}
	return f.err()
}
