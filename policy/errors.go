package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them (or
// one of package wallet's, for a payload that wallet refuses), so callers
// branch with errors.Is; the message around it says which field, rule,
// approval or line was involved. No error carries a secret: intents,
// approvals and policies hold none.
var (
	// ErrIntent means intent bytes are not a valid intent: bad magic,
	// unknown version or kind, a field out of range, a payload that does not
	// parse, or an encoding that is not canonical.
	ErrIntent = errors.New("policy: invalid intent")

	// ErrIntentTooLarge means an intent exceeds one of the bounds in
	// FORMAT.md (size, inputs, outputs, paths, derivation work).
	ErrIntentTooLarge = errors.New("policy: intent exceeds a size bound")

	// ErrKey means the Key given to Derive is incomplete or malformed.
	ErrKey = errors.New("policy: invalid key description")

	// ErrNothingToSign means an intent asks this key for no signature (for
	// example a PSBT none of whose inputs belongs to the key).
	ErrNothingToSign = errors.New("policy: intent asks this key for no signature")

	// ErrPolicyFile means a policy file does not parse or type-check. The
	// error is a *FileError naming the file, line and column.
	ErrPolicyFile = errors.New("policy: invalid policy file")

	// ErrRefused means a policy refused a request. The error is a
	// *RefusedError carrying the rule and a reason safe to send to peers;
	// it also wraps one of ErrDenied, ErrNoRule, ErrApprovalsMissing,
	// ErrRuleFailed or ErrVelocity.
	ErrRefused = errors.New("policy: refused")

	// ErrDenied means the first matching rule denies the request.
	ErrDenied = errors.New("policy: denied by rule")

	// ErrNoRule means no rule matched the request; policies fail closed.
	ErrNoRule = errors.New("policy: no rule matches")

	// ErrApprovalsMissing means the matching rule allows the request only
	// with approvals that the verified approvals do not cover.
	ErrApprovalsMissing = errors.New("policy: approvals missing")

	// ErrRuleFailed means a rule could not be evaluated (a missing field for
	// this kind of intent, an exhausted cost budget, a window longer than
	// the velocity record keeps). Evaluation stops there and refuses: a rule
	// that cannot be evaluated must not let a later rule allow.
	ErrRuleFailed = errors.New("policy: rule could not be evaluated")

	// ErrApproval means an approval failed verification. The error is an
	// *ApprovalError wrapping one of the ErrApproval… sentinels below.
	ErrApproval = errors.New("policy: approval rejected")

	// ErrApprovalMalformed means an approval's statement or signature does
	// not parse (not an SSH signature, not a canonical statement, too big).
	ErrApprovalMalformed = errors.New("policy: approval is malformed")
	// ErrApprovalNamespace means the SSH signature is for a namespace other
	// than keyquorum-approval.
	ErrApprovalNamespace = errors.New("policy: approval signature has the wrong namespace")
	// ErrApprovalHashAlg means the SSH signature hashes the statement with
	// an algorithm other than sha256 or sha512.
	ErrApprovalHashAlg = errors.New("policy: approval signature uses an unsupported hash")
	// ErrApprovalUnknownKey means the signing key is not an approver key in
	// this site's policy.
	ErrApprovalUnknownKey = errors.New("policy: approval is signed by a key not in the policy")
	// ErrApprovalSignature means the signature does not verify under the
	// approver key, or an sk key's signature lacks the user-presence flag.
	ErrApprovalSignature = errors.New("policy: approval signature does not verify")
	// ErrApprovalExpired means the statement's expiry is not after the
	// site's clock.
	ErrApprovalExpired = errors.New("policy: approval has expired")
	// ErrApprovalTooLong means the statement's expiry lies further in the
	// future than the policy's approval-max-validity.
	ErrApprovalTooLong = errors.New("policy: approval is valid for longer than the policy allows")
	// ErrApprovalOtherIntent means the statement names another intent.
	ErrApprovalOtherIntent = errors.New("policy: approval is for another intent")
	// ErrApprovalOtherSummary means the statement names another summary:
	// the approver saw something other than what this site computes.
	ErrApprovalOtherSummary = errors.New("policy: approval is for another summary")
	// ErrApprovalOtherKey means the statement names another key.
	ErrApprovalOtherKey = errors.New("policy: approval is for another key")
	// ErrApprovalOtherCommittee means the statement names another committee.
	ErrApprovalOtherCommittee = errors.New("policy: approval is for another committee")
	// ErrApprovalDuplicate means an approver already counted for this
	// request signed again; the second approval is not counted.
	ErrApprovalDuplicate = errors.New("policy: approver already counted")

	// ErrVelocity means a velocity record cannot be decoded, is full, or
	// was asked for a window longer than it keeps.
	ErrVelocity = errors.New("policy: velocity record")
)

// FileError reports a policy file that does not parse or type-check. Line
// and Column count from 1; Column counts characters.
type FileError struct {
	// File is the name the policy was loaded under.
	File string
	// Line and Column locate the problem.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line:column: message".
func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap returns ErrPolicyFile.
func (e *FileError) Unwrap() error { return ErrPolicyFile }

// ApprovalError reports an approval that was not counted.
type ApprovalError struct {
	// Index is the approval's position in the list given to the policy.
	Index int
	// Approver names the approver whose key signed it, when the signature
	// was recognised; empty otherwise.
	Approver string
	// Err is the reason, wrapping one of the ErrApproval… sentinels.
	Err error
}

// Error names the approval, its approver if known, and the reason.
func (e *ApprovalError) Error() string {
	who := ""
	if e.Approver != "" {
		who = " by " + e.Approver
	}
	return fmt.Sprintf("policy: approval %d%s: %v", e.Index, who, e.Err)
}

// Unwrap returns ErrApproval and the reason.
func (e *ApprovalError) Unwrap() []error { return []error{ErrApproval, e.Err} }

// RefusedError is a policy's refusal of a request. Its message names the
// rule and says why in terms safe to send to peers and to the requester:
// rule and group names, counts, approver names, and the reasons approvals
// were rejected. It never contains key material or policy expressions.
type RefusedError struct {
	// Rule is the rule that decided, empty when none matched.
	Rule string
	// Reason explains the refusal.
	Reason string
	// Kind is ErrDenied, ErrNoRule, ErrApprovalsMissing, ErrRuleFailed or
	// ErrVelocity (the velocity record could not take the spend).
	Kind error
}

// Error returns "policy: refused by rule R: reason".
func (e *RefusedError) Error() string {
	if e.Rule == "" {
		return "policy: refused: " + e.Reason
	}
	return fmt.Sprintf("policy: refused by rule %s: %s", e.Rule, e.Reason)
}

// Unwrap returns ErrRefused and Kind.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Kind} }

// joinReasons formats approval errors for a refusal reason.
func joinReasons(errs []*ApprovalError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = strings.TrimPrefix(e.Error(), "policy: ")
	}
	return strings.Join(parts, "; ")
}
