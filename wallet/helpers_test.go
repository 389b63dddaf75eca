package wallet_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// localKey is an ordinary secp256k1 key with a chain code that implements
// wallet.Signer by adding the hd tweak to its private key. It stands in for
// the threshold signer in tests that exercise wallet logic rather than the
// protocol; the tests in threshold_test.go use a real 2-of-3 tss-lib run.
type localKey struct {
	priv *secp256k1.PrivateKey
	xpub wallet.ExtendedPublicKey
}

func newLocalKey(t testing.TB, privHex string, chainCode []byte) *localKey {
	t.Helper()
	var priv *secp256k1.PrivateKey
	if privHex == "" {
		var err error
		if priv, err = secp256k1.GeneratePrivateKey(); err != nil {
			t.Fatal(err)
		}
	} else {
		b, err := hex.DecodeString(privHex)
		if err != nil {
			t.Fatal(err)
		}
		priv = secp256k1.PrivKeyFromBytes(b)
	}
	if chainCode == nil {
		chainCode = make([]byte, hd.ChainCodeLen)
		copy(chainCode, "keyquorum wallet test chain code")
	}
	return &localKey{priv: priv, xpub: wallet.ExtendedPublicKey{Key: priv.PubKey(), ChainCode: chainCode}}
}

func (k *localKey) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return k.xpub.PublicKey(ctx, path)
}

// childKey returns x + ε for path.
func (k *localKey) childKey(path hd.Path) (*secp256k1.PrivateKey, error) {
	_, _, tweak, err := hd.Derive(k.xpub.Key, k.xpub.ChainCode, path)
	if err != nil {
		return nil, err
	}
	var eps secp256k1.ModNScalar
	eps.SetBytes(&tweak)
	x := new(secp256k1.ModNScalar).Set(&k.priv.Key)
	return secp256k1.NewPrivateKey(x.Add(&eps)), nil
}

func (k *localKey) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	child, err := k.childKey(path)
	if err != nil {
		return nil, err
	}
	compact := ecdsa.SignCompact(child, digest[:], true) // [27+4+recid] R S
	sig := &wallet.Signature{RecoveryID: compact[0] - 27 - 4}
	copy(sig.R[:], compact[1:33])
	copy(sig.S[:], compact[33:])
	return sig, nil
}

// tamperingSigner wraps a Signer and alters what it returns.
type tamperingSigner struct {
	wallet.Signer
	alter func(*wallet.Signature) (*wallet.Signature, error)
}

func (s tamperingSigner) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	sig, err := s.Signer.SignDigest(ctx, digest, path)
	if err != nil {
		return nil, err
	}
	return s.alter(sig)
}

// highS returns the same signature with S replaced by n − S and the
// recovery ID left as it was (so it is now wrong), as a careless signer
// might return it.
func highS(sig *wallet.Signature) (*wallet.Signature, error) {
	var s secp256k1.ModNScalar
	s.SetBytes(&sig.S)
	if !s.IsOverHalfOrder() {
		s.Negate()
	}
	out := *sig
	out.S = s.Bytes()
	return &out, nil
}

// otherKeySigner reports the keys of s but signs with an unrelated key.
func otherKeySigner(t testing.TB, s wallet.Signer) wallet.Signer {
	return keyOverride{pub: s, sig: newLocalKey(t, "", nil)}
}

// keyOverride reports the public keys of pub but signs with sig.
type keyOverride struct {
	pub wallet.KeySource
	sig wallet.Signer
}

func (k keyOverride) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return k.pub.PublicKey(ctx, path)
}

func (k keyOverride) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	return k.sig.SignDigest(ctx, digest, path)
}

var errSignerDown = errors.New("signer unavailable")

// failingSigner reports keys but cannot sign.
type failingSigner struct{ wallet.KeySource }

func (failingSigner) SignDigest(context.Context, [32]byte, hd.Path) (*wallet.Signature, error) {
	return nil, errSignerDown
}

func mustPath(t testing.TB, s string) hd.Path {
	t.Helper()
	p, err := hd.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func readVectors(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "wallet", name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}
