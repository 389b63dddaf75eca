package gg20

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors for the checks a presigning or signing run performs. Each
// names one check; a *[CulpritError] carries one (or several, joined) of them
// together with the parties that failed it, and [errors.Is] sees through it.
var (
	// ErrMalformed: a message payload (or a signature share) could not be
	// decoded, or a decoded value is out of its range.
	ErrMalformed = errors.New("gg20: malformed message")
	// ErrRangeProof: round 1, Alice's range proof for Enc(kⱼ) failed.
	ErrRangeProof = errors.New("gg20: range proof for Enc(k_j) failed")
	// ErrMtAProof: round 2, Bob's proof for MtA(k, γ) or MtAwc(k, w) failed.
	ErrMtAProof = errors.New("gg20: MtA respondent proof failed")
	// ErrTProof: round 3, the proof of knowledge of the opening of Tⱼ failed.
	ErrTProof = errors.New("gg20: proof of knowledge for T_j failed")
	// ErrDecommit: round 4, Γⱼ does not open the round-1 commitment.
	ErrDecommit = errors.New("gg20: decommitment of Gamma_j does not match its commitment")
	// ErrGammaProof: round 4, the proof of knowledge of γⱼ failed.
	ErrGammaProof = errors.New("gg20: proof of knowledge of gamma_j failed")
	// ErrDeltaZero: round 4, δ = Σδⱼ is zero, so R cannot be computed. Only
	// a cheating party can cause it; the run aborts without naming one.
	ErrDeltaZero = errors.New("gg20: delta is zero")
	// ErrPDLProof: round 5, the PDL-with-slack proof for R̄ⱼ failed.
	ErrPDLProof = errors.New("gg20: PDL proof for Rbar_j failed")
	// ErrRbarProduct: after round 5, ∏R̄ⱼ ≠ g. With culprits, the blame
	// reveal (GG20 §4.3, type 5) named them.
	ErrRbarProduct = errors.New("gg20: product of Rbar_j is not g")
	// ErrSTProof: round 6, the proof that Sⱼ and Tⱼ share σⱼ failed.
	ErrSTProof = errors.New("gg20: consistency proof for S_j failed")
	// ErrSProduct: after round 6, ∏Sⱼ ≠ y'. With culprits, the blame reveal
	// (GG20 §4.3, type 7) named them.
	ErrSProduct = errors.New("gg20: product of S_j is not the public key")
	// ErrBadShare: online round, sⱼ fails R^{sⱼ} = R̄ⱼ^m · Sⱼ^r.
	ErrBadShare = errors.New("gg20: signature share fails its check")
	// ErrUnexpectedMessage: a party sent a message of a round the protocol
	// skipped (for example a blame reveal when every check passed).
	ErrUnexpectedMessage = errors.New("gg20: message for a round the run did not enter")
	// ErrFalseComplaint: a party complained about a proof addressed to it
	// (round 1, 2 or 5) that every other signer found valid.
	ErrFalseComplaint = errors.New("gg20: complaint against a valid proof")

	// ErrDuplicate is returned by [Presigner.Handle] for a second message
	// from the same party in the same round. The message is ignored.
	ErrDuplicate = errors.New("gg20: duplicate message")
	// ErrWrongRound is returned by [Presigner.Handle] for a message of a
	// round that is over or does not exist in presigning. The message is
	// ignored. (A message of a later round is buffered; one of a round the
	// run skipped ends the run with a *[CulpritError] wrapping
	// [ErrUnexpectedMessage].)
	ErrWrongRound = errors.New("gg20: message for the wrong round")
	// ErrUnknownSender is returned by [Presigner.Handle] for a sender index
	// that is not another signer, or a message not addressed to every signer.
	// The message is ignored.
	ErrUnknownSender = errors.New("gg20: message from an unknown sender or to the wrong recipient")
	// ErrNotStarted is returned by [Presigner.Handle] before [Presigner.Start].
	ErrNotStarted = errors.New("gg20: presigner not started")
	// ErrFinished is returned by [Presigner.Start], [Presigner.Handle] and
	// [Presigner.Presignature] when the run is over (done, failed or wiped).
	ErrFinished = errors.New("gg20: presigning run is over")
	// ErrNotDone is returned by [Presigner.Presignature] before the run has
	// completed.
	ErrNotDone = errors.New("gg20: presigning not complete")
	// ErrConfig is wrapped by every [NewPresigner] error.
	ErrConfig = errors.New("gg20: invalid presigning configuration")
	// ErrUsed is returned by [Presignature.SignShare] and
	// [Presignature.MarshalBinary] once the presignature's secret has been
	// used or wiped.
	ErrUsed = errors.New("gg20: presignature already used or wiped")
	// ErrDigest is returned for a digest that reduces to zero modulo q.
	ErrDigest = errors.New("gg20: digest reduces to zero modulo the group order")
	// ErrInvalidSignature is returned by [Presignature.Combine] when the
	// combined signature does not verify although every share passed its
	// check.
	ErrInvalidSignature = errors.New("gg20: combined signature does not verify")
	// ErrInternal reports a failure that is not any party's fault (a bug or
	// a broken random source).
	ErrInternal = errors.New("gg20: internal error")
)

// CulpritError reports parties that provably deviated from the protocol.
// Culprits are signer indices (positions in [Config.Signers]), ascending. Err
// is the sentinel of the failed check (joined sentinels when different
// culprits failed different checks); [errors.Is] and [errors.As] work through
// it.
type CulpritError struct {
	// Culprits are the signer indices of the parties that failed the check.
	Culprits []int
	// Round is the round of the faulty message: 1–6 for presigning,
	// [RoundOnline] for a signature share, [RoundRevealRbar] and [RoundRevealS]
	// for the blame reveals. A verdict on complaints reports the round of
	// the disputed proofs (1, 2 or 5), for false accusers as well.
	Round int
	// Err is the sentinel (or joined sentinels) of the failed check.
	Err error

	details map[int]string
}

// Error names the round, the culprits and what each did wrong. It never
// contains secret values.
func (e *CulpritError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "round %d: ", e.Round)
	if len(e.Culprits) == 0 {
		b.WriteString("no culprit identified: ")
		b.WriteString(e.Err.Error())
		return b.String()
	}
	fmt.Fprintf(&b, "signer(s) %v cheated: ", e.Culprits)
	for i, c := range e.Culprits {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "signer %d: ", c)
		if d, ok := e.details[c]; ok {
			b.WriteString(d)
		} else {
			b.WriteString(e.Err.Error())
		}
	}
	return b.String()
}

// Unwrap returns Err.
func (e *CulpritError) Unwrap() error { return e.Err }

// faults collects per-party failures of one round.
type faults struct {
	round int
	errs  map[int]error
}

func newFaults(round int) *faults { return &faults{round: round, errs: map[int]error{}} }

// add records that party j failed with err, whose chain holds a sentinel.
func (f *faults) add(j int, err error) {
	if _, ok := f.errs[j]; !ok {
		f.errs[j] = err
	}
}

func (f *faults) empty() bool { return len(f.errs) == 0 }

// err returns nil or a *CulpritError naming every faulty party.
func (f *faults) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	ce := &CulpritError{Round: f.round, details: map[int]string{}}
	var sentinels []error
	seen := map[error]bool{}
	for j := range f.errs {
		ce.Culprits = append(ce.Culprits, j)
	}
	sort.Ints(ce.Culprits)
	for _, j := range ce.Culprits {
		err := f.errs[j]
		ce.details[j] = err.Error()
		s := sentinelOf(err)
		if !seen[s] {
			seen[s] = true
			sentinels = append(sentinels, s)
		}
	}
	if len(sentinels) == 1 {
		ce.Err = sentinels[0]
	} else {
		ce.Err = errors.Join(sentinels...)
	}
	return ce
}

var allSentinels = []error{
	ErrMalformed, ErrRangeProof, ErrMtAProof, ErrTProof, ErrDecommit, ErrGammaProof,
	ErrPDLProof, ErrRbarProduct, ErrSTProof, ErrSProduct, ErrBadShare, ErrUnexpectedMessage,
	ErrFalseComplaint,
}

// sentinelOf returns the first of our sentinels in err's chain, or err.
func sentinelOf(err error) error {
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}
