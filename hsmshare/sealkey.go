package hsmshare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// sealKeyIDLen is the length of the random CKA_ID given to new seal keys.
// The ID names the key inside every blob it seals.
const sealKeyIDLen = 16

// macKeyIDSuffix ends the CKA_ID of a seal key's HMAC key: the AES key's
// ID followed by "hmac". Every key needs an ID of its own, because some
// tokens treat CKA_ID as a key's identity: NSS softoken 3.87, given a
// second secret key with an ID already in use, silently replaces the first
// one (same object handle, one object left).
const macKeyIDSuffix = "hmac"

// macKeyID returns the CKA_ID of the HMAC key of the seal key with ID id.
func macKeyID(id []byte) []byte {
	out := make([]byte, 0, len(id)+len(macKeyIDSuffix))
	return append(append(out, id...), macKeyIDSuffix...)
}

// maxLabelLen bounds key labels.
const maxLabelLen = 255

// SealKey is an AES-256 key inside the token that seals and opens blobs.
// Under [SchemeCBCHMAC] it is paired with an HMAC-SHA256 key that has the same
// label and the CKA_ID of the AES key followed by "hmac" (keys made by
// versions before that share the AES key's CKA_ID; they are still found).
// Neither key ever leaves the token. A SealKey is safe for concurrent use and
// valid until its [Token] is closed or it is destroyed.
type SealKey struct {
	tok    *Token
	label  string
	id     []byte
	aes    pkcs11.ObjectHandle
	mac    pkcs11.ObjectHandle // 0 (CK_INVALID_HANDLE) when there is none
	scheme Scheme

	mu        sync.Mutex
	destroyed bool
}

// Required attributes of the AES seal key (checked on every load).
var sealKeyReqs = []requirement{
	classIs(pkcs11.CKO_SECRET_KEY),
	keyTypeIs(pkcs11.CKK_AES),
	valueLenIs(32),
	boolIs("CKA_ENCRYPT", true),
	boolIs("CKA_DECRYPT", true),
	boolIs("CKA_WRAP", false),
	boolIs("CKA_UNWRAP", false),
	boolIs("CKA_SIGN", false),
	boolIs("CKA_VERIFY", false),
	boolIs("CKA_DERIVE", false),
}

// Required attributes of the HMAC companion key. CKM_GENERIC_SECRET_KEY_GEN
// makes CKK_GENERIC_SECRET keys on SoftHSM2 and NSS softoken;
// tpm2-pkcs11 makes CKK_SHA256_HMAC keys. Both serve CKM_SHA256_HMAC.
var macKeyReqs = []requirement{
	classIs(pkcs11.CKO_SECRET_KEY),
	keyTypeIn(pkcs11.CKK_GENERIC_SECRET, pkcs11.CKK_SHA256_HMAC),
	valueLenIs(32),
	boolIs("CKA_SIGN", true),
	boolIs("CKA_VERIFY", true),
	boolIs("CKA_ENCRYPT", false),
	boolIs("CKA_DECRYPT", false),
	boolIs("CKA_WRAP", false),
	boolIs("CKA_UNWRAP", false),
	boolIs("CKA_DERIVE", false),
}

// secretTemplate is the template of a generated secret key. It holds what
// the key needs and nothing the mechanism decides: CKA_CLASS and
// CKA_KEY_TYPE follow from CKM_AES_KEY_GEN or CKM_GENERIC_SECRET_KEY_GEN,
// and naming a key type can make a token refuse (SoftHSM2 answers
// CKR_TEMPLATE_INCONSISTENT to CKK_SHA256_HMAC, tpm2-pkcs11 makes that type
// itself). Every usage attribute is spelled out: SoftHSM2, for one, defaults
// CKA_WRAP, CKA_UNWRAP, CKA_SIGN and CKA_VERIFY to true when they are
// omitted. The key type made is checked afterwards with the other
// attributes.
func secretTemplate(label string, id []byte, encrypt, sign bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, encrypt),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, encrypt),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, sign),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, sign),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
}

func validLabel(label string) error {
	if label == "" || len(label) > maxLabelLen {
		return fmt.Errorf("%w: key label must be 1 to %d bytes", ErrInvalidName, maxLabelLen)
	}
	return nil
}

// sealScheme picks the scheme new blobs get on this token.
func (t *Token) sealScheme() (Scheme, error) {
	gcm := t.requireMechanism(pkcs11.CKM_AES_GCM, pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT, "seal blobs with AES-GCM")
	fallback := func() error {
		if err := t.requireMechanism(pkcs11.CKM_AES_CBC_PAD, pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT, "seal blobs with the CBC+HMAC fallback"); err != nil {
			return err
		}
		return t.requireMechanism(pkcs11.CKM_SHA256_HMAC, pkcs11.CKF_SIGN, "authenticate blobs with the CBC+HMAC fallback")
	}
	switch t.scheme {
	case SchemeGCM:
		return SchemeGCM, gcm
	case SchemeCBCHMAC:
		return SchemeCBCHMAC, fallback()
	default:
		if gcm == nil {
			return SchemeGCM, nil
		}
		if fallback() == nil {
			return SchemeCBCHMAC, nil
		}
		return 0, gcm
	}
}

// SealKey loads the existing seal key labelled label. It fails with
// [ErrKeyNotFound] if there is none, [ErrKeyAmbiguous] if several keys carry the
// label, and [ErrWeakKey] if the key's attributes are weaker than required
// (not sensitive, extractable, ever readable in clear or extractable,
// usable for wrapping or signing, ...). With [SchemeCBCHMAC] the HMAC companion
// key must exist and pass the same checks.
func (t *Token) SealKey(ctx context.Context, label string) (*SealKey, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	scheme, err := t.sealScheme()
	if err != nil {
		return nil, err
	}
	k := &SealKey{tok: t, label: label, scheme: scheme}
	err = t.pool.do(ctx, OpFindKey, func(sh pkcs11.SessionHandle) error {
		aes, err := t.findOne(sh, label, "seal key", []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		if err := t.checkKey(sh, aes, fmt.Sprintf("seal key %q on %s", label, t.describe()), protected, sealKeyReqs); err != nil {
			return err
		}
		id, err := t.objectID(sh, aes)
		if err != nil {
			return err
		}
		k.aes, k.id = aes, id
		mac, err := t.findMACKey(sh, label, id)
		switch {
		case errors.Is(err, ErrKeyNotFound) && scheme != SchemeCBCHMAC:
			return nil // GCM needs no HMAC key
		case errors.Is(err, ErrKeyNotFound):
			return fmt.Errorf("%w: seal key %q on %s has no HMAC companion key, which the CBC+HMAC scheme needs; create a new seal key under that scheme and rotate the store to it", ErrKeyNotFound, label, t.describe())
		case err != nil:
			return err
		}
		if err := t.checkKey(sh, mac, fmt.Sprintf("HMAC key of seal key %q on %s", label, t.describe()), protected, macKeyReqs); err != nil {
			return err
		}
		k.mac = mac
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// CreateSealKey generates a new seal key labelled label inside the token:
// AES-256, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not extractable, not
// modifiable, usable only to encrypt and decrypt, with a random 16-byte
// CKA_ID. Under [SchemeCBCHMAC] it also generates the HMAC-SHA256 companion
// key. It refuses ([ErrKeyExists]) when a secret key with that label exists,
// and reads the new key's attributes back before returning it.
func (t *Token) CreateSealKey(ctx context.Context, label string) (*SealKey, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	scheme, err := t.sealScheme()
	if err != nil {
		return nil, err
	}
	if err := t.requireMechanism(pkcs11.CKM_AES_KEY_GEN, pkcs11.CKF_GENERATE, "generate the AES seal key"); err != nil {
		return nil, err
	}
	if scheme == SchemeCBCHMAC {
		if err := t.requireMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, pkcs11.CKF_GENERATE, "generate the HMAC key of the CBC+HMAC fallback"); err != nil {
			return nil, err
		}
	}
	t.createMu.Lock()
	defer t.createMu.Unlock()

	id := make([]byte, sealKeyIDLen)
	rand.Read(id) // never fails since Go 1.24
	k := &SealKey{tok: t, label: label, id: id, scheme: scheme}
	err = t.pool.do(ctx, OpCreateKey, func(sh pkcs11.SessionHandle) error {
		existing, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return fmt.Errorf("hsmshare: search %s for key %q: %w", t.describe(), label, err)
		}
		if len(existing) > 0 {
			return fmt.Errorf("%w: %s already has a secret key labelled %q; load it with SealKey or pick another label", ErrKeyExists, t.describe(), label)
		}
		// A token that treats CKA_ID as identity would replace a key that
		// has one of the new IDs. Random IDs make a clash all but
		// impossible; this check also rules out a leftover key made with
		// one of them.
		for _, kid := range [][]byte{id, macKeyID(id)} {
			if err := t.idUnused(sh, pkcs11.CKO_SECRET_KEY, kid); err != nil {
				return err
			}
		}
		aes, err := t.mod.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
			secretTemplate(label, id, true, false))
		if err != nil {
			return fmt.Errorf("hsmshare: generate seal key %q on %s: %w", label, t.describe(), err)
		}
		what := fmt.Sprintf("new seal key %q on %s", label, t.describe())
		if err := t.checkKey(sh, aes, what, protected, sealKeyReqs); err != nil {
			return errors.Join(err, t.destroyObjects(sh, aes))
		}
		k.aes = aes
		if scheme != SchemeCBCHMAC {
			return nil
		}
		mac, err := t.mod.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)},
			secretTemplate(label, macKeyID(id), false, true))
		if err != nil {
			return errors.Join(fmt.Errorf("hsmshare: generate HMAC key for seal key %q on %s: %w", label, t.describe(), err), t.destroyObjects(sh, aes))
		}
		if err := t.checkKey(sh, mac, fmt.Sprintf("new HMAC key of seal key %q on %s", label, t.describe()), protected, macKeyReqs); err != nil {
			return errors.Join(err, t.destroyObjects(sh, aes, mac))
		}
		// Both keys must exist now, as two objects: the AES key is read
		// again after the second generation.
		if mac == aes {
			return errors.Join(fmt.Errorf("hsmshare: %s: the token gave the HMAC key the AES key's object handle (it replaced the AES key); this token cannot hold the CBC+HMAC fallback", what),
				t.destroyObjects(sh, mac))
		}
		if err := t.checkKey(sh, aes, what+" after its HMAC key was generated", protected, sealKeyReqs); err != nil {
			return errors.Join(err, t.destroyObjects(sh, aes, mac))
		}
		k.mac = mac
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// findMACKey returns the HMAC key of the seal key labelled label with
// CKA_ID id: a secret key with the ID macKeyID(id), or else one laid out as
// versions before it made them, with the AES key's label and ID and type
// CKK_GENERIC_SECRET or CKK_SHA256_HMAC (the class and type tell it from
// the AES key). Its attributes are checked by the caller.
func (t *Token) findMACKey(sh pkcs11.SessionHandle, label string, id []byte) (pkcs11.ObjectHandle, error) {
	h, err := t.findOne(sh, label, "HMAC key of seal key", []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, macKeyID(id)),
	})
	if !errors.Is(err, ErrKeyNotFound) {
		return h, err
	}
	var legacy []pkcs11.ObjectHandle
	for _, kt := range []uint{pkcs11.CKK_GENERIC_SECRET, pkcs11.CKK_SHA256_HMAC} {
		hs, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		})
		if err != nil {
			return 0, fmt.Errorf("hsmshare: search %s for the HMAC key of seal key %q: %w", t.describe(), label, err)
		}
		legacy = append(legacy, hs...)
	}
	switch len(legacy) {
	case 0:
		return 0, fmt.Errorf("%w: no HMAC key of seal key %q on %s", ErrKeyNotFound, label, t.describe())
	case 1:
		return legacy[0], nil
	default:
		return 0, fmt.Errorf("%w: %d HMAC keys for seal key %q on %s; remove the extra ones", ErrKeyAmbiguous, len(legacy), label, t.describe())
	}
}

// idUnused fails with ErrKeyExists if an object of class has CKA_ID id.
func (t *Token) idUnused(sh pkcs11.SessionHandle, class uint, id []byte) error {
	hs, err := t.findObjects(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil {
		return fmt.Errorf("hsmshare: search %s for CKA_ID %x: %w", t.describe(), id, err)
	}
	if len(hs) > 0 {
		return fmt.Errorf("%w: %s already has an object with CKA_ID %x", ErrKeyExists, t.describe(), id)
	}
	return nil
}

// findOne returns the single object matching tmpl.
func (t *Token) findOne(sh pkcs11.SessionHandle, label, what string, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	hs, err := t.findObjects(sh, tmpl)
	if err != nil {
		return 0, fmt.Errorf("hsmshare: search %s for %s %q: %w", t.describe(), what, label, err)
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%w: no %s labelled %q on %s", ErrKeyNotFound, what, label, t.describe())
	case 1:
		return hs[0], nil
	default:
		return 0, fmt.Errorf("%w: %d objects for %s %q on %s; remove or relabel the extra ones", ErrKeyAmbiguous, len(hs), what, label, t.describe())
	}
}

// checkKey reads obj's attributes and checks them against reqs.
func (t *Token) checkKey(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle, what string, reqs ...[]requirement) error {
	a, err := t.readKeyAttributes(sh, obj)
	if err != nil {
		return fmt.Errorf("hsmshare: %s: %w", what, err)
	}
	return check(a, what, reqs...)
}

// objectID reads a key's CKA_ID, which must be 1..64 bytes.
func (t *Token) objectID(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := t.mod.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: read CKA_ID on %s: %w", t.describe(), err)
	}
	if len(attrs) != 1 || len(attrs[0].Value) == 0 || len(attrs[0].Value) > maxSealKeyIDLen {
		return nil, fmt.Errorf("%w: key on %s has no CKA_ID of 1 to %d bytes, which blobs use to name their key", ErrWeakKey, t.describe(), maxSealKeyIDLen)
	}
	return attrs[0].Value, nil
}

func (t *Token) destroyObjects(sh pkcs11.SessionHandle, objs ...pkcs11.ObjectHandle) error {
	var errs []error
	for _, o := range objs {
		if err := t.mod.ctx.DestroyObject(sh, o); err != nil {
			errs = append(errs, fmt.Errorf("hsmshare: destroy object on %s: %w", t.describe(), err))
		}
	}
	return errors.Join(errs...)
}

// ID returns the key's CKA_ID in hex; blobs name their seal key by it.
func (k *SealKey) ID() string { return hex.EncodeToString(k.id) }

// Label returns the key's CKA_LABEL.
func (k *SealKey) Label() string { return k.label }

// Scheme returns the scheme new blobs are sealed with.
func (k *SealKey) Scheme() Scheme { return k.scheme }

// Token returns the token holding the key.
func (k *SealKey) Token() *Token { return k.tok }

// String describes the key (label, ID, token); it holds no secret.
func (k *SealKey) String() string {
	return fmt.Sprintf("hsmshare.SealKey{label %q, id %s, %s, on %s}", k.label, k.ID(), k.scheme, k.tok.describe())
}

// Attributes reads the AES key's attributes back from the token.
func (k *SealKey) Attributes(ctx context.Context) (KeyAttributes, error) {
	if err := k.usable(); err != nil {
		return KeyAttributes{}, err
	}
	var a KeyAttributes
	err := k.tok.pool.do(ctx, OpReadAttributes, func(sh pkcs11.SessionHandle) error {
		var err error
		a, err = k.tok.readKeyAttributes(sh, k.aes)
		return err
	})
	return a, err
}

func (k *SealKey) usable() error {
	if err := k.tok.usable(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed {
		return fmt.Errorf("%w: seal key %q was destroyed", ErrClosed, k.label)
	}
	return nil
}

// acquire and release count the Stores using the key (by token slot and
// key ID, whichever SealKey value they hold).
func (k *SealKey) acquire() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed {
		return fmt.Errorf("%w: seal key %q was destroyed", ErrClosed, k.label)
	}
	k.tok.mod.keyUse(k.tok.slot, k.ID(), +1)
	return nil
}

func (k *SealKey) release() { k.tok.mod.keyUse(k.tok.slot, k.ID(), -1) }

// Destroy deletes the key (and its HMAC companion) from the token. Every
// blob sealed under it becomes unreadable forever, so Destroy refuses with
// [ErrKeyInUse] while an open [Store] in this process uses the key; rotate the
// store to a new key first ([Store.Rotate]). Stores in other processes cannot
// be seen from here.
func (k *SealKey) Destroy(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed {
		return nil
	}
	if n := k.tok.mod.keyUse(k.tok.slot, k.ID(), 0); n > 0 {
		return fmt.Errorf("%w: seal key %q is used by %d open store(s); finish Store.Rotate to a new key or close the store first", ErrKeyInUse, k.label, n)
	}
	objs := []pkcs11.ObjectHandle{k.aes}
	if k.mac != 0 {
		objs = append(objs, k.mac)
	}
	err := k.tok.pool.do(ctx, OpDestroyKey, func(sh pkcs11.SessionHandle) error {
		return k.tok.destroyObjects(sh, objs...)
	})
	if err != nil {
		return fmt.Errorf("hsmshare: destroy seal key %q: %w", k.label, err)
	}
	k.destroyed = true
	return nil
}
