package hd

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ChainCodeLen is the length in bytes of a BIP-32 chain code.
const ChainCodeLen = 32

// ErrInvalidChild is returned (wrapped) when a step of the path lands on one
// of the indexes BIP-32 declares invalid: I_L ≥ n or a child at infinity. The
// probability is below 2^-127 per index; BIP-32 tells the caller to proceed
// with the next index, so pick another path.
var ErrInvalidChild = errors.New("hd: BIP-32 child index is invalid for this key")

// ErrInvalidKey is returned (wrapped) for a parent public key or chain code
// that cannot be derived from: a nil or off-curve key, or a chain code that is
// not [ChainCodeLen] bytes.
var ErrInvalidKey = errors.New("hd: invalid parent key or chain code")

// Derive walks path from the parent public key pub and its chain code with
// BIP-32 public child derivation (CKDpub) and returns the child public key,
// the child chain code and the total additive tweak.
//
// The tweak ε is a 32-byte big-endian scalar modulo the curve order n with
// child = pub + ε·G. It is the sum of the I_L values of every step. A party
// holding a share x_i of the parent key x turns it into a share of the child
// key by adding ε the way tss-lib's key-derivation delta does: with Lagrange
// coefficients λ_i of a signer set, Σ λ_i·(x_i + ε) = x + ε because Σ λ_i = 1.
// An empty path returns pub, a copy of chainCode and a zero tweak.
//
// Each step computes, per BIP-32 "Public parent key → public child key":
//
//	I = HMAC-SHA512(key = c_par, data = serP(K_par) || ser32(i))
//	K_i = point(parse256(I_L)) + K_par,  c_i = I_R
//
// and fails with [ErrInvalidChild] if parse256(I_L) ≥ n or K_i is the point at
// infinity. A hardened index fails with [ErrHardened].
func Derive(pub *secp256k1.PublicKey, chainCode []byte, path Path) (child *secp256k1.PublicKey, childChainCode []byte, tweak [32]byte, err error) {
	if pub == nil || !pub.IsOnCurve() {
		return nil, nil, tweak, fmt.Errorf("%w: parent public key is missing or not on secp256k1", ErrInvalidKey)
	}
	if len(chainCode) != ChainCodeLen {
		return nil, nil, tweak, fmt.Errorf("%w: chain code is %d bytes, want %d", ErrInvalidKey, len(chainCode), ChainCodeLen)
	}
	if err := path.Validate(); err != nil {
		return nil, nil, tweak, err
	}

	var (
		point   secp256k1.JacobianPoint
		total   secp256k1.ModNScalar
		il      secp256k1.ModNScalar
		ilPoint secp256k1.JacobianPoint
		data    [33 + 4]byte
	)
	pub.AsJacobian(&point)
	c := make([]byte, ChainCodeLen)
	copy(c, chainCode)

	for n, idx := range path {
		point.ToAffine()
		parent := secp256k1.NewPublicKey(&point.X, &point.Y)
		copy(data[:33], parent.SerializeCompressed())
		binary.BigEndian.PutUint32(data[33:], idx)

		mac := hmac.New(sha512.New, c)
		mac.Write(data[:])
		sum := mac.Sum(nil)

		var ilBytes [32]byte
		copy(ilBytes[:], sum[:32])
		if il.SetBytes(&ilBytes) != 0 {
			return nil, nil, [32]byte{}, fmt.Errorf("%w: I_L ≥ n at level %d (index %d) of %s; use another index", ErrInvalidChild, n+1, idx, path)
		}
		secp256k1.ScalarBaseMultNonConst(&il, &ilPoint)
		secp256k1.AddNonConst(&ilPoint, &point, &point)
		if (point.X.IsZero() && point.Y.IsZero()) || point.Z.IsZero() {
			return nil, nil, [32]byte{}, fmt.Errorf("%w: child is the point at infinity at level %d (index %d) of %s; use another index", ErrInvalidChild, n+1, idx, path)
		}
		total.Add(&il)
		copy(c, sum[32:])
	}

	point.ToAffine()
	child = secp256k1.NewPublicKey(&point.X, &point.Y)
	return child, c, total.Bytes(), nil
}

// DeriveKey is [Derive] for a parent given as a 33-byte compressed (or 65-byte
// uncompressed) SEC1 public key, as keys are exchanged in keyquorum.
func DeriveKey(pubKey, chainCode []byte, path Path) (child *secp256k1.PublicKey, childChainCode []byte, tweak [32]byte, err error) {
	pub, err := secp256k1.ParsePubKey(pubKey)
	if err != nil {
		return nil, nil, tweak, fmt.Errorf("%w: parse parent public key: %v", ErrInvalidKey, err)
	}
	return Derive(pub, chainCode, path)
}
