// Package hsmshare keeps a party's secrets sealed by its own HSM over
// PKCS#11, and gives the party an HSM-resident identity key.
//
// # Tokens
//
// [Open] loads a PKCS#11 module, finds a token by label, serial or RFC 7512
// "pkcs11:" URI ([ParseURI]), opens a pool of sessions (as many as
// [Config.Sessions] asks, within the token's own limits) and logs in
// once with a PIN read from a file or an environment variable. A PKCS#11
// library is global to the process, so every [Token] opened from one module
// shares a single loaded library; the library is finalized when the last
// Token closes. Several tokens (one per party in tests) can be open at once.
// Modules that need initialization arguments, such as NSS's softoken, get
// them from [Config.ModuleInitArgs].
//
// # Sealing
//
// A [SealKey] is an AES-256 key generated inside the token as sensitive, not
// extractable, private and usable only to encrypt and decrypt; existing keys
// with weaker attributes are refused ([ErrWeakKey]). [SealKey.Seal] encrypts inside the
// token with AES-GCM (CKM_AES_GCM, our own random 96-bit IV, 128-bit tag),
// binding a [Header] (kind, key ID, party ID, version) plus the format version,
// scheme and seal-key ID as authenticated data. Tokens without GCM use
// encrypt-then-MAC: CKM_AES_CBC_PAD under the seal key and CKM_SHA256_HMAC
// under a second non-extractable key. The blob format is specified in
// FORMAT.md. [SealKey.Open] never returns plaintext for a blob that fails
// authentication or belongs elsewhere ([ErrTampered]) or is malformed
// ([ErrCorrupted]).
//
// # Store
//
// A [Store] is a directory of sealed, versioned records with atomic, durable
// writes and an exclusive lock; it satisfies
// [github.com/keyquorum/keyquorum/tss.Store]. [Store.Rotate] re-seals every
// record under a new seal key and survives interruption at any step.
//
// # Identity
//
// An [Identity] is a P-256 key pair generated in the token whose private half
// never leaves it; it implements [crypto.Signer] (CKM_ECDSA over the caller's
// digest, DER output) so the transport can use it as the party's network
// identity.
//
// An [ECDHKey] is a second P-256 key pair in the token, for key agreement
// only: it implements crypto/ecdh's KeyExchanger (CKM_ECDH1_DERIVE), so it
// is the recipient key of HPKE (crypto/hpke's NewDHKEMPrivateKey) for the
// offline package's bundles. A token without CKM_ECDH1_DERIVE gets a
// [MechanismError] naming it.
//
// # Randomness
//
// [Token.Random] returns a [Random]: an io.Reader whose output mixes the
// token's generator (C_GenerateRandom) with the operating system's through
// HMAC_DRBG-SHA-512 (NIST SP 800-90A), so that it stays unpredictable if
// either source is good. A token without a generator is refused
// ([ErrNoRNG]); a failing one is an error ([ErrRandomFailed]), never a
// fallback to the operating system alone.
//
// # What is and is not protected
//
// At rest, secrets exist only as ciphertext under a key that cannot leave
// the HSM. When a secret is unsealed it is in process memory: the token
// writes it into a buffer this package owns and wipes, but the PKCS#11
// library's own buffers (and the PIN copy miekg/pkcs11 passes to C_Login)
// are freed without being wiped.
package hsmshare
