package offline

import "errors"

// Errors returned by this package. Every refused bundle wraps exactly one of
// them; callers test with errors.Is.
var (
	// ErrMalformed means the bytes are not a bundle as FORMAT.md specifies
	// (truncated, garbled, trailing data, or a signed bundle whose
	// contents contradict its header). Ask the sender for the file again.
	ErrMalformed = errors.New("offline: malformed bundle")
	// ErrUnsupportedVersion means the bundle has another format version or
	// cipher suite than this build speaks; upgrade the older site.
	ErrUnsupportedVersion = errors.New("offline: unsupported bundle version")
	// ErrTooLarge means a bundle, a count in it or a message is over a
	// limit of this package (MaxBundleSize, MaxMessages,
	// tss.MaxPayloadSize). Nothing of it was kept.
	ErrTooLarge = errors.New("offline: bundle exceeds a size limit")
	// ErrUnknownSender means the bundle names a sender that is not a
	// member of this site's committee.
	ErrUnknownSender = errors.New("offline: bundle from a party outside the committee")
	// ErrTampered means the bundle's signature does not verify under the
	// sender's identity key, or its ciphertext does not decrypt: it was
	// changed after the sender made it, or was never made by the sender.
	ErrTampered = errors.New("offline: bundle failed authentication")
	// ErrWrongCommittee means the bundle was made for another committee
	// (channel) than this network's.
	ErrWrongCommittee = errors.New("offline: bundle for another committee")
	// ErrWrongRecipient means the bundle is addressed to another site;
	// import it there.
	ErrWrongRecipient = errors.New("offline: bundle for another recipient")
	// ErrExpired means the bundle's expiry time has passed (or it claims
	// to be made in the future); the sender must export the messages
	// again in a new session.
	ErrExpired = errors.New("offline: bundle expired")
	// ErrReplayed means a bundle with this sequence number (or a later
	// one) from this sender was already accepted.
	ErrReplayed = errors.New("offline: bundle already imported")
	// ErrOutOfOrder means an earlier bundle from this sender has not been
	// imported yet; import the missing ones first (or declare them lost
	// with Network.Skip).
	ErrOutOfOrder = errors.New("offline: bundle out of order")
	// ErrInboxFull means the messages of an imported bundle do not fit in
	// the receive queue; let the engine drain it, then import again. The
	// bundle was not accepted.
	ErrInboxFull = errors.New("offline: receive queue full")
	// ErrInvalidConfig means the Config cannot be used; the message says
	// which setting.
	ErrInvalidConfig = errors.New("offline: invalid configuration")
	// ErrClosed is returned by a Network's methods after Close.
	ErrClosed = errors.New("offline: network closed")
	// ErrNotInCommittee is the cause reported (inside a
	// *tss.UnreachableError) by Send for a recipient that is not one of the
	// committee's members, and by Export and Skip for such a party.
	ErrNotInCommittee = errors.New("offline: party is not in the committee")
)
