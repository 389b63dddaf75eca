// Package frost implements FROST threshold Schnorr signatures (RFC 9591):
// any t of n participants, each holding a share of one secret key, produce
// an ordinary Schnorr signature together, and fewer than t learn nothing
// about the key.
//
// # Protocol
//
// Keys come from a trusted dealer ([Deal], RFC 9591 Appendix C, for tests
// and for importing an existing key) or from a distributed key generation
// ([NewDKG], the Pedersen DKG with proofs of knowledge of Komlo and
// Goldberg 2020, §5.1). Either way each participant ends up with a
// [KeyShare] and everyone with the same [PublicKey]: the group key, the
// threshold and every participant's public share.
//
// Signing takes two rounds and a coordinator:
//
//  1. Each chosen signer calls [KeyShare.Commit], keeps the secret [Nonce]
//     and sends the [Commitment] to the coordinator.
//  2. The coordinator sends every signer a [SigningPackage]: the message
//     and all the commitments. Each signer checks that it is willing to sign
//     the message and calls [KeyShare.Sign], which returns a
//     [SignatureShare] and consumes the nonce.
//  3. The coordinator calls [PublicKey.Aggregate], which sums the shares,
//     verifies the signature and, if it does not verify, checks every share
//     ([PublicKey.VerifyShare], RFC 9591 §5.3) and names the signers whose
//     shares are wrong in a *[CulpritError].
//
// The package does no networking and keeps no state between calls: every
// step is a function over values with binary encodings (FORMAT.md).
//
// # Ciphersuites
//
// [Ed25519] is FROST(Ed25519, SHA-512) (RFC 9591 §6.1); its signatures are
// RFC 8032 Ed25519 signatures that crypto/ed25519 verifies.
// [Secp256k1] is FROST(secp256k1, SHA-256) (RFC 9591 §6.5), with 65-byte
// signatures (compressed R, z). Both match the test vectors of RFC 9591
// Appendix E.
//
// [Secp256k1BIP340] is the BIP-340 mode for Bitcoin Taproot: the RFC 9591
// protocol over secp256k1 with the context string
// "FROST-secp256k1-SHA256-TR-v1", x-only keys (the secret shares are negated
// when the key has odd Y), an even-Y group commitment (the nonces are
// negated when R has odd Y), the BIP-340 challenge, and 64-byte BIP-340
// signatures. A [Taproot] value in the package applies the BIP-341
// key-path tweak t = hash_TapTweak(P || merkle_root), with or without a
// script tree; the tweak term is added once, by the aggregator, so signers
// only ever negate. Keys from [NewDKG] should be used with a Taproot tweak
// (an empty one if there is no script path), so that no participant can
// have slipped a hidden script path into the key. The mode follows the
// rules of the FROST-for-BIP-340 proposals but is not byte-compatible with
// their test vectors: the binding factors are those of RFC 9591 §4.4 over
// the compressed, even-Y verification key.
//
// # Trust assumptions
//
// A nonce must never sign twice: two shares from one nonce reveal the
// signer's secret share. [KeyShare.Sign] consumes a [Nonce] on its first
// call, whatever the outcome, copies of a Nonce share that fate, and a
// Nonce cannot be serialised, so it cannot be restored from a backup. The
// nonces are drawn from fresh randomness and the secret share (RFC 9591
// §4.1), never derived from the message alone. Keeping a nonce across a
// process restart is therefore impossible by design: commit again.
//
// The coordinator is trusted for liveness only. It chooses the signers and
// the message and can abort or stall a run, but it cannot forge a signature,
// learn a share, make an honest signer sign a message other than the one in
// the package it receives, or reuse a signer's nonce. Each signer must
// decide itself whether the package's message is one it should sign.
//
// FROST is not robust: one misbehaving signer makes the run fail. What the
// package guarantees is identifiable abort — a share that fails its check is
// attributed to its sender — provided the caller has authenticated that the
// identifier in each message is its sender's. Key generation likewise names
// a participant whose proof of knowledge or secret share is wrong. The
// broadcast of DKG round one must give everyone the same messages (echo
// broadcast), and round-two shares need a confidential channel.
//
// # Secrets
//
// Scalar arithmetic on secrets is constant time in both groups
// (edwards25519.Scalar, secp256k1.ModNScalar); math/big is not used.
// Scalar multiplication is constant time for Ed25519 but not for
// secp256k1, whose library has no constant-time variant: commitment
// generation and the nonce arithmetic's point products may leak timing.
// Secret-holding types ([KeyShare], [Nonce], [Dealing], [DKG], [DKGRound2])
// print as redacted in every fmt verb and in log/slog, and have a Wipe
// method that overwrites their scalars; intermediate values are cleared
// where the code owns them. In Go this is best effort: the runtime and the
// hash functions may leave copies the package cannot reach.
package frost
