package hsmshare

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestECDHKey_MatchesCryptoECDH(t *testing.T) {
	forEachImpl(t, testECDHKeyMatchesCryptoECDH)
}

func testECDHKeyMatchesCryptoECDH(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	k, err := tk.CreateECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	var kx ecdh.KeyExchanger = k
	if kx.Curve() != ecdh.P256() {
		t.Fatalf("Curve() = %v, want P-256", kx.Curve())
	}
	for range 3 {
		peer, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kx.ECDH(peer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.ECDH(kx.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("token ECDH = %x, crypto/ecdh = %x", got, want)
		}
	}
	again, err := tk.ECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	if !again.PublicKey().Equal(k.PublicKey()) || again.ID() != k.ID() {
		t.Fatal("reloaded HPKE key has another public key")
	}
	if s := k.String(); !strings.Contains(s, "party.hpke") {
		t.Fatalf("String() = %q, want the label", s)
	}
}

func TestECDHKey_OpensHPKE(t *testing.T) {
	forEachImpl(t, testECDHKeyOpensHPKE)
}

func testECDHKeyOpensHPKE(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	k, err := tk.CreateECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := hpke.NewDHKEMPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sk, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	kdf, aead := hpke.HKDFSHA256(), hpke.AES256GCM()
	info := []byte("keyquorum test info")
	msg := []byte("presign round 2 for the cold site")
	ct, err := hpke.Seal(pk, kdf, aead, info, msg)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := hpke.Open(sk, kdf, aead, info, ct)
	if err != nil {
		t.Fatalf("Open with the token key: %v", err)
	}
	if !bytes.Equal(pt, msg) {
		t.Fatalf("opened %q, want %q", pt, msg)
	}
	if _, err := hpke.Open(sk, kdf, aead, []byte("other info"), ct); err == nil {
		t.Fatal("Open with another info succeeded")
	}
	// Another recipient's key cannot open it.
	other, err := tk.CreateECDHKey(ctx, "other.hpke")
	if err != nil {
		t.Fatal(err)
	}
	osk, err := hpke.NewDHKEMPrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hpke.Open(osk, kdf, aead, info, ct); err == nil {
		t.Fatal("another token key opened the ciphertext")
	}
}

func TestECDHKey_RejectsBadPeerKeys(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t))
	k, err := tk.CreateECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		peer *ecdh.PublicKey
	}{
		{"nil", nil},
		{"zero value", &ecdh.PublicKey{}},
		{"X25519", x.PublicKey()},
		{"P-384", p384.PublicKey()},
	} {
		if _, err := k.ECDH(tc.peer); !errors.Is(err, ErrInvalidPeerKey) {
			t.Errorf("%s peer: %v, want ErrInvalidPeerKey", tc.name, err)
		}
	}
	// Points that no *ecdh.PublicKey can hold reach derive only through
	// this package; they are refused before the token sees them.
	offCurve := append([]byte{4}, make([]byte, 64)...)
	offCurve[64] = 1 // (0, 1) is not on P-256
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	flipped := bytes.Clone(peer.PublicKey().Bytes())
	flipped[64] ^= 1
	for _, tc := range []struct {
		name  string
		point []byte
	}{
		{"off the curve", offCurve},
		{"y flipped", flipped},
		{"identity (encoded as 0x00)", []byte{0}},
		{"all zero", make([]byte, 65)},
		{"compressed", append([]byte{2}, peer.PublicKey().Bytes()[1:33]...)},
		{"empty", nil},
	} {
		if _, err := k.derive(ctx, tc.point); !errors.Is(err, ErrInvalidPeerKey) {
			t.Errorf("%s point: %v, want ErrInvalidPeerKey", tc.name, err)
		}
	}
}

func TestECDHKey_NotExtractable(t *testing.T) {
	forEachImpl(t, testECDHKeyNotExtractable)
}

func testECDHKeyNotExtractable(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	k, err := tk.CreateECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Attributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Token || !a.Private || !a.Sensitive || a.Extractable || !a.AlwaysSensitive || !a.NeverExtractable {
		t.Fatalf("HPKE key attributes %+v: want a private, sensitive, never extractable token object", a)
	}
	if !a.Derive || a.Sign || a.Decrypt || a.Unwrap || a.SignRecover || a.Modifiable {
		t.Fatalf("HPKE key usage %+v: want derive only, not modifiable", a)
	}
	err = tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		attrs, err := tk.mod.ctx.GetAttributeValue(sh, k.priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err == nil && len(attrs) == 1 && len(attrs[0].Value) > 0 {
			return errors.New("CKA_VALUE of the private key is readable")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// No derived secret is left behind in the session.
	err = tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := tk.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)})
		if err != nil {
			return err
		}
		if len(hs) != 0 {
			return errors.New("a derived secret object outlived ECDH")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestECDHKey_LabelsAndWeakKeys(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t))
	if _, err := tk.CreateIdentity(ctx, "party"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.CreateECDHKey(ctx, "party"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateECDHKey with the identity's label: %v, want ErrKeyExists", err)
	}
	// The identity key may sign and may not derive: not an HPKE key.
	if _, err := tk.ECDHKey(ctx, "party"); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("ECDHKey on the identity key: %v, want ErrWeakKey", err)
	}
	if _, err := tk.CreateECDHKey(ctx, "party.hpke"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.CreateECDHKey(ctx, "party.hpke"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second CreateECDHKey: %v, want ErrKeyExists", err)
	}
	if _, err := tk.ECDHKey(ctx, "absent"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ECDHKey(absent): %v, want ErrKeyNotFound", err)
	}
	// The identity still loads beside its HPKE key.
	if _, err := tk.Identity(ctx, "party"); err != nil {
		t.Fatalf("Identity beside an HPKE key: %v", err)
	}
	k, err := tk.ECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := k.ECDH(peer.PublicKey()); !errors.Is(err, ErrClosed) {
		t.Fatalf("ECDH after Destroy: %v, want ErrClosed", err)
	}
	if _, err := tk.ECDHKey(ctx, "party.hpke"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ECDHKey after Destroy: %v, want ErrKeyNotFound", err)
	}
}

func TestRequireMechanism_ECDHKeyWithoutDerive(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t))
	k, err := tk.CreateECDHKey(ctx, "party.hpke")
	if err != nil {
		t.Fatal(err)
	}
	delete(tk.mechs, pkcs11.CKM_ECDH1_DERIVE)
	var me *MechanismError
	for name, f := range map[string]func() error{
		"CreateECDHKey": func() error { _, err := tk.CreateECDHKey(ctx, "new.hpke"); return err },
		"ECDHKey":       func() error { _, err := tk.ECDHKey(ctx, "party.hpke"); return err },
		"ECDH": func() error {
			peer, _ := ecdh.P256().GenerateKey(rand.Reader)
			_, err := k.ECDH(peer.PublicKey())
			return err
		},
	} {
		err := f()
		if !errors.As(err, &me) || me.Mechanism != "CKM_ECDH1_DERIVE" || !errors.Is(err, ErrMechanismMissing) {
			t.Fatalf("%s without CKM_ECDH1_DERIVE: %v, want a MechanismError naming it", name, err)
		}
		if !strings.Contains(err.Error(), tk.Label()) {
			t.Fatalf("%s: error does not name the token: %v", name, err)
		}
	}
}
