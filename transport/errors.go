package transport

import "errors"

// Errors returned by this package. Callers test for them with errors.Is.
var (
	// ErrClosed is returned by a Network's methods after Close.
	ErrClosed = errors.New("transport: network closed")

	// ErrNotInCommittee is the cause reported (inside a
	// *tss.UnreachableError) for a recipient that is not one of the
	// committee's peers, and by AddAddrs for such a peer.
	ErrNotInCommittee = errors.New("transport: party is not in the committee")

	// ErrKeyNotExportable is returned by SignerKey.Raw: the identity key
	// lives in an HSM and its private bytes cannot be read.
	ErrKeyNotExportable = errors.New("transport: identity private key is not exportable")

	// ErrUnsupportedKey is returned for an identity whose public key is not
	// an ECDSA P-256 key.
	ErrUnsupportedKey = errors.New("transport: identity key is not ECDSA P-256")

	// ErrBadSignature is returned when the identity signer produced a
	// signature that does not verify under its own public key (a token
	// fault, or a signer whose Public does not match its private key).
	ErrBadSignature = errors.New("transport: identity signer returned an invalid signature")

	// ErrEnvelopeTooLarge is returned for a frame or envelope over the size
	// limits of FORMAT.md.
	ErrEnvelopeTooLarge = errors.New("transport: envelope exceeds the size limit")

	// ErrMalformedEnvelope is returned for bytes that are not a valid
	// envelope as specified in FORMAT.md.
	ErrMalformedEnvelope = errors.New("transport: malformed envelope")

	// ErrUnsupportedVersion is returned for an envelope whose version is
	// not 1.
	ErrUnsupportedVersion = errors.New("transport: unsupported envelope version")

	// ErrInvalidConfig is returned by New and the peer file loaders for a
	// configuration that cannot be used; the message says which setting.
	ErrInvalidConfig = errors.New("transport: invalid configuration")
)
