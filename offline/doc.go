// Package offline carries the messages of a keyquorum committee in files,
// for a cold site that has no network connection to the other sites.
//
// A [Network] implements [github.com/keyquorum/keyquorum/tss.Network]. The engine's messages to each other
// member wait in a queue until [Network.Export] turns them into one bundle
// for that member: a header naming the committee, sender, recipient,
// sequence number, creation and expiry times and the (session, round)
// pairs inside; the messages encrypted with HPKE (RFC 9180, DHKEM(P-256),
// HKDF-SHA256, AES-256-GCM) to the recipient's HPKE key, with the header in
// the HPKE info; and a signature of everything by the sender's HSM identity
// key. The operator carries the file to the recipient, whose
// [Network.Import] verifies the signature, the committee, recipient,
// expiry and sequence, decrypts with the recipient's HSM key (an
// [github.com/keyquorum/keyquorum/hsmshare.ECDHKey], ECDH through CKM_ECDH1_DERIVE), and queues the
// messages for the engine's Receive.
//
// Bundles from one sender must be imported in the order they were made:
// the sequence number of each (sender, recipient) channel is kept in the
// site's sealed store and written before a bundle leaves Export or its
// messages leave Import, so a restarted site neither reuses a number nor
// accepts an old bundle. A replayed, expired, misaddressed, tampered,
// reordered or foreign bundle is refused with its own error ([ErrReplayed],
// [ErrExpired], [ErrWrongRecipient], [ErrTampered], [ErrOutOfOrder],
// [ErrUnknownSender], ...), and every count and length in a bundle is
// bounded before anything is allocated from it.
//
// The format is specified in FORMAT.md beside this file.
package offline
