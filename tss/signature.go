package tss

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signature is a threshold ECDSA signature over secp256k1. The engine only
// returns a Signature after checking that it verifies under PublicKey and
// that S is low (S ≤ n/2, as Bitcoin's standardness rules and Ethereum
// require); RecoveryID is found by recovering PublicKey (GG18) or derived
// from the nonce point R (GG20), and Verify checks all three.
type Signature struct {
	// R and S are the signature scalars, 32 bytes big-endian.
	R, S [32]byte
	// RecoveryID (0 to 3) lets a verifier recover the public key from the
	// signature and digest, as Ethereum does.
	RecoveryID byte
	// PublicKey is the 33-byte compressed key the signature verifies under:
	// the key derived along the request's path, or the key itself.
	PublicKey []byte
	// Digest is the 32-byte message digest that was signed.
	Digest [32]byte
}

// DER returns the signature in ASN.1 DER form, as Bitcoin scripts and Go's
// ecdsa.VerifyASN1 expect.
func (s *Signature) DER() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(s.R[:]))
		b.AddASN1BigInt(new(big.Int).SetBytes(s.S[:]))
	})
	return b.BytesOrPanic()
}

// Compact returns R || S || V with V the recovery ID (0 or 1, rarely 2 or
// 3), the 65-byte form Ethereum uses.
func (s *Signature) Compact() []byte {
	out := make([]byte, 65)
	copy(out, s.R[:])
	copy(out[32:], s.S[:])
	out[64] = s.RecoveryID
	return out
}

// Verify checks the signature against its public key and digest, the low-S
// rule and the recovery ID.
func (s *Signature) Verify() error {
	pub, err := secp256k1.ParsePubKey(s.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: bad public key: %v", ErrInvalidSignature, err)
	}
	var r, sv secp256k1.ModNScalar
	if r.SetByteSlice(s.R[:]) || sv.SetByteSlice(s.S[:]) || r.IsZero() || sv.IsZero() {
		return fmt.Errorf("%w: scalar out of range", ErrInvalidSignature)
	}
	if sv.IsOverHalfOrder() {
		return fmt.Errorf("%w: S is not low", ErrInvalidSignature)
	}
	if !secpecdsa.NewSignature(&r, &sv).Verify(s.Digest[:], pub) {
		return ErrInvalidSignature
	}
	rec, err := recoverKey(s.R, s.S, s.RecoveryID, s.Digest)
	if err != nil || !rec.IsEqual(pub) {
		return fmt.Errorf("%w: recovery ID does not recover the public key", ErrInvalidSignature)
	}
	return nil
}

func recoverKey(r, s [32]byte, recid byte, digest [32]byte) (*secp256k1.PublicKey, error) {
	if recid > 3 {
		return nil, errors.New("recovery ID out of range")
	}
	compact := make([]byte, 65)
	compact[0] = 27 + 4 + recid // compressed-key header, as decred expects
	copy(compact[1:], r[:])
	copy(compact[33:], s[:])
	pub, _, err := secpecdsa.RecoverCompact(compact, digest[:])
	return pub, err
}

// newSignature builds a verified Signature from r, s (s normalised to low-S
// here if needed) and finds the recovery ID by trial, so it does not rely on
// the protocol's own bookkeeping.
func newSignature(r, s *big.Int, pub []byte, digest [32]byte) (*Signature, error) {
	n := secp256k1.S256().N
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return nil, fmt.Errorf("%w: scalar out of range", ErrInvalidSignature)
	}
	ss := new(big.Int).Set(s)
	if ss.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		ss.Sub(n, ss)
	}
	sig := &Signature{PublicKey: append([]byte(nil), pub...), Digest: digest}
	r.FillBytes(sig.R[:])
	ss.FillBytes(sig.S[:])
	want, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: bad public key", ErrInvalidSignature)
	}
	for id := byte(0); id < 4; id++ {
		if k, err := recoverKey(sig.R, sig.S, id, digest); err == nil && k.IsEqual(want) {
			sig.RecoveryID = id
			return sig, sig.Verify()
		}
	}
	return nil, ErrInvalidSignature
}
