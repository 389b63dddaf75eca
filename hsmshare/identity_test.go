package hsmshare

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestIdentity_SignsVerifiableDER(t *testing.T) {
	forEachImpl(t, testIdentitySignsVerifiableDER)
}

func testIdentitySignsVerifiableDER(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	var signer crypto.Signer = idn
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("Public() is %T, want *ecdsa.PublicKey", signer.Public())
	}
	msg := []byte("handshake transcript")
	d := sha256.Sum256(msg)
	sig, err := signer.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S asn1.RawValue }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		t.Fatalf("signature is not one DER SEQUENCE: %v", err)
	}
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatal("signature does not verify with crypto/ecdsa")
	}
	other := sha256.Sum256([]byte("another message"))
	if ecdsa.VerifyASN1(pub, other[:], sig) {
		t.Fatal("signature verifies for another digest")
	}

	// A SHA-512 digest is cut to 32 bytes the same way crypto/ecdsa does.
	d512 := sha512.Sum512(msg)
	sig, err = signer.Sign(nil, d512[:], crypto.SHA512)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, d512[:], sig) {
		t.Fatal("SHA-512 signature does not verify with crypto/ecdsa")
	}

	// Reloading finds the same key.
	again, err := tk.Identity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	if !again.PublicKey().Equal(pub) || again.ID() != idn.ID() {
		t.Fatal("reloaded identity has another key")
	}
}

func TestIdentity_RejectsBadInput(t *testing.T) {
	forEachImpl(t, testIdentityRejectsBadInput)
}

func testIdentityRejectsBadInput(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idn.Sign(nil, make([]byte, 20), crypto.SHA256); err == nil {
		t.Fatal("Sign accepted a 20-byte digest labelled SHA-256")
	}
	if _, err := idn.SignDigest(ctx, nil); err == nil {
		t.Fatal("SignDigest accepted an empty digest")
	}
	if _, err := tk.CreateIdentity(ctx, "identity"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second CreateIdentity: %v, want ErrKeyExists", err)
	}
	if _, err := tk.Identity(ctx, "absent"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Identity(absent): %v, want ErrKeyNotFound", err)
	}
}

func TestIdentity_ConcurrentSigning(t *testing.T) {
	forEachImpl(t, testIdentityConcurrentSigning)
}

func testIdentityConcurrentSigning(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	pub := idn.PublicKey()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			d := sha256.Sum256([]byte{byte(g)})
			for range 10 {
				sig, err := idn.SignDigest(ctx, d[:])
				if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig) {
					t.Errorf("SignDigest: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// genPair makes an EC key pair with raw PKCS#11 calls and the given
// private-key template.
func genPair(t *testing.T, tk *Token, label string, id []byte, params []byte, priv []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle) {
	t.Helper()
	pub, pr, err := tryGenPair(tk, label, id, params, priv)
	if err != nil {
		t.Fatalf("GenerateKeyPair: %v", err)
	}
	return pub, pr
}

// tryGenPair is genPair returning the token's refusal.
func tryGenPair(tk *Token, label string, id []byte, params []byte, priv []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	pubTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	var pub, pr pkcs11.ObjectHandle
	err := tk.pool.with(context.Background(), func(sh pkcs11.SessionHandle) error {
		var err error
		pub, pr, err = tk.mod.ctx.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubTmpl, priv)
		return err
	})
	return pub, pr, err
}

func TestIdentity_RefusesWeakKeys(t *testing.T) {
	forEachImpl(t, testIdentityRefusesWeakKeys)
}

func testIdentityRefusesWeakKeys(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	good := func(label string) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		}
	}
	p384, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 34})
	cases := []struct {
		label  string
		params []byte
		priv   []*pkcs11.Attribute
		// plant is the attribute a case makes weak, checked after
		// generation: a token may make the key without the weakness.
		plant uint
		names []string // the error must name one of these
	}{
		{"good-control", p256Params, good("good-control"), 0, nil},
		{"extractable", p256Params, withAttr(good("extractable"), pkcs11.CKA_EXTRACTABLE, true), pkcs11.CKA_EXTRACTABLE, []string{"CKA_EXTRACTABLE"}},
		{"not-sensitive", p256Params, withAttr(good("not-sensitive"), pkcs11.CKA_SENSITIVE, false), pkcs11.CKA_SENSITIVE, []string{"CKA_SENSITIVE"}},
		{"decrypt", p256Params, withAttr(good("decrypt"), pkcs11.CKA_DECRYPT, true), pkcs11.CKA_DECRYPT, []string{"CKA_DECRYPT"}},
		{"unwrap", p256Params, withAttr(good("unwrap"), pkcs11.CKA_UNWRAP, true), pkcs11.CKA_UNWRAP, []string{"CKA_UNWRAP"}},
		{"sign-recover", p256Params, withAttr(good("sign-recover"), pkcs11.CKA_SIGN_RECOVER, true), pkcs11.CKA_SIGN_RECOVER, []string{"CKA_SIGN_RECOVER"}},
		{"derive", p256Params, withAttr(good("derive"), pkcs11.CKA_DERIVE, true), pkcs11.CKA_DERIVE, []string{"CKA_DERIVE"}},
		{"p384", p384, good("p384"), 0, []string{"P-256"}},
		// Usage attributes left to the token: SoftHSM2 makes such a key
		// able to decrypt, NSS softoken able to derive.
		{"token-defaults", p256Params, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "token-defaults"),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{9}),
		}, 0, []string{"CKA_DECRYPT", "CKA_DERIVE"}},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			_, priv, err := tryGenPair(tk, c.label, []byte(c.label), c.params, c.priv)
			if err != nil && c.plant != 0 {
				t.Skipf("%s refuses to make an EC key with that %s: %v", im.name, attrNames[c.plant], err)
			}
			if err != nil {
				t.Fatalf("GenerateKeyPair: %v", err)
			}
			if c.plant != 0 {
				want := c.plant != pkcs11.CKA_SENSITIVE // the weak value: true, except for CKA_SENSITIVE
				if v := rawAttrs(t, tk, priv, c.plant)[c.plant]; len(v) != 1 || (v[0] != 0) != want {
					t.Skipf("%s made the key with %s=%v anyway: nothing weak to refuse", im.name, attrNames[c.plant], v)
				}
			}
			_, err = tk.Identity(ctx, c.label)
			if len(c.names) == 0 {
				if err != nil {
					t.Fatalf("Identity on a good key: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWeakKey) || !slices.ContainsFunc(c.names, func(n string) bool { return strings.Contains(err.Error(), n) }) {
				t.Fatalf("Identity: %v, want ErrWeakKey naming one of %v", err, c.names)
			}
		})
	}

	t.Run("public key of another pair", func(t *testing.T) {
		// Two pairs; the first pair's public object is swapped for the
		// second's (same label and ID), as a tampered token could hold.
		pub1, _ := genPair(t, tk, "swapped", []byte("swapped"), p256Params, good("swapped"))
		pub2, _ := genPair(t, tk, "other", []byte("other"), p256Params, withAttr(good("other"), pkcs11.CKA_LABEL, "other"))
		err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
			if err := tk.mod.ctx.DestroyObject(sh, pub1); err != nil {
				return err
			}
			return tk.mod.ctx.SetAttributeValue(sh, pub2, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "swapped"), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte("swapped")),
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Identity(ctx, "swapped"); !errors.Is(err, ErrWeakKey) || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("Identity with a foreign public key: %v, want ErrWeakKey (does not match)", err)
		}
	})
}

func TestIdentity_Destroy(t *testing.T) {
	forEachImpl(t, testIdentityDestroy)
}

func testIdentityDestroy(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	if err := idn.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Identity(ctx, "identity"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Identity after Destroy: %v, want ErrKeyNotFound", err)
	}
	d := sha256.Sum256(nil)
	if _, err := idn.SignDigest(ctx, d[:]); !errors.Is(err, ErrClosed) {
		t.Fatalf("SignDigest after Destroy: %v, want ErrClosed", err)
	}
}

func TestDecodeECPoint_AcceptsDERAndBarePoint(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t))
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	bare, err := idn.PublicKey().Bytes()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := asn1.Marshal(bare)
	for _, v := range [][]byte{bare, der} {
		pub, err := decodeECPoint(v)
		if err != nil || !pub.Equal(idn.PublicKey()) {
			t.Fatalf("decodeECPoint: %v", err)
		}
	}
	for _, bad := range [][]byte{nil, {4}, bare[:64], append([]byte{0x04, 0x41}, make([]byte, 65)...)} {
		if _, err := decodeECPoint(bad); err == nil {
			t.Fatalf("decodeECPoint(%x) accepted a bad point", bad)
		}
	}
}
