// Package hd derives child keys of a threshold ECDSA key with BIP-32
// non-hardened (public) derivation.
//
// No party of a threshold key holds the private key, so only the public half
// of BIP-32 applies: from the group public key K and a jointly chosen 32-byte
// chain code c, [Derive] computes the child public key for a path such as
// "m/0/7" together with the additive tweak ε for which child = K + ε·G.
// Every signer adds ε to its key share before signing (tss-lib calls this the
// key-derivation delta), so the signers jointly produce a signature valid
// under the child key without anyone learning more than before.
//
// Hardened steps ("m/0'/1", or indexes ≥ 2^31) need the parent private key
// and are refused with [ErrHardened]. A wallet that wants hardened account
// levels keeps them above the threshold key: run keygen per account instead.
//
// Security note: signing protocols with reusable presignatures combined with
// additive derivation are weaker than plain ECDSA (Groth and Shoup, eprint
// 2021/1330), which is why keyquorum binds a presignature to one derivation
// path when it is created.
//
// The package imports only the standard library and
// github.com/decred/dcrd/dcrec/secp256k1/v4, so the signing engine can use it
// without pulling in any chain library.
package hd
