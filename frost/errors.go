package frost

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors. Every error the package returns wraps exactly one of them,
// so callers branch with [errors.Is]. Errors caused by a particular party are
// a *[CulpritError] that names it and wraps the sentinel of the check it
// failed.
var (
	// ErrEncoding: bytes do not decode to a valid value (wrong length,
	// unknown version, kind or suite, a scalar not below the group order, a
	// point not on the curve, not canonical, the identity or of small order).
	ErrEncoding = errors.New("frost: invalid encoding")
	// ErrSuiteMismatch: values of different ciphersuites were mixed.
	ErrSuiteMismatch = errors.New("frost: values of different ciphersuites")
	// ErrInvalidParameters: a threshold, participant count, identifier list
	// or other argument is out of range or inconsistent.
	ErrInvalidParameters = errors.New("frost: invalid parameters")
	// ErrInvalidIdentifier: an identifier is zero, or not one of the key's
	// participants.
	ErrInvalidIdentifier = errors.New("frost: invalid participant identifier")
	// ErrKeyMismatch: a secret share does not match the public share or
	// commitment it is checked against.
	ErrKeyMismatch = errors.New("frost: secret share does not match its public share")
	// ErrNonceUsed: [KeyShare.Sign] was given a nonce that an earlier call
	// consumed, that was wiped, or that [KeyShare.Commit] did not create.
	ErrNonceUsed = errors.New("frost: nonce already used")
	// ErrNonceMismatch: the nonce belongs to another participant or key, or
	// the signing package does not carry the nonce's commitment for the
	// signer.
	ErrNonceMismatch = errors.New("frost: nonce does not belong to this signer and package")
	// ErrInvalidPackage: a signing package has fewer signers than the
	// threshold, a duplicate or unknown signer, or a Taproot tweak outside
	// the BIP-340 mode.
	ErrInvalidPackage = errors.New("frost: invalid signing package")
	// ErrWiped: a [KeyShare] or key generation state was used after Wipe.
	ErrWiped = errors.New("frost: secret was wiped")
	// ErrInvalidShare: a signature share fails verify_signature_share (RFC
	// 9591 §5.3): z_i·G ≠ D_i + ρ_i·E_i + λ_i·c·X_i.
	ErrInvalidShare = errors.New("frost: signature share fails its check")
	// ErrMissingShare: a signer of the package sent no signature share.
	ErrMissingShare = errors.New("frost: missing signature share")
	// ErrUnexpectedShare: a signature share came from a party that is not a
	// signer of the package, or twice from the same signer.
	ErrUnexpectedShare = errors.New("frost: unexpected or duplicate signature share")
	// ErrInvalidSignature: a signature does not verify.
	ErrInvalidSignature = errors.New("frost: invalid signature")
	// ErrProofOfKnowledge: in key generation, a party's proof of knowledge
	// of its constant term (FROST paper §5.1, round 1 step 5) fails.
	ErrProofOfKnowledge = errors.New("frost: proof of knowledge of the secret coefficient fails")
	// ErrShareCommitment: in key generation, the secret share a party sent
	// does not match the polynomial commitment it broadcast (FROST paper
	// §5.1, round 2 step 2).
	ErrShareCommitment = errors.New("frost: secret share does not match its sender's commitment")
	// ErrMissingMessage: in key generation, a party sent no message for a
	// round, or a message addressed to someone else.
	ErrMissingMessage = errors.New("frost: missing key generation message")
)

// A CulpritError names the parties whose messages failed a check. Err is
// the sentinel of that check ([ErrInvalidShare], [ErrProofOfKnowledge],
// [ErrShareCommitment], [ErrMissingShare], [ErrUnexpectedShare],
// [ErrMissingMessage]); [errors.Is] sees through to it.
//
// A party is named from the identifier carried in its message. The package
// does no networking: the caller must have checked that the authenticated
// sender of each message is the identifier it carries, or an honest party
// can be blamed for a message someone else forged.
type CulpritError struct {
	// Parties are the culprits, ascending, without duplicates.
	Parties []Identifier
	// Err is the sentinel of the failed check.
	Err error
}

// Error names the failed check and the parties.
func (e *CulpritError) Error() string {
	ids := make([]string, len(e.Parties))
	for i, p := range e.Parties {
		ids[i] = fmt.Sprint(uint16(p))
	}
	word := "party"
	if len(ids) != 1 {
		word = "parties"
	}
	return fmt.Sprintf("%s (%s %s)", e.Err, word, strings.Join(ids, ", "))
}

// Unwrap returns Err.
func (e *CulpritError) Unwrap() error { return e.Err }

func culprits(err error, ids ...Identifier) *CulpritError {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return &CulpritError{Parties: slices.Compact(ids), Err: err}
}

func errEncoding(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEncoding, fmt.Sprintf(format, args...))
}

func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
