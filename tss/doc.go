// Package tss runs threshold ECDSA protocols between the parties of a
// committee: key generation, classic (GG18) signing, GG20 presigning with
// one-round online signing, and resharing. Keys are secp256k1, thresholds are
// written M-of-N (M parties must cooperate; tss-lib's t is M-1 and never
// appears in this API).
//
// The package talks to other parties only through the Network interface and
// keeps secrets only through the Store interface, so it knows nothing of
// libp2p or PKCS#11: package transport implements Network, package hsmshare
// implements Store with every record sealed by the party's HSM.
//
// # Sessions
//
// Every operation is a session. The initiator proposes it (operation, key,
// parties, payload, derivation path, policy evidence, fresh nonce); the
// session ID is SHA-256 over all of that. Every other party checks the
// proposal itself — it holds the key, it is among the signers, the digest is
// 32 bytes, the path is non-hardened, its Policy approves — before it joins,
// and a refusal travels back to the initiator as a *RefusedError naming the
// party and its reason. Protocol rounds start only when everyone joined.
//
// Inbound messages are checked before the protocol sees them: known session
// and sender, no duplicates (replays of finished sessions are dropped and
// counted in Stats), the expected round and delivery mode, size bounds on
// every field, and the checks tss-lib v2.0.2 lacks — the length of VSS
// commitment vectors (a short one panics a tss-lib goroutine), curve
// membership, and gcd(W, N) = 1 in the Paillier-Blum modulus proof. A
// broadcast is handed to the protocol only after every other recipient has
// echoed the same hash, so a party that sends different payloads to
// different peers is caught (*EquivocationError). tss-lib panics on our
// goroutines are recovered into errors. Every round has a timeout; a
// *RoundTimeoutError names the parties that did not deliver, a
// *CulpritError names parties whose messages or proofs were wrong.
//
// # Keys
//
// Keygen stores each party's share sealed (kind "share", version = epoch) and
// returns the public key and a chain code derived from the keygen session and
// the public key, for BIP-32 non-hardened derivation (package wallet/hd).
// Reshare moves a key to a new committee and/or threshold in two phases: the
// new shares are stored as pending, the new committee must sign a
// confirmation digest with them, and only then does a commit activate them
// and erase the old ones.
//
// Threshold Schnorr keys (FROST, RFC 9591, through package frost) share
// the committee and the engine: [Engine.SchnorrKeygen] runs the Pedersen
// DKG with proofs of knowledge and stores each share sealed (kind
// "schnorr-share"), and [Engine.SchnorrSign] signs in two rounds with
// nonces made inside the session and never stored, for BIP-340 (Taproot
// key path, with or without a script tree) and Ed25519. A party that sends
// a bad share or proof is named in a *[CulpritError].
//
// # GG20 presignatures
//
// Presign runs the six offline rounds of GG20 (package tss/gg20) and stores
// the resulting presignatures sealed, in batches. A presignature is bound to
// one key, one signer set and one derivation path when it is made. SignBatch
// signs up to MaxOnlineBatch digests in one round trip: each party checks the
// request, marks the presignatures it will use in their batches' ledgers
// (see Ledger: kept in the party's HSM, out of reach of a restored store),
// and only then releases its signature shares, so a presignature is used at
// most once even across crashes, restores and co-signers that kept copies;
// an aborted round burns the presignatures it named. Reconcile discards
// presignatures that not every signer holds; it never brings one back.
// MaintainPool keeps a pool at a target size. A committed reshare deletes
// the presignatures made with the old shares.
//
// See DESIGN.md for the trust model and the protocols.
package tss
