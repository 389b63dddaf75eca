package hsmshare

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ecdhSecretLen is the length of a P-256 ECDH shared secret: the
// x-coordinate of the shared point (SEC 1 v2, §3.3.1).
const ecdhSecretLen = 32

// ECDHKey is a P-256 key pair generated inside the token for key agreement
// only: the private half may derive (CKA_DERIVE) and nothing else, and is
// sensitive and never extractable. It implements crypto/ecdh's
// KeyExchanger, so it can be the recipient key of HPKE (crypto/hpke's
// NewDHKEMPrivateKey with DHKEM(P-256)). It is safe for concurrent use.
//
// ECDH runs CKM_ECDH1_DERIVE with the null key derivation function: the
// token derives the shared secret Z into a session object, which is read
// and destroyed at once. Z therefore leaves the token in clear, as it must
// for HPKE's key schedule, which runs in Go (RFC 9180 §4.1); the private
// key never does. Any session logged in to the token can decapsulate, so
// the PIN guards this key exactly as it guards the identity key.
type ECDHKey struct {
	keyPair
	pub *ecdh.PublicKey
}

var _ ecdh.KeyExchanger = (*ECDHKey)(nil)

// Required attributes of the ECDH private key.
var ecdhPrivReqs = []requirement{
	classIs(pkcs11.CKO_PRIVATE_KEY),
	keyTypeIs(pkcs11.CKK_EC),
	boolIs("CKA_DERIVE", true),
	boolIs("CKA_SIGN", false),
	boolIs("CKA_DECRYPT", false),
	boolIs("CKA_UNWRAP", false),
	boolIs("CKA_SIGN_RECOVER", false),
}

// ecdhPurpose says, in a [MechanismError], why CKM_ECDH1_DERIVE is needed.
const ecdhPurpose = "derive ECDH shared secrets with the HPKE key; a token without it cannot decrypt offline bundles, see the offline package's FORMAT.md, \"Tokens without ECDH\""

func (t *Token) requireECDH() error {
	return t.requireMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.CKF_DERIVE, ecdhPurpose)
}

// CreateECDHKey generates a P-256 key pair labelled label inside the token
// for ECDH (HPKE decryption). The private key is CKA_TOKEN, CKA_PRIVATE,
// CKA_SENSITIVE, not extractable, not modifiable and may only derive; the
// public key is a token object that is only read. Both halves share a
// random CKA_ID. The label must differ from the identity key's (for
// example the identity's label with ".hpke" appended): labels name key
// pairs, and CreateECDHKey refuses ([ErrKeyExists]) a label that any key
// pair already has.
//
// It fails with a *[MechanismError] (errors.Is [ErrMechanismMissing]) when
// the token does not offer CKM_EC_KEY_PAIR_GEN or CKM_ECDH1_DERIVE.
func (t *Token) CreateECDHKey(ctx context.Context, label string) (*ECDHKey, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if err := t.requireMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR, "generate the P-256 HPKE key"); err != nil {
		return nil, err
	}
	if err := t.requireECDH(); err != nil {
		return nil, err
	}
	t.createMu.Lock()
	defer t.createMu.Unlock()

	id := make([]byte, identityIDLen)
	rand.Read(id) // never fails since Go 1.24
	err := t.pool.do(ctx, OpCreateKey, func(sh pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			existing, err := t.findObjects(sh, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			})
			if err != nil {
				return fmt.Errorf("hsmshare: search %s for key %q: %w", t.describe(), label, err)
			}
			if len(existing) > 0 {
				return fmt.Errorf("%w: %s already has a key pair labelled %q; load it with ECDHKey or pick another label", ErrKeyExists, t.describe(), label)
			}
		}
		pubTmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256Params),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		// Every usage attribute is explicit (SoftHSM2 defaults CKA_DECRYPT,
		// CKA_UNWRAP and CKA_SIGN_RECOVER of EC private keys to true, and
		// CKA_DERIVE to false). A key that agrees keys does not sign:
		// separate keys for separate jobs.
		privTmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		pub, priv, err := t.mod.ctx.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubTmpl, privTmpl)
		if err != nil {
			return fmt.Errorf("hsmshare: generate HPKE key %q on %s: %w", label, t.describe(), err)
		}
		if err := t.checkKey(sh, priv, fmt.Sprintf("new HPKE key %q on %s", label, t.describe()), protected, ecdhPrivReqs); err != nil {
			return errors.Join(err, t.destroyObjects(sh, priv, pub))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.ECDHKey(ctx, label)
}

// ECDHKey loads the existing ECDH key pair labelled label. It fails with
// [ErrKeyNotFound] if there is none, [ErrKeyAmbiguous] if several carry the
// label, a *[MechanismError] if the token does not offer CKM_ECDH1_DERIVE,
// and [ErrWeakKey] if the private key is not sensitive, is or ever was
// extractable or readable in clear, may sign, decrypt, unwrap or
// sign-recover, may not derive, or is not on P-256. It also checks, with
// one key agreement against a fresh software key, that the public key
// object belongs to the private key.
func (t *Token) ECDHKey(ctx context.Context, label string) (*ECDHKey, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if err := t.requireECDH(); err != nil {
		return nil, err
	}
	k := &ECDHKey{keyPair: keyPair{tok: t, kind: "HPKE key", label: label}}
	err := t.pool.do(ctx, OpFindKey, func(sh pkcs11.SessionHandle) error {
		priv, err := t.findOne(sh, label, "HPKE private key", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		what := fmt.Sprintf("HPKE key %q on %s", label, t.describe())
		if err := t.checkKey(sh, priv, what, protected, ecdhPrivReqs); err != nil {
			return err
		}
		if err := t.checkCurve(sh, priv, what); err != nil {
			return err
		}
		id, err := t.objectID(sh, priv)
		if err != nil {
			return err
		}
		pubH, err := t.findOne(sh, label, "HPKE public key", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		})
		if err != nil {
			return err
		}
		if err := t.checkCurve(sh, pubH, what+" (public half)"); err != nil {
			return err
		}
		epub, err := t.ecPoint(sh, pubH, what)
		if err != nil {
			return err
		}
		pub, err := epub.ECDH()
		if err != nil {
			return fmt.Errorf("%w: %s: public key: %v", ErrWeakKey, what, err)
		}
		k.priv, k.pubH, k.id, k.pub = priv, pubH, id, pub
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A public object with the right label and ID could still belong to
	// another private key; one key agreement settles it.
	probe, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: HPKE key %q: pairing check: %w", label, err)
	}
	want, err := probe.ECDH(k.pub)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: HPKE key %q: pairing check: %w", label, err)
	}
	defer wipe(want)
	got, err := k.ECDHContext(ctx, probe.PublicKey())
	if err != nil {
		return nil, err
	}
	defer wipe(got)
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%w: HPKE key %q on %s: the public key object does not match the private key", ErrWeakKey, label, t.describe())
	}
	return k, nil
}

// PublicKey returns the key pair's public key. It implements
// ecdh.KeyExchanger.
func (k *ECDHKey) PublicKey() *ecdh.PublicKey { return k.pub }

// Curve returns ecdh.P256(). It implements ecdh.KeyExchanger.
func (k *ECDHKey) Curve() ecdh.Curve { return ecdh.P256() }

// Label returns the key pair's CKA_LABEL.
func (k *ECDHKey) Label() string { return k.label }

// ID returns the key pair's CKA_ID in hex.
func (k *ECDHKey) ID() string { return hex.EncodeToString(k.id) }

// String describes the key; it holds no secret.
func (k *ECDHKey) String() string {
	return fmt.Sprintf("hsmshare.ECDHKey{label %q, id %s, on %s}", k.label, k.ID(), k.tok.describe())
}

// ECDH implements ecdh.KeyExchanger: it returns the shared secret Z of the
// key and peer, the 32-byte x-coordinate of the shared point, computed by
// the token. It uses context.Background(); use ECDHContext to bound the
// wait for a session.
func (k *ECDHKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	return k.ECDHContext(context.Background(), peer)
}

// ECDHContext returns the shared secret Z of the key and peer, computed by
// the token with CKM_ECDH1_DERIVE. peer must be a valid P-256 public key
// (on the curve, not the point at infinity); anything else is
// [ErrInvalidPeerKey] and never reaches the token. The caller owns Z and
// should wipe it after use.
func (k *ECDHKey) ECDHContext(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: HPKE key %q needs a P-256 peer key", ErrInvalidPeerKey, k.label)
	}
	return k.derive(ctx, peer.Bytes())
}

// derive runs CKM_ECDH1_DERIVE against the uncompressed peer point. It
// re-parses the point with crypto/ecdh, which refuses points off the curve
// and the identity, so that a bad point is reported as such instead of as
// the token's general error (SoftHSM2 says CKR_GENERAL_ERROR).
func (k *ECDHKey) derive(ctx context.Context, point []byte) ([]byte, error) {
	if _, err := ecdh.P256().NewPublicKey(point); err != nil {
		return nil, fmt.Errorf("%w: HPKE key %q: %v", ErrInvalidPeerKey, k.label, err)
	}
	if err := k.usable(); err != nil {
		return nil, err
	}
	if err := k.tok.requireECDH(); err != nil {
		return nil, err
	}
	// The derived secret is a session object (CKA_TOKEN false) that must
	// be readable (not sensitive, extractable) to hand Z to the HPKE key
	// schedule; it is destroyed before the session goes back to the pool.
	// PKCS#11 v2.40 current mechanisms, "Elliptic curve Diffie-Hellman key
	// derivation": with CKD_NULL the derived value is Z itself.
	secretTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, ecdhSecretLen),
	}
	var z []byte
	err := k.tok.pool.do(ctx, OpDerive, func(sh pkcs11.SessionHandle) error {
		p := k.tok.mod.ctx
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, point))}
		h, err := p.DeriveKey(sh, mech, k.priv, secretTmpl)
		if err != nil {
			return err
		}
		attrs, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if derr := p.DestroyObject(sh, h); derr != nil {
			if len(attrs) == 1 {
				wipe(attrs[0].Value)
			}
			return errors.Join(err, fmt.Errorf("destroy the derived secret: %w", derr))
		}
		if err != nil {
			return fmt.Errorf("read the derived secret: %w", err)
		}
		if len(attrs) != 1 || len(attrs[0].Value) != ecdhSecretLen {
			if len(attrs) == 1 {
				wipe(attrs[0].Value)
			}
			return fmt.Errorf("the token derived a secret that is not %d bytes", ecdhSecretLen)
		}
		z = attrs[0].Value
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: ECDH with HPKE key %q on %s: %w", k.label, k.tok.describe(), err)
	}
	return z, nil
}

// Attributes reads the private key's attributes back from the token.
func (k *ECDHKey) Attributes(ctx context.Context) (KeyAttributes, error) {
	return k.attributes(ctx)
}

// Destroy deletes both halves of the key pair from the token. Bundles
// encrypted to it can no longer be opened.
func (k *ECDHKey) Destroy(ctx context.Context) error { return k.destroy(ctx) }
