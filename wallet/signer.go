package wallet

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// KeySource gives the public key of a threshold key at a derivation path.
// It needs no secret: [ExtendedPublicKey] implements it from the group key and
// chain code alone, so every site can check a payload before it signs.
type KeySource interface {
	// PublicKey returns the public key derived at path (the group key itself
	// for the empty path).
	PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error)
}

// Signer produces threshold ECDSA signatures. It is the only thing this
// package needs from a signing engine: the engine runs the protocol among
// the sites, this package computes every digest and checks every signature.
//
// SignDigest signs the 32-byte digest under the key derived at path (the
// signers add [hd.Derive]'s tweak to their shares). The digest is signed as
// is; it is never hashed again. The returned signature may have a high S and
// any recovery ID: callers in this package always pass it through
// [Signature.Canonical], which rejects a signature that does not verify under
// PublicKey(ctx, path).
type Signer interface {
	KeySource
	SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*Signature, error)
}

// ExtendedPublicKey is the public half of a threshold key as BIP-32 sees it:
// the group public key and the chain code its parties agreed on at keygen.
// It implements [KeySource] with [hd.Derive].
type ExtendedPublicKey struct {
	// Key is the group public key (the key at path "m").
	Key *secp256k1.PublicKey
	// ChainCode is the 32-byte BIP-32 chain code of the group key.
	ChainCode []byte
}

// PublicKey returns the key derived at path with [hd.Derive].
func (x ExtendedPublicKey) PublicKey(_ context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	child, _, _, err := hd.Derive(x.Key, x.ChainCode, path)
	if err != nil {
		return nil, fmt.Errorf("wallet: derive %s: %w", path, err)
	}
	return child, nil
}

// Fingerprint returns the BIP-32 key fingerprint: the first four bytes of
// HASH160 of the compressed key. PSBT BIP-32 derivation fields name the root
// of a path by its fingerprint; for a threshold key the root is the group key,
// so Fingerprint(groupKey) is the "master key fingerprint" of its paths.
func Fingerprint(pub *secp256k1.PublicKey) [4]byte {
	var fp [4]byte
	copy(fp[:], btcutil.Hash160(pub.SerializeCompressed()))
	return fp
}

// PSBTFingerprint returns Fingerprint(pub) in the form btcutil/psbt keeps it
// in Bip32Derivation.MasterKeyFingerprint: the four bytes read as a
// little-endian uint32, so that the serialized PSBT carries the bytes in
// BIP-174 order.
func PSBTFingerprint(pub *secp256k1.PublicKey) uint32 {
	fp := Fingerprint(pub)
	return binary.LittleEndian.Uint32(fp[:])
}

// signChecked asks s for a signature of digest at path and returns it in
// canonical form after checking it against pub, the key the payload was
// built for.
func signChecked(ctx context.Context, s Signer, digest [32]byte, path hd.Path, pub *secp256k1.PublicKey) (Signature, error) {
	raw, err := s.SignDigest(ctx, digest, path)
	if err != nil {
		return Signature{}, fmt.Errorf("wallet: sign digest %x at %s: %w", digest, path, err)
	}
	if raw == nil {
		return Signature{}, fmt.Errorf("%w: signer returned no signature for digest %x at %s", ErrInvalidSignature, digest, path)
	}
	sig, err := raw.Canonical(digest, pub)
	if err != nil {
		return Signature{}, fmt.Errorf("wallet: signature from signer for digest %x at %s: %w", digest, path, err)
	}
	return sig, nil
}

// signerKey fetches the signer's key at path.
func signerKey(ctx context.Context, keys KeySource, path hd.Path) (*secp256k1.PublicKey, error) {
	pub, err := keys.PublicKey(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("wallet: public key at %s: %w", path, err)
	}
	if pub == nil || !pub.IsOnCurve() {
		return nil, fmt.Errorf("%w: key source returned no valid key at %s", ErrSignerKey, path)
	}
	return pub, nil
}
