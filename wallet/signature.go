package wallet

import (
	"encoding/hex"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Signature is an ECDSA signature over secp256k1 as a threshold signer
// returns it.
//
// R and S are 32-byte big-endian integers. RecoveryID identifies the public
// key among the candidates that (R, S) verifies under: bit 0 is the parity of
// the y coordinate of the nonce point, bit 1 is set when its x coordinate
// was ≥ n (which happens with probability about 2^-128). A signer may leave
// RecoveryID at zero; Canonical computes the right value.
type Signature struct {
	R, S       [32]byte
	RecoveryID byte
}

// scalars returns R and S as scalars, refusing zero or out-of-range values.
func (sig Signature) scalars() (r, s secp256k1.ModNScalar, err error) {
	if r.SetBytes(&sig.R) != 0 || r.IsZero() {
		return r, s, fmt.Errorf("%w: R is zero or not below the group order", ErrInvalidSignature)
	}
	if s.SetBytes(&sig.S) != 0 || s.IsZero() {
		return r, s, fmt.Errorf("%w: S is zero or not below the group order", ErrInvalidSignature)
	}
	return r, s, nil
}

// Verify reports with a nil error whether sig is a valid ECDSA signature of
// digest under pub. Both high and low S values verify; use Canonical to get
// the form blockchains accept.
func (sig Signature) Verify(digest [32]byte, pub *secp256k1.PublicKey) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key to verify against", ErrInvalidSignature)
	}
	r, s, err := sig.scalars()
	if err != nil {
		return err
	}
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		return fmt.Errorf("%w: digest %x, key %x", ErrInvalidSignature, digest, pub.SerializeCompressed())
	}
	return nil
}

// IsLowS reports whether S ≤ n/2, the form Bitcoin (BIP-146 LOW_S policy)
// and Ethereum (EIP-2) require.
func (sig Signature) IsLowS() bool {
	var s secp256k1.ModNScalar
	overflow := s.SetBytes(&sig.S) != 0
	return !overflow && !s.IsOverHalfOrder()
}

// Normalize returns the low-S form of sig: if S > n/2 it is replaced by n − S
// and bit 0 of RecoveryID is flipped, because (R, n − S) is the signature for
// the negated nonce point. A low-S signature is returned unchanged.
func (sig Signature) Normalize() Signature {
	var s secp256k1.ModNScalar
	if s.SetBytes(&sig.S) != 0 || !s.IsOverHalfOrder() {
		return sig
	}
	s.Negate()
	sig.S = s.Bytes()
	sig.RecoveryID ^= 1
	return sig
}

// RecoverPublicKey returns the public key that sig over digest recovers to
// with its RecoveryID. It fails with [ErrInvalidSignature] when no key
// recovers (for example a recovery ID that does not fit the signature).
func (sig Signature) RecoverPublicKey(digest [32]byte) (*secp256k1.PublicKey, error) {
	if sig.RecoveryID > 3 {
		return nil, fmt.Errorf("%w: recovery ID %d is not in 0..3", ErrInvalidSignature, sig.RecoveryID)
	}
	if _, _, err := sig.scalars(); err != nil {
		return nil, err
	}
	// dcrd's compact format: one header byte 27 + recovery ID (+4 for a
	// compressed key), then R and S.
	var compact [65]byte
	compact[0] = 27 + 4 + sig.RecoveryID
	copy(compact[1:33], sig.R[:])
	copy(compact[33:], sig.S[:])
	pub, _, err := ecdsa.RecoverCompact(compact[:], digest[:])
	if err != nil {
		return nil, fmt.Errorf("%w: recovery with ID %d: %v", ErrInvalidSignature, sig.RecoveryID, err)
	}
	return pub, nil
}

// Canonical checks sig and returns the form that goes on a chain.
//
// It verifies sig over digest under pub, normalizes it to low S, and sets
// RecoveryID to the value for which RecoverPublicKey returns pub, trying the
// signer's value first and computing it from R otherwise. Any failure wraps
// [ErrInvalidSignature]. Every signature this package places in a transaction
// has passed through Canonical.
func (sig Signature) Canonical(digest [32]byte, pub *secp256k1.PublicKey) (Signature, error) {
	if err := sig.Verify(digest, pub); err != nil {
		return Signature{}, err
	}
	low := sig.Normalize()
	hint := low.RecoveryID & 3
	for _, id := range [4]byte{hint, hint ^ 1, hint ^ 2, hint ^ 3} {
		low.RecoveryID = id
		got, err := low.RecoverPublicKey(digest)
		if err == nil && got.IsEqual(pub) {
			return low, nil
		}
	}
	return Signature{}, fmt.Errorf("%w: no recovery ID recovers key %x", ErrInvalidSignature, pub.SerializeCompressed())
}

// DER returns the strict DER encoding (BIP-66) of sig with S normalized to
// the lower half, as Bitcoin scripts carry it (without the sighash byte).
func (sig Signature) DER() []byte {
	var r, s secp256k1.ModNScalar
	r.SetBytes(&sig.R)
	s.SetBytes(&sig.S)
	// Serialize itself replaces a high S by n − S.
	return ecdsa.NewSignature(&r, &s).Serialize()
}

// Compact65 returns the 65-byte R || S || V encoding with V = RecoveryID
// (0 or 1 for any signature that can occur in practice). This is the layout
// go-ethereum's crypto.Sign produces and types.Transaction.WithSignature
// takes; EIP-191 personal-message signatures add 27 to V (see
// [SignPersonalMessage]).
func (sig Signature) Compact65() [65]byte {
	var out [65]byte
	copy(out[:32], sig.R[:])
	copy(out[32:64], sig.S[:])
	out[64] = sig.RecoveryID
	return out
}

// String returns R, S and the recovery ID in hex, for logs and tests.
func (sig Signature) String() string {
	return fmt.Sprintf("r=%s s=%s v=%d", hex.EncodeToString(sig.R[:]), hex.EncodeToString(sig.S[:]), sig.RecoveryID)
}

// ParseDER parses a strict DER ECDSA signature (without a sighash byte). The
// recovery ID of the result is zero; run Canonical to set it.
func ParseDER(der []byte) (Signature, error) {
	parsed, err := ecdsa.ParseDERSignature(der)
	if err != nil {
		return Signature{}, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	r, s := parsed.R(), parsed.S()
	return Signature{R: r.Bytes(), S: s.Bytes()}, nil
}
