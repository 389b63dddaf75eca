package hsmshare

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/miekg/pkcs11"
)

// Sentinel errors. Every error returned by this package that callers may
// want to branch on wraps one of these; test with errors.Is.
var (
	// ErrModuleNotFound means the PKCS#11 module (shared library) could not
	// be loaded from the configured path.
	ErrModuleNotFound = errors.New("hsmshare: PKCS#11 module not found")
	// ErrTokenNotFound means no token with the configured label or serial
	// is present in any slot of the module.
	ErrTokenNotFound = errors.New("hsmshare: token not found")
	// ErrTokenAmbiguous means more than one token matches the configured
	// label (labels are not unique); select the token by serial.
	ErrTokenAmbiguous = errors.New("hsmshare: more than one token matches")
	// ErrWrongPIN means the token rejected the user PIN.
	ErrWrongPIN = errors.New("hsmshare: wrong PIN")
	// ErrPINLocked means the token's user PIN is locked after too many
	// failed attempts; the security officer must unlock or reset it.
	ErrPINLocked = errors.New("hsmshare: PIN locked")
	// ErrMechanismMissing means the token lacks a PKCS#11 mechanism this
	// package needs. The concrete error is a *MechanismError naming it.
	ErrMechanismMissing = errors.New("hsmshare: mechanism not supported by token")
	// ErrKeyNotFound means no key with the requested label exists on the
	// token (or it is not visible to the logged-in user).
	ErrKeyNotFound = errors.New("hsmshare: key not found")
	// ErrKeyExists means a key with the requested label already exists, so
	// a new one was not created.
	ErrKeyExists = errors.New("hsmshare: key already exists")
	// ErrKeyAmbiguous means more than one key object matches the requested
	// label; labels are not unique in PKCS#11, remove or relabel the extra.
	ErrKeyAmbiguous = errors.New("hsmshare: more than one key matches")
	// ErrWeakKey means an existing key's attributes are weaker than this
	// package requires (for example extractable, not sensitive, or usable
	// for wrapping); the key is refused.
	ErrWeakKey = errors.New("hsmshare: key attributes weaker than required")
	// ErrKeyInUse means a seal key cannot be destroyed because an open Store
	// still uses it (finish the rotation away from it first).
	ErrKeyInUse = errors.New("hsmshare: key still in use")
	// ErrTampered means a sealed blob failed authentication or belongs to
	// another party, key ID, kind, version, seal key or token. No plaintext
	// is ever returned with this error.
	ErrTampered = errors.New("hsmshare: sealed blob failed authentication")
	// ErrCorrupted means the data is not a well-formed sealed blob (for
	// example a truncated or garbled file).
	ErrCorrupted = errors.New("hsmshare: corrupted sealed blob")
	// ErrUnsupportedFormat means the blob was written in a format version
	// or scheme this build does not know; upgrade keyquorum to read it.
	ErrUnsupportedFormat = errors.New("hsmshare: unsupported sealed blob format")
	// ErrNotFound means a store record or version does not exist. It wraps
	// fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) also holds.
	ErrNotFound = fmt.Errorf("hsmshare: record not found: %w", fs.ErrNotExist)
	// ErrWrongSealKey means a store was opened with a seal key other than
	// the one its records are sealed under (for example the old key after
	// a finished rotation).
	ErrWrongSealKey = errors.New("hsmshare: store is sealed under another seal key")
	// ErrStoreLocked means another process (or another Store in this
	// process) holds the store's lock.
	ErrStoreLocked = errors.New("hsmshare: store in use by another process")
	// ErrInvalidName means a kind, key ID or party ID does not follow the
	// naming rules (see ValidName and ValidPartyID).
	ErrInvalidName = errors.New("hsmshare: invalid name")
	// ErrInvalidConfig means the Config (or the pkcs11: URI in it) is
	// incomplete or contradictory.
	ErrInvalidConfig = errors.New("hsmshare: invalid configuration")
	// ErrNoRNG means the token does not announce a random number
	// generator (CKF_RNG), so [Token.Random] cannot mix it into the
	// site's randomness.
	ErrNoRNG = errors.New("hsmshare: token has no random number generator")
	// ErrRandomFailed means the token's random number generator
	// (C_GenerateRandom) failed when [Random] needed it; no random bytes
	// were returned.
	ErrRandomFailed = errors.New("hsmshare: token random number generator failed")
	// ErrInvalidPeerKey means an ECDH peer public key is not a valid P-256
	// point (another curve, off the curve, or the point at infinity); it
	// was refused before it reached the token.
	ErrInvalidPeerKey = errors.New("hsmshare: invalid ECDH peer public key")
	// ErrClosed means the Token, key or Store was used after Close (or a key
	// after Destroy).
	ErrClosed = errors.New("hsmshare: use after close")
)

// MechanismError reports a PKCS#11 mechanism the token does not offer (or
// does not offer for the needed operation). errors.Is(err,
// [ErrMechanismMissing]) holds for it.
type MechanismError struct {
	// Mechanism is the mechanism name, for example "CKM_AES_GCM".
	Mechanism string
	// Token is the label of the token that lacks it.
	Token string
	// Purpose says what the mechanism was needed for.
	Purpose string
}

// Error implements error.
func (e *MechanismError) Error() string {
	return fmt.Sprintf("hsmshare: token %q does not support %s (needed to %s); use a token that offers it or see the README for the required mechanisms", e.Token, e.Mechanism, e.Purpose)
}

// Is reports whether target is [ErrMechanismMissing].
func (e *MechanismError) Is(target error) bool { return target == ErrMechanismMissing }

// ckrIs reports whether err is the PKCS#11 return value rv.
func ckrIs(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
