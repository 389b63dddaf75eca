package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyquorum/keyquorum/internal/nsstoken"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

func TestOpen_SelectsTokenByLabelSerialOrURI(t *testing.T) {
	forEachImpl(t, testOpenSelectsTokenByLabelSerialOrURI)
}

func testOpenSelectsTokenByLabelSerialOrURI(t *testing.T, im impl) {
	toks := im.newTokens(t, 2)
	tok := toks[1]
	pinFile := tok.PINFile(t)
	t.Setenv("KQ_TEST_PIN", tok.PIN)
	mod, args := tok.cfg.ModulePath, tok.cfg.ModuleInitArgs
	// NSS softoken gives every token the serial 0000000000000000, so a
	// serial alone selects nothing there (see TestOpen_RefusesAmbiguousLabel).
	uniqueSerials := im.name != nssSoftoken.name
	cases := []struct {
		name       string
		cfg        Config
		needSerial bool
	}{
		{"label", Config{ModulePath: mod, TokenLabel: tok.Label, PIN: tok.PIN}, false},
		{"serial", Config{ModulePath: mod, TokenSerial: tok.Serial, PIN: tok.PIN}, true},
		{"label and serial", Config{ModulePath: mod, TokenLabel: tok.Label, TokenSerial: tok.Serial, PIN: tok.PIN}, false},
		{"pin file", Config{ModulePath: mod, TokenLabel: tok.Label, PINSource: "file:" + pinFile}, false},
		{"pin env", Config{ModulePath: mod, TokenLabel: tok.Label, PINSource: "env:KQ_TEST_PIN"}, false},
		{"uri", Config{URI: fmt.Sprintf("pkcs11:token=%s;serial=%s?module-path=%s&pin-source=file:%s", tok.Label, tok.Serial, mod, pinFile)}, false},
		{"uri with percent-encoding and file:///", Config{URI: fmt.Sprintf("pkcs11:token=%s?module-path=%s&pin-source=file://%s",
			strings.ReplaceAll(tok.Label, "-", "%2D"), mod, pinFile)}, false},
		{"uri plus fields", Config{URI: "pkcs11:serial=" + tok.Serial, ModulePath: mod, PINSource: "env:KQ_TEST_PIN"}, true},
	}
	for _, c := range cases {
		if c.needSerial && !uniqueSerials {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			c.cfg.ModuleInitArgs = args // RFC 7512 has no attribute for them
			tk, err := Open(context.Background(), c.cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer tk.Close()
			if tk.Label() != tok.Label || tk.Serial() != tok.Serial {
				t.Fatalf("opened %s, want %s", tk, tok)
			}
		})
	}
}

func TestOpen_DistinctErrors(t *testing.T) {
	forEachImpl(t, testOpenDistinctErrors)
}

func testOpenDistinctErrors(t *testing.T, im impl) {
	toks := im.newTokens(t, 2)
	tok, other := toks[0], toks[1]
	mod, args := tok.cfg.ModulePath, tok.cfg.ModuleInitArgs
	notALibrary := filepath.Join(t.TempDir(), "not-a-library.so")
	if err := os.WriteFile(notALibrary, []byte("plain text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"wrong PIN", Config{ModulePath: mod, TokenLabel: tok.Label, PIN: tok.PIN + "x"}, ErrWrongPIN},
		{"missing token", Config{ModulePath: mod, TokenLabel: "no-such-token", PIN: tok.PIN}, ErrTokenNotFound},
		{"missing serial", Config{ModulePath: mod, TokenSerial: "no-such-serial", PIN: tok.PIN}, ErrTokenNotFound},
		{"label of one token, serial of none", Config{ModulePath: mod, TokenLabel: tok.Label, TokenSerial: "no-such-serial", PIN: tok.PIN}, ErrTokenNotFound},
		{"missing module", Config{ModulePath: filepath.Join(t.TempDir(), "libnothere.so"), TokenLabel: tok.Label, PIN: tok.PIN}, ErrModuleNotFound},
		{"module is not a library", Config{ModulePath: notALibrary, TokenLabel: tok.Label, PIN: tok.PIN}, ErrModuleNotFound},
		{"no module", Config{TokenLabel: tok.Label, PIN: tok.PIN}, ErrInvalidConfig},
		{"no token", Config{ModulePath: mod, PIN: tok.PIN}, ErrInvalidConfig},
		{"no PIN", Config{ModulePath: mod, TokenLabel: tok.Label}, ErrInvalidConfig},
		{"two PINs", Config{ModulePath: mod, TokenLabel: tok.Label, PIN: tok.PIN, PINSource: "env:X"}, ErrInvalidConfig},
		{"unset PIN env", Config{ModulePath: mod, TokenLabel: tok.Label, PINSource: "env:KQ_TEST_UNSET_VARIABLE"}, ErrInvalidConfig},
		{"missing PIN file", Config{ModulePath: mod, TokenLabel: tok.Label, PINSource: "file:" + filepath.Join(t.TempDir(), "nope")}, ErrInvalidConfig},
		{"bad PIN source", Config{ModulePath: mod, TokenLabel: tok.Label, PINSource: "exec:echo"}, ErrInvalidConfig},
		{"URI disagrees with field", Config{URI: "pkcs11:token=other", ModulePath: mod, TokenLabel: tok.Label, PIN: tok.PIN}, ErrInvalidConfig},
		{"URI with pin-value", Config{URI: "pkcs11:token=x?pin-value=1234&module-path=" + mod}, ErrInvalidConfig},
		{"URI with unknown attribute", Config{URI: "pkcs11:token=x;slot-id=3?module-path=" + mod, PIN: "1234"}, ErrInvalidConfig},
		{"bad session count", Config{ModulePath: mod, TokenLabel: tok.Label, PIN: tok.PIN, Sessions: -1}, ErrInvalidConfig},
	}
	if tok.Serial != other.Serial {
		cases = append(cases, struct {
			name string
			cfg  Config
			want error
		}{"label and serial of different tokens", Config{ModulePath: mod, TokenLabel: tok.Label, TokenSerial: other.Serial, PIN: tok.PIN}, ErrTokenNotFound})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.ModulePath == mod {
				c.cfg.ModuleInitArgs = args
			}
			tk, err := Open(ctx, c.cfg)
			if err == nil {
				tk.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), tok.PIN) {
				t.Fatalf("error reveals the PIN: %v", err)
			}
		})
	}
}

func TestOpen_RefusesAmbiguousLabel(t *testing.T) {
	t.Run(softHSM2.name, func(t *testing.T) {
		d := softhsm.NewDir(t)
		a := d.NewToken(t)
		// softhsm2-util allows a second token with the same label.
		if _, err := d.CreateTokenLabelled(a.Label); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), Config{ModulePath: d.Module, TokenLabel: a.Label, PIN: a.PIN})
		if !errors.Is(err, ErrTokenAmbiguous) {
			t.Fatalf("Open: %v, want ErrTokenAmbiguous", err)
		}
		// The serial still picks one.
		tk, err := Open(context.Background(), Config{ModulePath: d.Module, TokenLabel: a.Label, TokenSerial: a.Serial, PIN: a.PIN})
		if err != nil {
			t.Fatalf("Open by label and serial: %v", err)
		}
		tk.Close()
	})
	t.Run(nssSoftoken.name, func(t *testing.T) {
		// Two databases with one label: NSS softoken's tokens all have the
		// serial 0000000000000000, so nothing tells them apart and Open
		// refuses rather than guess. Give each database its own label.
		set := nsstoken.NewSetOf(t, 1)
		a := set.Tokens[0]
		if _, err := set.CreateTokenLabelled(a.Label); err != nil {
			t.Fatal(err)
		}
		for _, serial := range []string{"", "0000000000000000"} {
			_, err := Open(context.Background(), Config{ModulePath: set.Module, ModuleInitArgs: set.InitArgs(), TokenLabel: a.Label, TokenSerial: serial, PIN: a.PIN})
			if !errors.Is(err, ErrTokenAmbiguous) {
				t.Fatalf("Open with serial %q: %v, want ErrTokenAmbiguous", serial, err)
			}
		}
	})
}

func TestOpen_PINFileMustBePrivate(t *testing.T) {
	tok := softHSM2.newToken(t)
	p := tok.PINFile(t)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tok.cfg
	cfg.PIN, cfg.PINSource = "", "file:"+p
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "other users") {
		t.Fatalf("Open with a world-readable PIN file: %v, want ErrInvalidConfig about other users", err)
	}
}

func TestOpen_WrongPINLeavesNothingOpen(t *testing.T) {
	forEachImpl(t, testOpenWrongPINLeavesNothingOpen)
}

func testOpenWrongPINLeavesNothingOpen(t *testing.T, im impl) {
	tok := im.newToken(t)
	wrong := tok.cfg
	wrong.PIN = "wrong-pin"
	for range 3 {
		if _, err := Open(context.Background(), wrong); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("Open: %v, want ErrWrongPIN", err)
		}
	}
	assertModuleUnused(t, tok.cfg.ModulePath)
	// The right PIN still works afterwards (neither SoftHSM2 nor NSS
	// softoken locks a PIN).
	openToken(t, tok)
}

// SoftHSM2 never locks a user PIN, so a locked token cannot be produced
// here; the mapping of the token's answers to sentinels is checked directly.
func TestLoginError_MapsPINLocked(t *testing.T) {
	tk := openToken(t, softHSM2.newToken(t))
	err := tk.loginError(pkcs11.Error(pkcs11.CKR_PIN_LOCKED))
	if !errors.Is(err, ErrPINLocked) || errors.Is(err, ErrWrongPIN) {
		t.Fatalf("loginError(CKR_PIN_LOCKED) = %v, want ErrPINLocked only", err)
	}
	err = tk.loginError(pkcs11.Error(pkcs11.CKR_PIN_INCORRECT))
	if !errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrPINLocked) {
		t.Fatalf("loginError(CKR_PIN_INCORRECT) = %v, want ErrWrongPIN only", err)
	}
}

func TestOpen_SeveralTokensShareOneModule(t *testing.T) {
	forEachImpl(t, testOpenSeveralTokensShareOneModule)
}

func testOpenSeveralTokensShareOneModule(t *testing.T, im impl) {
	toks := im.newTokens(t, 5)
	module := toks[0].cfg.ModulePath
	ctx := context.Background()
	var opened []*Token
	for _, tok := range toks {
		tk, err := Open(ctx, testConfig(tok))
		if err != nil {
			t.Fatalf("Open %s: %v", tok, err)
		}
		t.Cleanup(func() { tk.Close() }) // if the test fails before its own Close
		opened = append(opened, tk)
	}
	if n := moduleUsers(t, module); n != 5 {
		t.Fatalf("module has %d users, want 5", n)
	}
	// Each token works while the others are open, and keeps working as the
	// others close.
	for i, tk := range opened {
		k, err := tk.CreateSealKey(ctx, "seal")
		if err != nil {
			t.Fatalf("token %d: CreateSealKey: %v", i, err)
		}
		hdr := Header{Kind: "keyshare", KeyID: "k", PartyID: fmt.Sprintf("p%d", i), Version: 1}
		blob, err := k.Seal(ctx, hdr, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if err := opened[i-1].Close(); err != nil {
				t.Fatalf("Close token %d: %v", i-1, err)
			}
		}
		if _, err := k.Open(ctx, blob, hdr); err != nil {
			t.Fatalf("token %d after closing token %d: %v", i, i-1, err)
		}
	}
	if err := opened[4].Close(); err != nil {
		t.Fatal(err)
	}
	assertModuleUnused(t, module)
}

func TestOpen_SameTokenTwiceSharesLogin(t *testing.T) {
	forEachImpl(t, testOpenSameTokenTwiceSharesLogin)
}

func testOpenSameTokenTwiceSharesLogin(t *testing.T, im impl) {
	tok := im.newToken(t)
	ctx := context.Background()
	a := openToken(t, tok)
	// A second Open with a wrong PIN must fail even though the token is
	// already logged in for this process.
	wrong := tok.cfg
	wrong.PIN = "not-the-pin"
	if _, err := Open(ctx, wrong); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("second Open with wrong PIN: %v, want ErrWrongPIN", err)
	}
	b, err := Open(ctx, testConfig(tok))
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	ka, err := a.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	// Closing b must not log a out.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SealKey(ctx, "seal"); err != nil {
		t.Fatalf("SealKey after closing the second handle: %v", err)
	}
	if _, err := ka.Seal(ctx, Header{Kind: "k", KeyID: "i", PartyID: "p", Version: 0}, nil); err != nil {
		t.Fatalf("Seal after closing the second handle: %v", err)
	}
}

func TestToken_UseAfterClose(t *testing.T) {
	forEachImpl(t, testTokenUseAfterClose)
}

func testTokenUseAfterClose(t *testing.T, im impl) {
	tok := im.newToken(t)
	ctx := context.Background()
	tk, err := Open(ctx, testConfig(tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() }) // if the test fails before its own Close
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tk.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := k.Seal(ctx, Header{Kind: "k", KeyID: "i", PartyID: "p"}, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Close: %v, want ErrClosed", err)
	}
	if _, err := tk.SealKey(ctx, "seal"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SealKey after Close: %v, want ErrClosed", err)
	}
}

func TestToken_CloseWaitsForOperations(t *testing.T) {
	forEachImpl(t, testTokenCloseWaitsForOperations)
}

func testTokenCloseWaitsForOperations(t *testing.T, im impl) {
	tok := im.newToken(t)
	ctx := context.Background()
	cfg := tok.cfg
	cfg.Sessions = 2
	tk, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() }) // if the test fails before its own Close
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := k.Seal(ctx, Header{Kind: "k", KeyID: "i", PartyID: "p", Version: uint64(g)}, []byte("x"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Seal: %v", err)
					return
				}
			}
		})
	}
	if err := tk.Close(); err != nil {
		t.Fatalf("Close under load: %v", err)
	}
	wg.Wait()
	assertModuleUnused(t, tok.cfg.ModulePath)
}

func TestConfig_StringRedactsPIN(t *testing.T) {
	c := Config{ModulePath: "/m.so", TokenLabel: "t", PIN: "s3cr3t-pin", URI: "pkcs11:token=t?pin-value=s3cr3t-pin"}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(&c)} {
		if strings.Contains(s, "s3cr3t-pin") {
			t.Fatalf("formatted Config reveals the PIN: %s", s)
		}
	}
}

func TestParseURI(t *testing.T) {
	u, err := ParseURI("PKCS11:token=My%20Token;serial=abc;object=seal;id=%01%02;type=secret-key;manufacturer=SoftHSM%20project;model=SoftHSM%20v2?module-path=/usr/lib/x.so&pin-source=file:/etc/pin")
	if err != nil {
		t.Fatal(err)
	}
	want := URI{Token: "My Token", Serial: "abc", Object: "seal", ID: []byte{1, 2}, Type: "secret-key", Manufacturer: "SoftHSM project", Model: "SoftHSM v2", ModulePath: "/usr/lib/x.so", PINSource: "file:/etc/pin"}
	if fmt.Sprint(*u) != fmt.Sprint(want) {
		t.Fatalf("ParseURI = %+v, want %+v", *u, want)
	}
	for _, bad := range []string{
		"", "pkcs12:token=x", "pkcs11:token=a;token=b", "pkcs11:token", "pkcs11:=x", "pkcs11:token=%zz",
		"pkcs11:slot-id=1", "pkcs11:token=x?module-name=softhsm2", "pkcs11:token=x?pin-value=1234",
		"pkcs11:type=weird", "pkcs11:token=x#frag",
	} {
		if _, err := ParseURI(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseURI(%q) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	_, err = ParseURI("pkcs11:token=x;1234-secret")
	if err == nil || strings.Contains(err.Error(), "1234-secret") {
		t.Fatalf("malformed attribute error echoes its value: %v", err)
	}
}

func TestOpen_URIObject(t *testing.T) {
	tok := softHSM2.newToken(t)
	tk := openToken(t, tok, func(c *Config) { c.TokenLabel = ""; c.URI = "pkcs11:token=" + tok.Label + ";object=site-seal" })
	if tk.URIObject() != "site-seal" {
		t.Fatalf("URIObject = %q", tk.URIObject())
	}
}

// moduleUsers returns the registry's user count for the module at path.
func moduleUsers(t testing.TB, path string) int {
	t.Helper()
	key, err := canonicalModulePath(path)
	if err != nil {
		t.Fatal(err)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m := registry.modules[key]; m != nil {
		return m.users
	}
	return 0
}

func assertModuleUnused(t testing.TB, path string) {
	t.Helper()
	if n := moduleUsers(t, path); n != 0 {
		t.Fatalf("module %s still has %d users", path, n)
	}
}

func TestSessionPool_WaitHonoursContext(t *testing.T) {
	tok := softHSM2.newToken(t)
	tk := openToken(t, tok, func(c *Config) { c.Sessions = 1 })
	k, err := tk.CreateSealKey(context.Background(), "seal")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := tk.pool.get(context.Background()) // take the only session
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.Seal(ctx, testHeader, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Seal while every session is busy: %v, want context.DeadlineExceeded", err)
	}
	tk.pool.put(sh)
	if _, err := k.Seal(context.Background(), testHeader, []byte("x")); err != nil {
		t.Fatalf("Seal once the session is back: %v", err)
	}
}

func TestRequireMechanism_IdentityWithoutEC(t *testing.T) {
	tk := openToken(t, softHSM2.newToken(t))
	delete(tk.mechs, pkcs11.CKM_EC_KEY_PAIR_GEN)
	var me *MechanismError
	_, err := tk.CreateIdentity(context.Background(), "identity")
	if !errors.As(err, &me) || me.Mechanism != "CKM_EC_KEY_PAIR_GEN" || !errors.Is(err, ErrMechanismMissing) {
		t.Fatalf("CreateIdentity without CKM_EC_KEY_PAIR_GEN: %v", err)
	}
	if !strings.Contains(err.Error(), tk.Label()) {
		t.Fatalf("error does not name the token: %v", err)
	}
	// A mechanism listed without the needed flag counts as missing too.
	tk.mechs[pkcs11.CKM_ECDSA] = pkcs11.CKF_VERIFY
	if _, err := tk.Identity(context.Background(), "identity"); !errors.As(err, &me) || me.Mechanism != "CKM_ECDSA" {
		t.Fatalf("Identity with CKM_ECDSA lacking CKF_SIGN: %v", err)
	}
}

func TestOpen_RejectsUnknownScheme(t *testing.T) {
	tok := softHSM2.newToken(t)
	cfg := testConfig(tok)
	cfg.Scheme = Scheme(9)
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open with Scheme 9: %v, want ErrInvalidConfig", err)
	}
}

// NSS softoken refuses C_Initialize without arguments; Config.ModuleInitArgs
// passes them, the module keeps the ones it was initialized with while it is
// in use, and takes new ones once every Token of it has closed.
func TestOpen_ModuleInitArgs(t *testing.T) {
	ctx := context.Background()
	a, b := nsstoken.New(t), nsstoken.New(t) // two separate one-database sets
	cfg := func(tok *nsstoken.Token, args string) Config {
		return Config{ModulePath: tok.Module(), ModuleInitArgs: args, TokenLabel: tok.Label, PIN: tok.PIN}
	}
	_, err := Open(ctx, cfg(a, ""))
	if err == nil || !strings.Contains(err.Error(), "ModuleInitArgs") || !ckrIs(err, pkcs11.CKR_ARGUMENTS_BAD) {
		t.Fatalf("Open NSS softoken without arguments: %v, want CKR_ARGUMENTS_BAD and a hint at ModuleInitArgs", err)
	}
	assertModuleUnused(t, a.Module())

	ta, err := Open(ctx, cfg(a, a.InitArgs()))
	if err != nil {
		t.Fatalf("Open with arguments: %v", err)
	}
	// While a's database is open, the module cannot be re-initialized for b.
	if _, err := Open(ctx, cfg(b, b.InitArgs())); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "already initialized") {
		t.Fatalf("Open with other arguments while in use: %v, want ErrInvalidConfig", err)
	}
	// The same arguments share the module.
	ta2, err := Open(ctx, cfg(a, a.InitArgs()))
	if err != nil {
		t.Fatalf("second Open with the same arguments: %v", err)
	}
	if moduleUsers(t, a.Module()) != 2 {
		t.Fatalf("module users = %d, want 2", moduleUsers(t, a.Module()))
	}
	for _, tk := range []*Token{ta2, ta} {
		if err := tk.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Closed: the next Open initializes the module with b's arguments.
	tb := openConfig(t, cfg(b, b.InitArgs()))
	if tb.Label() != b.Label {
		t.Fatalf("opened %s, want %s", tb, b)
	}
	for _, c := range []Config{cfg(a, strings.Repeat("x", 4097)), cfg(a, "configdir='sql:/x'\x00")} {
		if _, err := Open(ctx, c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open with ModuleInitArgs of %d bytes: %v, want ErrInvalidConfig", len(c.ModuleInitArgs), err)
		}
	}
	if s := fmt.Sprint(cfg(a, a.InitArgs())); !strings.Contains(s, a.Dir) || strings.Contains(s, a.PIN) {
		t.Errorf("Config.String: %s: want the arguments shown and the PIN hidden", s)
	}
}
