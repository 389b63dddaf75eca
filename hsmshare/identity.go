package hsmshare

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
)

// identityIDLen is the length of the random CKA_ID of new identity keys.
const identityIDLen = 16

// p256Params is CKA_EC_PARAMS for P-256: the DER encoding of the OID
// 1.2.840.10045.3.1.7 (prime256v1 / secp256r1).
var p256Params = mustMarshalOID(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})

func mustMarshalOID(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err) // constant input; unreachable
	}
	return b
}

// Identity is a P-256 key pair generated inside the token whose private half
// is sensitive and never extractable. It implements crypto.Signer: Sign
// takes a message digest and returns an ASN.1 DER ECDSA signature made by
// the token (CKM_ECDSA). It is safe for concurrent use.
type Identity struct {
	keyPair
	pub *ecdsa.PublicKey
}

var _ crypto.Signer = (*Identity)(nil)

// Required attributes of the identity private key.
var identityPrivReqs = []requirement{
	classIs(pkcs11.CKO_PRIVATE_KEY),
	keyTypeIs(pkcs11.CKK_EC),
	boolIs("CKA_SIGN", true),
	boolIs("CKA_DECRYPT", false),
	boolIs("CKA_UNWRAP", false),
	boolIs("CKA_SIGN_RECOVER", false),
	boolIs("CKA_DERIVE", false),
}

// CreateIdentity generates a P-256 key pair labelled label inside the token.
// The private key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not extractable,
// not modifiable and may only sign; the public key is a token object whose
// usage is left to the token (it is only read). Both halves share a random
// CKA_ID, as the two halves of one pair do by convention. It refuses ([ErrKeyExists]) when a key pair
// with that label exists, and checks the new key like [Token.Identity] does.
func (t *Token) CreateIdentity(ctx context.Context, label string) (*Identity, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if err := t.requireMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR, "generate the P-256 identity key"); err != nil {
		return nil, err
	}
	if err := t.requireMechanism(pkcs11.CKM_ECDSA, pkcs11.CKF_SIGN, "sign with the identity key"); err != nil {
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
				return fmt.Errorf("%w: %s already has a key pair labelled %q; load it with Identity or pick another label", ErrKeyExists, t.describe(), label)
			}
		}
		// The public half gets only what it needs. keyquorum never uses it
		// in a token operation (it reads CKA_EC_POINT and verifies in Go),
		// so its usage attributes are left to the token: tpm2-pkcs11
		// refuses a public-key template with CKA_VERIFY true and
		// CKA_ENCRYPT false.
		pubTmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256Params),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		// Every usage attribute is explicit: SoftHSM2 defaults CKA_DECRYPT,
		// CKA_UNWRAP and CKA_SIGN_RECOVER of EC private keys to true.
		privTmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		pub, priv, err := t.mod.ctx.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubTmpl, privTmpl)
		if err != nil {
			return fmt.Errorf("hsmshare: generate identity key %q on %s: %w", label, t.describe(), err)
		}
		if err := t.checkKey(sh, priv, fmt.Sprintf("new identity key %q on %s", label, t.describe()), protected, identityPrivReqs); err != nil {
			return errors.Join(err, t.destroyObjects(sh, priv, pub))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.Identity(ctx, label)
}

// Identity loads the existing identity key pair labelled label. It fails
// with [ErrKeyNotFound] if there is none, [ErrKeyAmbiguous] if several carry the
// label, and [ErrWeakKey] if the private key is not sensitive, is extractable,
// was ever readable in clear or extractable (CKA_ALWAYS_SENSITIVE,
// CKA_NEVER_EXTRACTABLE), may decrypt, unwrap, sign-recover or derive, or is
// not on P-256. It also checks, with one signature, that the
// public key object belongs to the private key.
func (t *Token) Identity(ctx context.Context, label string) (*Identity, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if err := t.requireMechanism(pkcs11.CKM_ECDSA, pkcs11.CKF_SIGN, "sign with the identity key"); err != nil {
		return nil, err
	}
	idn := &Identity{keyPair: keyPair{tok: t, kind: "identity", label: label}}
	err := t.pool.do(ctx, OpFindKey, func(sh pkcs11.SessionHandle) error {
		priv, err := t.findOne(sh, label, "identity private key", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		what := fmt.Sprintf("identity key %q on %s", label, t.describe())
		if err := t.checkKey(sh, priv, what, protected, identityPrivReqs); err != nil {
			return err
		}
		if err := t.checkCurve(sh, priv, what); err != nil {
			return err
		}
		id, err := t.objectID(sh, priv)
		if err != nil {
			return err
		}
		pubH, err := t.findOne(sh, label, "identity public key", []*pkcs11.Attribute{
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
		pub, err := t.ecPoint(sh, pubH, what)
		if err != nil {
			return err
		}
		idn.priv, idn.pubH, idn.id, idn.pub = priv, pubH, id, pub
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A public object with the right label and ID could still belong to
	// another private key; one signature settles it.
	probe := sha256.Sum256(append([]byte("keyquorum identity pairing check "), idn.id...))
	sig, err := idn.SignDigest(ctx, probe[:])
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(idn.pub, probe[:], sig) {
		return nil, fmt.Errorf("%w: identity key %q on %s: the public key object does not match the private key", ErrWeakKey, label, t.describe())
	}
	return idn, nil
}

func (t *Token) checkCurve(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle, what string) error {
	attrs, err := t.mod.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil)})
	if err != nil {
		return fmt.Errorf("hsmshare: %s: read CKA_EC_PARAMS: %w", what, err)
	}
	if len(attrs) != 1 || !bytes.Equal(attrs[0].Value, p256Params) {
		return fmt.Errorf("%w: %s: CKA_EC_PARAMS is not P-256", ErrWeakKey, what)
	}
	return nil
}

// ecPoint reads CKA_EC_POINT and decodes the P-256 public key. The spec
// makes the value a DER OCTET STRING around the uncompressed point; some
// tokens return the bare point, which is accepted too.
func (t *Token) ecPoint(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle, what string) (*ecdsa.PublicKey, error) {
	attrs, err := t.mod.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: %s: read CKA_EC_POINT: %w", what, err)
	}
	if len(attrs) != 1 {
		return nil, fmt.Errorf("hsmshare: %s: no CKA_EC_POINT", what)
	}
	return decodeECPoint(attrs[0].Value)
}

func decodeECPoint(v []byte) (*ecdsa.PublicKey, error) {
	point := v
	var inner []byte
	if rest, err := asn1.Unmarshal(v, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: CKA_EC_POINT is not an uncompressed P-256 point: %w", err)
	}
	return pub, nil
}

// Public returns the identity's *ecdsa.PublicKey.
func (i *Identity) Public() crypto.PublicKey { return i.PublicKey() }

// PublicKey returns the identity's public key.
func (i *Identity) PublicKey() *ecdsa.PublicKey {
	return &ecdsa.PublicKey{Curve: i.pub.Curve, X: new(big.Int).Set(i.pub.X), Y: new(big.Int).Set(i.pub.Y)}
}

// Label returns the key pair's CKA_LABEL.
func (i *Identity) Label() string { return i.label }

// ID returns the key pair's CKA_ID in hex.
func (i *Identity) ID() string { return hex.EncodeToString(i.id) }

// String describes the identity; it holds no secret.
func (i *Identity) String() string {
	return fmt.Sprintf("hsmshare.Identity{label %q, id %s, on %s}", i.label, i.ID(), i.tok.describe())
}

// Sign implements crypto.Signer. digest is the message hash (rand is not
// used: the token makes the nonce). When opts names a hash function the
// digest must have its size. Digests longer than 32 bytes are cut to their
// leftmost 32 bytes, as ECDSA on P-256 does (SEC 1 v2, §4.1.3 step 5), so
// that the result verifies with crypto/ecdsa. Sign uses
// context.Background(); use SignDigest to bound the wait for a session.
func (i *Identity) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("hsmshare: identity %q: digest is %d bytes, but %v digests are %d", i.label, len(digest), opts.HashFunc(), opts.HashFunc().Size())
	}
	return i.SignDigest(context.Background(), digest)
}

// SignDigest signs digest with CKM_ECDSA inside the token and returns the
// ASN.1 DER signature (SEQUENCE of r and s).
func (i *Identity) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if err := i.usable(); err != nil {
		return nil, err
	}
	if len(digest) == 0 {
		return nil, fmt.Errorf("hsmshare: identity %q: empty digest", i.label)
	}
	if len(digest) > 32 {
		digest = digest[:32]
	}
	var raw []byte
	err := i.tok.pool.do(ctx, OpSign, func(sh pkcs11.SessionHandle) error {
		p := i.tok.mod.ctx
		if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, i.priv); err != nil {
			return err
		}
		var err error
		raw, err = p.Sign(sh, digest)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: sign with identity %q on %s: %w", i.label, i.tok.describe(), err)
	}
	// CKM_ECDSA returns r || s, each as long as the order (PKCS#11 v2.40
	// current mechanisms, "ECDSA"); crypto.Signer wants DER.
	if len(raw) != 64 {
		return nil, fmt.Errorf("hsmshare: identity %q: token returned a %d-byte ECDSA signature, want 64", i.label, len(raw))
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: identity %q: encode signature: %w", i.label, err)
	}
	return der, nil
}

// Attributes reads the private key's attributes back from the token.
func (i *Identity) Attributes(ctx context.Context) (KeyAttributes, error) {
	return i.attributes(ctx)
}

// Destroy deletes both halves of the key pair from the token. The party's
// network identity is gone for good afterwards.
func (i *Identity) Destroy(ctx context.Context) error { return i.destroy(ctx) }
