package hsmshare

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"
)

// KeyAttributes are the security-relevant PKCS#11 attributes of a key
// object, read from the token with C_GetAttributeValue.
type KeyAttributes struct {
	// Class is CKA_CLASS (CKO_SECRET_KEY, CKO_PRIVATE_KEY, ...).
	Class uint
	// KeyType is CKA_KEY_TYPE (CKK_AES, CKK_GENERIC_SECRET, CKK_EC).
	KeyType uint
	// ValueLen is CKA_VALUE_LEN in bytes (secret keys only, else 0).
	ValueLen uint
	// Token is CKA_TOKEN: the key persists on the token.
	Token bool
	// Private is CKA_PRIVATE: the key is visible only after login.
	Private bool
	// Sensitive is CKA_SENSITIVE: the key value cannot be read in clear.
	Sensitive bool
	// Extractable is CKA_EXTRACTABLE: the key can be wrapped out.
	Extractable bool
	// AlwaysSensitive is CKA_ALWAYS_SENSITIVE: it was never non-sensitive.
	AlwaysSensitive bool
	// NeverExtractable is CKA_NEVER_EXTRACTABLE: it was never extractable.
	NeverExtractable bool
	// Local is CKA_LOCAL: the token says it generated the key. It is
	// informative only (see the note on required attributes in FORMAT.md):
	// NSS softoken reports false for keys it generated.
	Local bool
	// Modifiable is CKA_MODIFIABLE: attributes can still be changed.
	Modifiable bool
	// Encrypt is CKA_ENCRYPT.
	Encrypt bool
	// Decrypt is CKA_DECRYPT.
	Decrypt bool
	// Wrap is CKA_WRAP.
	Wrap bool
	// Unwrap is CKA_UNWRAP.
	Unwrap bool
	// Sign is CKA_SIGN.
	Sign bool
	// Verify is CKA_VERIFY.
	Verify bool
	// SignRecover is CKA_SIGN_RECOVER (private keys).
	SignRecover bool
	// Derive is CKA_DERIVE.
	Derive bool
	// Missing lists attributes the token did not report (for example
	// CKA_SIGN_RECOVER on a secret key); their fields are false.
	Missing []string
}

// attrSpec ties a boolean attribute to its field.
type attrSpec struct {
	typ  uint
	name string
	get  func(*KeyAttributes) *bool
}

var boolAttrs = []attrSpec{
	{pkcs11.CKA_TOKEN, "CKA_TOKEN", func(a *KeyAttributes) *bool { return &a.Token }},
	{pkcs11.CKA_PRIVATE, "CKA_PRIVATE", func(a *KeyAttributes) *bool { return &a.Private }},
	{pkcs11.CKA_SENSITIVE, "CKA_SENSITIVE", func(a *KeyAttributes) *bool { return &a.Sensitive }},
	{pkcs11.CKA_EXTRACTABLE, "CKA_EXTRACTABLE", func(a *KeyAttributes) *bool { return &a.Extractable }},
	{pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", func(a *KeyAttributes) *bool { return &a.AlwaysSensitive }},
	{pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", func(a *KeyAttributes) *bool { return &a.NeverExtractable }},
	{pkcs11.CKA_LOCAL, "CKA_LOCAL", func(a *KeyAttributes) *bool { return &a.Local }},
	{pkcs11.CKA_MODIFIABLE, "CKA_MODIFIABLE", func(a *KeyAttributes) *bool { return &a.Modifiable }},
	{pkcs11.CKA_ENCRYPT, "CKA_ENCRYPT", func(a *KeyAttributes) *bool { return &a.Encrypt }},
	{pkcs11.CKA_DECRYPT, "CKA_DECRYPT", func(a *KeyAttributes) *bool { return &a.Decrypt }},
	{pkcs11.CKA_WRAP, "CKA_WRAP", func(a *KeyAttributes) *bool { return &a.Wrap }},
	{pkcs11.CKA_UNWRAP, "CKA_UNWRAP", func(a *KeyAttributes) *bool { return &a.Unwrap }},
	{pkcs11.CKA_SIGN, "CKA_SIGN", func(a *KeyAttributes) *bool { return &a.Sign }},
	{pkcs11.CKA_VERIFY, "CKA_VERIFY", func(a *KeyAttributes) *bool { return &a.Verify }},
	{pkcs11.CKA_SIGN_RECOVER, "CKA_SIGN_RECOVER", func(a *KeyAttributes) *bool { return &a.SignRecover }},
	{pkcs11.CKA_DERIVE, "CKA_DERIVE", func(a *KeyAttributes) *bool { return &a.Derive }},
}

// readKeyAttributes reads a's fields one attribute at a time: miekg/pkcs11
// drops the whole result when any one attribute of a batch is invalid or
// sensitive.
func (t *Token) readKeyAttributes(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (KeyAttributes, error) {
	var a KeyAttributes
	get := func(typ uint) ([]byte, bool, error) {
		attrs, err := t.mod.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
		switch {
		case err == nil && len(attrs) == 1:
			return attrs[0].Value, true, nil
		case ckrIs(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID), ckrIs(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE):
			return nil, false, nil
		case err == nil:
			return nil, false, nil
		default:
			return nil, false, err
		}
	}
	ulong := func(typ uint, name string, dst *uint) error {
		v, ok, err := get(typ)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		n, good := ulongFromBytes(v)
		if !ok || !good {
			a.Missing = append(a.Missing, name)
			return nil
		}
		*dst = n
		return nil
	}
	if err := ulong(pkcs11.CKA_CLASS, "CKA_CLASS", &a.Class); err != nil {
		return a, err
	}
	if err := ulong(pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE", &a.KeyType); err != nil {
		return a, err
	}
	if a.Class == pkcs11.CKO_SECRET_KEY {
		if err := ulong(pkcs11.CKA_VALUE_LEN, "CKA_VALUE_LEN", &a.ValueLen); err != nil {
			return a, err
		}
	}
	for _, s := range boolAttrs {
		v, ok, err := get(s.typ)
		if err != nil {
			return a, fmt.Errorf("read %s: %w", s.name, err)
		}
		if !ok || len(v) != 1 {
			a.Missing = append(a.Missing, s.name)
			continue
		}
		*s.get(&a) = v[0] != 0
	}
	return a, nil
}

// ulongFromBytes decodes a CK_ULONG attribute, which the library returns in
// host byte order and host size (4 or 8 bytes).
func ulongFromBytes(v []byte) (uint, bool) {
	switch len(v) {
	case 4:
		return uint(binary.NativeEndian.Uint32(v)), true
	case 8:
		return uint(binary.NativeEndian.Uint64(v)), true
	default:
		return 0, false
	}
}

// requirement is one attribute value a key must have.
type requirement struct {
	name string
	want string
	got  func(KeyAttributes) string
}

func boolIs(name string, want bool) requirement {
	for _, s := range boolAttrs {
		if s.name == name {
			get := s.get
			return requirement{name: name, want: strconv.FormatBool(want), got: func(a KeyAttributes) string {
				return strconv.FormatBool(*get(&a))
			}}
		}
	}
	panic("hsmshare: unknown attribute " + name) // programming error, caught by every test
}

func ulongIs(name, wantName string, field func(KeyAttributes) uint, names map[uint]string) requirement {
	return requirement{name: name, want: wantName, got: func(a KeyAttributes) string {
		v := field(a)
		if n, ok := names[v]; ok {
			return n
		}
		return fmt.Sprint(v)
	}}
}

func isMissing(a KeyAttributes, name string) bool {
	return slices.Contains(a.Missing, name)
}

// protected are the requirements every private or secret key of this
// package meets: kept on the token, behind login, never readable in clear,
// never wrappable out, and never otherwise in the past.
//
// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are what say that the key
// value has never existed outside the token: the token sets them, a key
// created from a value (C_CreateObject) or unwrapped (C_UnwrapKey) has them
// false (PKCS#11 v2.40 base specification, "Secret key objects" and
// C_UnwrapKey), and neither can be set by the caller.
//
// CKA_LOCAL ("generated on the token") is not required. It adds nothing to
// the two above for a key the package accepts, and tokens disagree on it:
// NSS softoken 3.87 reports CKA_LOCAL false for keys it generated with
// C_GenerateKey and C_GenerateKeyPair, yet takes CKA_LOCAL true from the
// template of an imported key (which still reads ALWAYS_SENSITIVE and
// NEVER_EXTRACTABLE false). It is read and reported (KeyAttributes.Local)
// for operators, never trusted.
var protected = []requirement{
	boolIs("CKA_TOKEN", true),
	boolIs("CKA_PRIVATE", true),
	boolIs("CKA_SENSITIVE", true),
	boolIs("CKA_EXTRACTABLE", false),
	boolIs("CKA_ALWAYS_SENSITIVE", true),
	boolIs("CKA_NEVER_EXTRACTABLE", true),
}

// check returns ErrWeakKey naming every unmet requirement. An attribute the
// token does not report counts as unmet: what cannot be read cannot be
// trusted.
func check(a KeyAttributes, what string, reqs ...[]requirement) error {
	var bad []string
	for _, rs := range reqs {
		for _, r := range rs {
			got := "not reported"
			if !isMissing(a, r.name) {
				got = r.got(a)
			}
			if got != r.want {
				bad = append(bad, fmt.Sprintf("%s=%s (want %s)", r.name, got, r.want))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrWeakKey, what, strings.Join(bad, ", "))
	}
	return nil
}

var (
	classNames   = map[uint]string{pkcs11.CKO_SECRET_KEY: "CKO_SECRET_KEY", pkcs11.CKO_PRIVATE_KEY: "CKO_PRIVATE_KEY", pkcs11.CKO_PUBLIC_KEY: "CKO_PUBLIC_KEY"}
	keyTypeNames = map[uint]string{pkcs11.CKK_AES: "CKK_AES", pkcs11.CKK_GENERIC_SECRET: "CKK_GENERIC_SECRET", pkcs11.CKK_SHA256_HMAC: "CKK_SHA256_HMAC", pkcs11.CKK_EC: "CKK_EC"}
)

func classIs(c uint) requirement {
	return ulongIs("CKA_CLASS", classNames[c], func(a KeyAttributes) uint { return a.Class }, classNames)
}

func keyTypeIs(k uint) requirement {
	return ulongIs("CKA_KEY_TYPE", keyTypeNames[k], func(a KeyAttributes) uint { return a.KeyType }, keyTypeNames)
}

// keyTypeIn requires CKA_KEY_TYPE to be one of ks.
func keyTypeIn(ks ...uint) requirement {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = keyTypeNames[k]
	}
	want := strings.Join(names, " or ")
	return requirement{name: "CKA_KEY_TYPE", want: want, got: func(a KeyAttributes) string {
		if slices.Contains(ks, a.KeyType) {
			return want
		}
		if n, ok := keyTypeNames[a.KeyType]; ok {
			return n
		}
		return fmt.Sprint(a.KeyType)
	}}
}

func valueLenIs(n uint) requirement {
	return ulongIs("CKA_VALUE_LEN", fmt.Sprint(n), func(a KeyAttributes) uint { return a.ValueLen }, nil)
}

// mechanismName names the mechanisms this package uses.
func mechanismName(m uint) string {
	switch m {
	case pkcs11.CKM_AES_KEY_GEN:
		return "CKM_AES_KEY_GEN"
	case pkcs11.CKM_AES_GCM:
		return "CKM_AES_GCM"
	case pkcs11.CKM_AES_CBC_PAD:
		return "CKM_AES_CBC_PAD"
	case pkcs11.CKM_SHA256_HMAC:
		return "CKM_SHA256_HMAC"
	case pkcs11.CKM_GENERIC_SECRET_KEY_GEN:
		return "CKM_GENERIC_SECRET_KEY_GEN"
	case pkcs11.CKM_EC_KEY_PAIR_GEN:
		return "CKM_EC_KEY_PAIR_GEN"
	case pkcs11.CKM_ECDSA:
		return "CKM_ECDSA"
	case pkcs11.CKM_ECDH1_DERIVE:
		return "CKM_ECDH1_DERIVE"
	default:
		return fmt.Sprintf("mechanism %#x", m)
	}
}
