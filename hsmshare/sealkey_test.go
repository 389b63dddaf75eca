package hsmshare

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestCreateSealKey_RefusesExistingLabel(t *testing.T) {
	forEachImpl(t, testCreateSealKeyRefusesExistingLabel)
}

func testCreateSealKeyRefusesExistingLabel(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.CreateSealKey(ctx, "seal"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second CreateSealKey: %v, want ErrKeyExists", err)
	}
	got, err := tk.SealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != k.ID() || len(k.id) != 16 {
		t.Fatalf("loaded key ID %s, created %s", got.ID(), k.ID())
	}
}

func TestSealKey_NotFound(t *testing.T) {
	forEachImpl(t, testSealKeyNotFound)
}

func testSealKeyNotFound(t *testing.T, im impl) {
	tk := openToken(t, im.newToken(t))
	if _, err := tk.SealKey(context.Background(), "absent"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("SealKey: %v, want ErrKeyNotFound", err)
	}
	if _, err := tk.SealKey(context.Background(), ""); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("SealKey(\"\"): %v, want ErrInvalidName", err)
	}
}

// generate makes a key on the token with raw PKCS#11 calls, bypassing the
// package's templates, to plant keys an attacker or a careless tool could
// leave behind.
func generate(t *testing.T, tk *Token, mech uint, tmpl []*pkcs11.Attribute) pkcs11.ObjectHandle {
	t.Helper()
	var h pkcs11.ObjectHandle
	err := tk.pool.with(context.Background(), func(sh pkcs11.SessionHandle) error {
		var err error
		h, err = tk.mod.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, tmpl)
		return err
	})
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return h
}

// aesTemplate is the package's seal-key template with CKA_CLASS and
// CKA_KEY_TYPE, which C_CreateObject needs.
func aesTemplate(label string, id []byte) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
	}, secretTemplate(label, id, true, false)...)
}

// withAttr returns tmpl with attribute typ set to v (replacing or adding).
func withAttr(tmpl []*pkcs11.Attribute, typ uint, v any) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, 0, len(tmpl)+1)
	for _, a := range tmpl {
		if a.Type != typ {
			out = append(out, a)
		}
	}
	return append(out, pkcs11.NewAttribute(typ, v))
}

func TestSealKey_RefusesWeakKeys(t *testing.T) {
	forEachImpl(t, testSealKeyRefusesWeakKeys)
}

func testSealKeyRefusesWeakKeys(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	good := func(label string) []*pkcs11.Attribute {
		return aesTemplate(label, []byte(label))
	}
	// weak is the attribute a case plants and its weak value; a token
	// that makes the key without it (NSS softoken keeps every key in its
	// database private and sensitive) leaves nothing to refuse.
	type weak struct {
		typ uint
		val bool
	}
	cases := []struct {
		label string
		tmpl  []*pkcs11.Attribute
		after func(h pkcs11.ObjectHandle)
		plant *weak
		names []string // the error must name one of these
	}{
		{label: "extractable", tmpl: withAttr(good("extractable"), pkcs11.CKA_EXTRACTABLE, true), names: []string{"CKA_EXTRACTABLE"}},
		{label: "not-sensitive", tmpl: withAttr(good("not-sensitive"), pkcs11.CKA_SENSITIVE, false), plant: &weak{pkcs11.CKA_SENSITIVE, false}, names: []string{"CKA_SENSITIVE"}},
		{label: "public", tmpl: withAttr(good("public"), pkcs11.CKA_PRIVATE, false), plant: &weak{pkcs11.CKA_PRIVATE, false}, names: []string{"CKA_PRIVATE"}},
		{label: "wrap", tmpl: withAttr(good("wrap"), pkcs11.CKA_WRAP, true), names: []string{"CKA_WRAP"}},
		{label: "unwrap", tmpl: withAttr(good("unwrap"), pkcs11.CKA_UNWRAP, true), names: []string{"CKA_UNWRAP"}},
		{label: "sign", tmpl: withAttr(good("sign"), pkcs11.CKA_SIGN, true), names: []string{"CKA_SIGN"}},
		{label: "derive", tmpl: withAttr(good("derive"), pkcs11.CKA_DERIVE, true), names: []string{"CKA_DERIVE"}},
		{label: "aes-128", tmpl: withAttr(good("aes-128"), pkcs11.CKA_VALUE_LEN, 16), names: []string{"CKA_VALUE_LEN"}},
		{label: "session-object", tmpl: withAttr(good("session-object"), pkcs11.CKA_TOKEN, false), names: []string{"CKA_TOKEN"}},
		{label: "token-defaults", tmpl: []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "token-defaults"),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1}),
		}, names: []string{"CKA_WRAP", "CKA_SIGN", "CKA_DERIVE", "CKA_UNWRAP"}},
		{label: "was-extractable", tmpl: withAttr(withAttr(good("was-extractable"), pkcs11.CKA_EXTRACTABLE, true), pkcs11.CKA_MODIFIABLE, true),
			after: func(h pkcs11.ObjectHandle) { setAttr(t, tk, h, pkcs11.CKA_EXTRACTABLE, false) }, names: []string{"CKA_NEVER_EXTRACTABLE"}},
		{label: "was-clear", tmpl: withAttr(withAttr(good("was-clear"), pkcs11.CKA_SENSITIVE, false), pkcs11.CKA_MODIFIABLE, true),
			plant: &weak{pkcs11.CKA_SENSITIVE, false},
			after: func(h pkcs11.ObjectHandle) { setAttr(t, tk, h, pkcs11.CKA_SENSITIVE, true) }, names: []string{"CKA_ALWAYS_SENSITIVE"}},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			h := generate(t, tk, pkcs11.CKM_AES_KEY_GEN, c.tmpl)
			if c.plant != nil {
				if v := rawAttrs(t, tk, h, c.plant.typ)[c.plant.typ]; len(v) != 1 || (v[0] != 0) != c.plant.val {
					t.Skipf("%s made the key with %s=%v anyway: nothing weak to refuse", im.name, attrNames[c.plant.typ], v)
				}
			}
			if c.after != nil {
				c.after(h)
			}
			_, err := tk.SealKey(ctx, c.label)
			if !errors.Is(err, ErrWeakKey) {
				t.Fatalf("SealKey: %v, want ErrWeakKey", err)
			}
			if !slices.ContainsFunc(c.names, func(n string) bool { return strings.Contains(err.Error(), n) }) {
				t.Fatalf("error %q names none of %v", err, c.names)
			}
		})
	}

	t.Run("imported", func(t *testing.T) {
		// A key imported in clear has existed outside the token: the token
		// reports CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE false,
		// whatever the template asked for.
		tmpl := withAttr(good("imported"), pkcs11.CKA_VALUE, make([]byte, 32))
		tmpl = slicesDelete(tmpl, pkcs11.CKA_VALUE_LEN)
		err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
			_, err := tk.mod.ctx.CreateObject(sh, tmpl)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tk.SealKey(ctx, "imported")
		if !errors.Is(err, ErrWeakKey) || !strings.Contains(err.Error(), "CKA_ALWAYS_SENSITIVE") || !strings.Contains(err.Error(), "CKA_NEVER_EXTRACTABLE") {
			t.Fatalf("SealKey on an imported key: %v, want ErrWeakKey naming CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE", err)
		}
	})

	t.Run("imported, claiming to be local", func(t *testing.T) {
		// NSS softoken takes CKA_LOCAL from the template of an imported
		// key: CKA_LOCAL proves nothing there, so it is not what the
		// package relies on. (SoftHSM2 refuses to let it be set.)
		tmpl := withAttr(withAttr(good("claims-local"), pkcs11.CKA_VALUE, make([]byte, 32)), pkcs11.CKA_LOCAL, true)
		tmpl = slicesDelete(tmpl, pkcs11.CKA_VALUE_LEN)
		var h pkcs11.ObjectHandle
		err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
			var err error
			h, err = tk.mod.ctx.CreateObject(sh, tmpl)
			return err
		})
		if ckrIs(err, pkcs11.CKR_ATTRIBUTE_READ_ONLY) {
			t.Skipf("%s does not let a template set CKA_LOCAL", im.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if v := rawAttrs(t, tk, h, pkcs11.CKA_LOCAL)[pkcs11.CKA_LOCAL]; len(v) != 1 || v[0] == 0 {
			t.Skipf("%s ignored CKA_LOCAL in the template", im.name)
		}
		if _, err = tk.SealKey(ctx, "claims-local"); !errors.Is(err, ErrWeakKey) || !strings.Contains(err.Error(), "CKA_ALWAYS_SENSITIVE") {
			t.Fatalf("SealKey on an imported key with CKA_LOCAL true: %v, want ErrWeakKey naming CKA_ALWAYS_SENSITIVE", err)
		}
	})

	t.Run("duplicate label", func(t *testing.T) {
		// Two keys, one label, two IDs (NSS softoken treats the ID as the
		// key's identity: a second key with the first one's ID replaces it).
		generate(t, tk, pkcs11.CKM_AES_KEY_GEN, aesTemplate("twice", []byte("twice-1")))
		generate(t, tk, pkcs11.CKM_AES_KEY_GEN, aesTemplate("twice", []byte("twice-2")))
		if _, err := tk.SealKey(ctx, "twice"); !errors.Is(err, ErrKeyAmbiguous) {
			t.Fatalf("SealKey with two keys of one label: %v, want ErrKeyAmbiguous", err)
		}
	})
}

func slicesDelete(tmpl []*pkcs11.Attribute, typ uint) []*pkcs11.Attribute {
	var out []*pkcs11.Attribute
	for _, a := range tmpl {
		if a.Type != typ {
			out = append(out, a)
		}
	}
	return out
}

func setAttr(t *testing.T, tk *Token, h pkcs11.ObjectHandle, typ uint, v any) {
	t.Helper()
	err := tk.pool.with(context.Background(), func(sh pkcs11.SessionHandle) error {
		return tk.mod.ctx.SetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, v)})
	})
	if err != nil {
		t.Fatalf("SetAttributeValue: %v", err)
	}
}

// rawAttrs reads attributes straight from the token with one
// C_GetAttributeValue call, independent of readKeyAttributes.
func rawAttrs(t *testing.T, tk *Token, h pkcs11.ObjectHandle, types ...uint) map[uint][]byte {
	t.Helper()
	req := make([]*pkcs11.Attribute, len(types))
	for i, typ := range types {
		req[i] = pkcs11.NewAttribute(typ, nil)
	}
	var got []*pkcs11.Attribute
	err := tk.pool.with(context.Background(), func(sh pkcs11.SessionHandle) error {
		var err error
		got, err = tk.mod.ctx.GetAttributeValue(sh, h, req)
		return err
	})
	if err != nil {
		t.Fatalf("C_GetAttributeValue: %v", err)
	}
	m := map[uint][]byte{}
	for _, a := range got {
		m[a.Type] = a.Value
	}
	return m
}

// wantBools checks boolean attributes read with C_GetAttributeValue.
func wantBools(t *testing.T, what string, got map[uint][]byte, want map[uint]bool, names map[uint]string) {
	t.Helper()
	for typ, w := range want {
		v := got[typ]
		if len(v) != 1 || (v[0] != 0) != w {
			t.Errorf("%s: %s = %v, want %v", what, names[typ], v, w)
		}
	}
}

var attrNames = map[uint]string{
	pkcs11.CKA_TOKEN: "CKA_TOKEN", pkcs11.CKA_PRIVATE: "CKA_PRIVATE", pkcs11.CKA_SENSITIVE: "CKA_SENSITIVE",
	pkcs11.CKA_EXTRACTABLE: "CKA_EXTRACTABLE", pkcs11.CKA_ALWAYS_SENSITIVE: "CKA_ALWAYS_SENSITIVE",
	pkcs11.CKA_NEVER_EXTRACTABLE: "CKA_NEVER_EXTRACTABLE", pkcs11.CKA_LOCAL: "CKA_LOCAL", pkcs11.CKA_MODIFIABLE: "CKA_MODIFIABLE",
	pkcs11.CKA_ENCRYPT: "CKA_ENCRYPT", pkcs11.CKA_DECRYPT: "CKA_DECRYPT", pkcs11.CKA_WRAP: "CKA_WRAP",
	pkcs11.CKA_UNWRAP: "CKA_UNWRAP", pkcs11.CKA_SIGN: "CKA_SIGN", pkcs11.CKA_VERIFY: "CKA_VERIFY",
	pkcs11.CKA_SIGN_RECOVER: "CKA_SIGN_RECOVER", pkcs11.CKA_DERIVE: "CKA_DERIVE", pkcs11.CKA_VERIFY_RECOVER: "CKA_VERIFY_RECOVER",
}

func keys(m map[uint]bool) []uint {
	var out []uint
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestKeys_AttributesReadBackFromToken(t *testing.T) {
	forEachImpl(t, testKeysAttributesReadBackFromToken)
}

func testKeysAttributesReadBackFromToken(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t), withScheme(SchemeCBCHMAC))
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	protectedKey := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_NEVER_EXTRACTABLE: true, pkcs11.CKA_MODIFIABLE: false,
	}
	with := func(extra map[uint]bool) map[uint]bool {
		m := map[uint]bool{}
		for k, v := range protectedKey {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	checks := []struct {
		what string
		h    pkcs11.ObjectHandle
		want map[uint]bool
	}{
		{"AES seal key", k.aes, with(map[uint]bool{pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_WRAP: false,
			pkcs11.CKA_UNWRAP: false, pkcs11.CKA_SIGN: false, pkcs11.CKA_VERIFY: false, pkcs11.CKA_DERIVE: false})},
		{"HMAC key", k.mac, with(map[uint]bool{pkcs11.CKA_SIGN: true, pkcs11.CKA_VERIFY: true, pkcs11.CKA_ENCRYPT: false,
			pkcs11.CKA_DECRYPT: false, pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false})},
		{"identity private key", idn.priv, with(map[uint]bool{pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false,
			pkcs11.CKA_UNWRAP: false, pkcs11.CKA_SIGN_RECOVER: false, pkcs11.CKA_DERIVE: false})},
		// The public half's usage is the token's default: it is only read.
		{"identity public key", idn.pubH, map[uint]bool{pkcs11.CKA_TOKEN: true}},
	}
	for _, c := range checks {
		wantBools(t, c.what, rawAttrs(t, tk, c.h, keys(c.want)...), c.want, attrNames)
	}
	for what, c := range map[string]struct {
		h  pkcs11.ObjectHandle
		id []byte
	}{"AES seal key": {k.aes, k.id}, "HMAC key": {k.mac, append(bytes.Clone(k.id), "hmac"...)}} {
		got := rawAttrs(t, tk, c.h, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_ID, pkcs11.CKA_LABEL)
		if n, _ := ulongFromBytes(got[pkcs11.CKA_VALUE_LEN]); n != 32 {
			t.Errorf("%s: CKA_VALUE_LEN = %d, want 32", what, n)
		}
		if string(got[pkcs11.CKA_LABEL]) != "seal" || !bytes.Equal(got[pkcs11.CKA_ID], c.id) {
			t.Errorf("%s: label %q id %x, want \"seal\" and %x", what, got[pkcs11.CKA_LABEL], got[pkcs11.CKA_ID], c.id)
		}
	}
	ec := rawAttrs(t, tk, idn.priv, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_ID)
	if string(ec[pkcs11.CKA_EC_PARAMS]) != string(p256Params) || string(ec[pkcs11.CKA_ID]) != string(idn.id) {
		t.Errorf("identity: EC params %x, id %x", ec[pkcs11.CKA_EC_PARAMS], ec[pkcs11.CKA_ID])
	}
	// The secret values cannot be read.
	for what, h := range map[string]pkcs11.ObjectHandle{"AES seal key": k.aes, "HMAC key": k.mac, "identity private key": idn.priv} {
		err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
			_, err := tk.mod.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			return err
		})
		if !ckrIs(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("%s: reading CKA_VALUE gave %v, want CKR_ATTRIBUTE_SENSITIVE", what, err)
		}
	}
	// Nor can they be made readable or wrapped out.
	err = tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		return tk.mod.ctx.SetAttributeValue(sh, k.aes, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)})
	})
	if err == nil {
		t.Error("CKA_EXTRACTABLE of the seal key could be set to true")
	}
	// The package's own reading agrees.
	a, err := k.Attributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Sensitive || a.Extractable || !a.NeverExtractable || !a.AlwaysSensitive || a.Wrap || a.Sign || a.ValueLen != 32 || a.KeyType != pkcs11.CKK_AES {
		t.Errorf("SealKey.Attributes = %+v", a)
	}
	ia, err := idn.Attributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ia.Sensitive || ia.Extractable || !ia.Sign || ia.Decrypt || ia.Unwrap || ia.SignRecover || ia.KeyType != pkcs11.CKK_EC {
		t.Errorf("Identity.Attributes = %+v", ia)
	}
}

// TestKeys_PKCS11ToolSeesHardenedKeys inspects the token with OpenSC's
// pkcs11-tool, an implementation independent of ours.
func TestKeys_PKCS11ToolSeesHardenedKeys(t *testing.T) {
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		t.Fatal("pkcs11-tool not found; install opensc (make deps)")
	}
	ctx := context.Background()
	tok := softHSM2.newToken(t)
	tk := openToken(t, tok, withScheme(SchemeCBCHMAC))
	if _, err := tk.CreateSealKey(ctx, "seal"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.CreateIdentity(ctx, "identity"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pkcs11-tool", "--module", tok.cfg.ModulePath, "--token-label", tok.Label, "--login", "--pin", tok.PIN, "--list-objects")
	cmd.Env = append(os.Environ(), tok.env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	objs := parseToolObjects(string(out))
	const hardened = "sensitive, always sensitive, never extractable, local"
	// usage lists what pkcs11-tool must print; extra says what it may
	// also print. OpenSC 0.23 shows only "verify" for a secret key that
	// may sign and verify, so "sign" is allowed but not required there
	// (TestKeys_AttributesReadBackFromToken reads CKA_SIGN directly).
	type want struct {
		usage  []string
		extra  []string
		access string
	}
	wants := map[string]want{
		"Secret Key Object; AES length 32/seal":            {usage: []string{"encrypt", "decrypt"}, access: hardened},
		"Secret Key Object; Generic secret length 32/seal": {usage: []string{"verify"}, extra: []string{"sign"}, access: hardened},
		"Private Key Object; EC/identity":                  {usage: []string{"sign"}, access: hardened},
		// The public half's usage is SoftHSM2's default (it is only read).
		"Public Key Object; EC  EC_POINT 256 bits/identity": {usage: []string{"verify"}, extra: []string{"encrypt", "wrap", "derive"}, access: "local"},
	}
	for name, w := range wants {
		o, ok := objs[name]
		if !ok {
			t.Errorf("pkcs11-tool does not list %q; output:\n%s", name, out)
			continue
		}
		got := strings.Split(o["Usage"], ", ")
		for _, u := range w.usage {
			if !slices.Contains(got, u) {
				t.Errorf("%s: Usage %q lacks %q", name, o["Usage"], u)
			}
		}
		for _, u := range got {
			if !slices.Contains(w.usage, u) && !slices.Contains(w.extra, u) {
				t.Errorf("%s: Usage %q includes %q", name, o["Usage"], u)
			}
		}
		if o["Access"] != w.access {
			t.Errorf("%s: Access %q, want %q", name, o["Access"], w.access)
		}
	}
	if len(objs) != len(wants) {
		t.Errorf("pkcs11-tool lists %d objects, want %d:\n%s", len(objs), len(wants), out)
	}
}

// parseToolObjects maps "<object header>/<label>" to the object's fields.
func parseToolObjects(out string) map[string]map[string]string {
	objs := map[string]map[string]string{}
	var header string
	var fields map[string]string
	flush := func() {
		if fields != nil {
			objs[header+"/"+fields["label"]] = fields
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			flush()
			header, fields = strings.TrimSpace(line), map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && fields != nil {
			fields[k] = strings.TrimSpace(v)
		}
	}
	flush()
	return objs
}

func TestSealKey_DestroyRemovesItFromTheToken(t *testing.T) {
	forEachImpl(t, testSealKeyDestroyRemovesItFromTheToken)
}

func testSealKeyDestroyRemovesItFromTheToken(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t), withScheme(SchemeCBCHMAC))
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := tk.SealKey(ctx, "seal"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("SealKey after Destroy: %v, want ErrKeyNotFound", err)
	}
	if _, err := k.Seal(ctx, testHeader, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Destroy: %v, want ErrClosed", err)
	}
	// No HMAC key is left behind either.
	err = tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := tk.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "seal")})
		if err == nil && len(hs) != 0 {
			t.Errorf("%d objects labelled seal remain", len(hs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// CKA_LOCAL is reported, not required: NSS softoken says false for keys it
// generated itself, and those keys must load (they did not before).
func TestKeys_LocalIsReportedNotRequired(t *testing.T) {
	forEachImpl(t, testKeysLocalIsReportedNotRequired)
}

func testKeysLocalIsReportedNotRequired(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatalf("CreateSealKey: %v", err)
	}
	idn, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	if _, err := tk.SealKey(ctx, "seal"); err != nil {
		t.Fatalf("SealKey: %v", err)
	}
	if _, err := tk.Identity(ctx, "identity"); err != nil {
		t.Fatalf("Identity: %v", err)
	}
	// What each token says, pinned down: the reason for the rule.
	wantLocal := map[string]bool{softHSM2.name: true, nssSoftoken.name: false}[im.name]
	ka, err := k.Attributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ia, err := idn.Attributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for what, a := range map[string]KeyAttributes{"seal key": ka, "identity key": ia} {
		if a.Local != wantLocal || slices.Contains(a.Missing, "CKA_LOCAL") {
			t.Errorf("%s on %s: Local = %v (missing %v), want %v", what, im.name, a.Local, a.Missing, wantLocal)
		}
		if !a.AlwaysSensitive || !a.NeverExtractable {
			t.Errorf("%s on %s: ALWAYS_SENSITIVE %v, NEVER_EXTRACTABLE %v; both are required", what, im.name, a.AlwaysSensitive, a.NeverExtractable)
		}
	}
}

// The CBC+HMAC fallback's two keys get two CKA_IDs. They shared one, and
// NSS softoken treats CKA_ID as a key's identity: generating the HMAC key
// replaced the AES key (one object left, same handle), so nothing sealed
// under the fallback could be opened again.
func TestCreateSealKey_FallbackKeysAreTwoObjects(t *testing.T) {
	forEachImpl(t, testCreateSealKeyFallbackKeysAreTwoObjects)
}

func testCreateSealKeyFallbackKeysAreTwoObjects(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t), withScheme(SchemeCBCHMAC))
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatalf("CreateSealKey: %v", err)
	}
	blob, err := k.Seal(ctx, testHeader, []byte("fallback secret"))
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		keyType uint
		id      string
	}
	var got []object
	err = tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := tk.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "seal"),
		})
		for _, h := range hs {
			a := rawAttrs(t, tk, h, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_ID)
			kt, _ := ulongFromBytes(a[pkcs11.CKA_KEY_TYPE])
			got = append(got, object{kt, string(a[pkcs11.CKA_ID])})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b object) int { return int(a.keyType) - int(b.keyType) })
	want := []object{{pkcs11.CKK_GENERIC_SECRET, string(k.id) + "hmac"}, {pkcs11.CKK_AES, string(k.id)}}
	if !slices.Equal(got, want) {
		t.Fatalf("secret keys labelled seal on %s: %x, want an AES key with the seal key ID and a generic secret with that ID + \"hmac\"", im.name, got)
	}
	// A fresh load finds both, and opens what was sealed.
	again, err := tk.SealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if again.aes != k.aes || again.mac != k.mac {
		t.Fatalf("SealKey found handles %d/%d, created %d/%d", again.aes, again.mac, k.aes, k.mac)
	}
	if pt, err := again.Open(ctx, blob, testHeader); err != nil || string(pt) != "fallback secret" {
		t.Fatalf("Open: %v", err)
	}
}

// Fallback seal keys made by versions that gave both keys one CKA_ID (with
// the same label) stay usable, so their stores stay readable: blobs name the
// AES key's ID, which is unchanged, and the HMAC key is found by label, ID
// and class and type. That layout can only exist on a token that keeps two
// keys with one ID, such as SoftHSM2.
func TestSealKey_FindsHMACKeyOfEarlierLayout(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t), withScheme(SchemeCBCHMAC))
	id := []byte("0123456789abcdef")
	aes := generate(t, tk, pkcs11.CKM_AES_KEY_GEN, secretTemplate("old-seal", id, true, false))
	mac := generate(t, tk, pkcs11.CKM_GENERIC_SECRET_KEY_GEN, secretTemplate("old-seal", id, false, true))
	k, err := tk.SealKey(ctx, "old-seal")
	if err != nil {
		t.Fatalf("SealKey on the earlier layout: %v", err)
	}
	if k.aes != aes || k.mac != mac || k.ID() != "30313233343536373839616263646566" {
		t.Fatalf("loaded %d/%d id %s, want %d/%d", k.aes, k.mac, k.ID(), aes, mac)
	}
	// A store sealed under it opens again through a fresh load, as after
	// an upgrade.
	dir := filepath.Join(t.TempDir(), "store")
	st := openStore(t, dir, k, testParty)
	mustPut(t, st, "keyshare", "k", 1, []byte("sealed before the upgrade"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	k2, err := tk.SealKey(ctx, "old-seal")
	if err != nil {
		t.Fatal(err)
	}
	st2 := openStore(t, dir, k2, testParty)
	if got, _, err := st2.Get(ctx, "keyshare", "k"); err != nil || string(got) != "sealed before the upgrade" {
		t.Fatalf("Get: %q, %v", got, err)
	}
	// The AES key itself is never mistaken for its HMAC key: with the
	// HMAC key gone, the fallback has none.
	if err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error { return tk.destroyObjects(sh, mac) }); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.SealKey(ctx, "old-seal"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("SealKey without its HMAC key: %v, want ErrKeyNotFound", err)
	}
}

// tpm2-pkcs11 makes CKK_SHA256_HMAC keys where SoftHSM2 and NSS softoken
// make CKK_GENERIC_SECRET ones; both serve CKM_SHA256_HMAC and both are
// accepted as the HMAC key. No token here makes the first kind with
// CKM_GENERIC_SECRET_KEY_GEN (SoftHSM2 refuses the template, NSS makes a
// generic secret), so the rule is checked on the attributes.
func TestMACKeyRequirements_AcceptBothHMACKeyTypes(t *testing.T) {
	good := KeyAttributes{Class: pkcs11.CKO_SECRET_KEY, ValueLen: 32, Token: true, Private: true, Sensitive: true,
		AlwaysSensitive: true, NeverExtractable: true, Sign: true, Verify: true}
	for kt, ok := range map[uint]bool{pkcs11.CKK_GENERIC_SECRET: true, pkcs11.CKK_SHA256_HMAC: true, pkcs11.CKK_AES: false, pkcs11.CKK_SHA_1_HMAC: false} {
		a := good
		a.KeyType = kt
		err := check(a, "HMAC key", protected, macKeyReqs)
		if ok != (err == nil) {
			t.Errorf("key type %#x: %v", kt, err)
		}
		if err != nil && (!errors.Is(err, ErrWeakKey) || !strings.Contains(err.Error(), "CKA_KEY_TYPE=") || !strings.Contains(err.Error(), "CKK_GENERIC_SECRET or CKK_SHA256_HMAC")) {
			t.Errorf("key type %#x: %v, want ErrWeakKey naming the accepted types", kt, err)
		}
	}
}
