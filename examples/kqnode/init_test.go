package main

// kqnode init in process, on SoftHSM2 and NSS softoken tokens: what a
// failed init leaves behind, the module initialization arguments NSS
// softoken needs, and the error code of a missing mechanism.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/nsstoken"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// initToken is a token kqnode init is pointed at.
type initToken struct {
	module, initArgs, label, pinFile string
}

func (it initToken) args(home string, extra ...string) []string {
	a := []string{"init", "--home", home, "--module", it.module, "--token", it.label, "--pin-source", "file:" + it.pinFile}
	if it.initArgs != "" {
		a = append(a, "--module-init-args", it.initArgs)
	}
	return append(a, extra...)
}

func (it initToken) config() hsmshare.Config {
	return hsmshare.Config{ModulePath: it.module, ModuleInitArgs: it.initArgs, TokenLabel: it.label, PINSource: "file:" + it.pinFile}
}

var initTokens = []struct {
	name string
	make func(t *testing.T) initToken
}{
	{"SoftHSM2", func(t *testing.T) initToken {
		tok := softhsm.New(t)
		return initToken{module: tok.Dir.Module, label: tok.Label, pinFile: tok.PINFile(t)}
	}},
	{"NSS", func(t *testing.T) initToken {
		tok := nsstoken.New(t)
		return initToken{module: tok.Module(), initArgs: tok.InitArgs(), label: tok.Label, pinFile: tok.PINFile(t)}
	}},
}

// runCLI runs kqnode in this process.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// tokenKeys reports whether the site's seal and identity keys exist.
func tokenKeys(t *testing.T, it initToken) (seal, identity bool) {
	t.Helper()
	ctx := context.Background()
	tok, err := hsmshare.Open(ctx, it.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	_, err = tok.SealKey(ctx, keyquorum.DefaultSealKeyLabel)
	if err != nil && !errors.Is(err, hsmshare.ErrKeyNotFound) {
		t.Fatal(err)
	}
	seal = err == nil
	_, err = tok.Identity(ctx, keyquorum.DefaultIdentityLabel)
	if err != nil && !errors.Is(err, hsmshare.ErrKeyNotFound) {
		t.Fatal(err)
	}
	return seal, err == nil
}

// A failed init used to leave the keys it had generated in the token and a
// store/ in the home. Now it removes what it created, so the token and the
// disk are as before and a second init starts clean.
func TestInit_FailureLeavesNothingBehind(t *testing.T) {
	for _, tc := range initTokens {
		t.Run(tc.name, func(t *testing.T) {
			it := tc.make(t)
			root := t.TempDir()
			home := filepath.Join(root, "home")
			// The fixture is read after the keys and the store are made.
			bad := filepath.Join(root, "bad.json")
			if err := os.WriteFile(bad, []byte("not a pre-parameter set"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(it.args(home, "--preparams-fixtures", bad)...)
			if code != 1 || !strings.Contains(stderr, "not a pre-parameter set") {
				t.Fatalf("init with a bad fixture: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			if _, err := os.Stat(home); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the failed init left %s behind (%v)", home, err)
			}
			if seal, idn := tokenKeys(t, it); seal || idn {
				t.Fatalf("the failed init left keys in the token: seal %v, identity %v", seal, idn)
			}

			// A home that existed keeps what it had; only init's own files go.
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			mine := filepath.Join(home, "operator-notes.txt")
			if err := os.WriteFile(mine, []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, _, stderr := runCLI(it.args(home, "--preparams-fixtures", bad)...); code != 1 {
				t.Fatalf("second failing init: exit %d: %s", code, stderr)
			}
			entries, err := os.ReadDir(home)
			if err != nil || len(entries) != 1 || entries[0].Name() != "operator-notes.txt" {
				t.Fatalf("home after a failed init: %v, %v; want only operator-notes.txt", entries, err)
			}

			// A good init now succeeds, creating both keys.
			fx := filepath.Join(fixtures.Dir(), "preparams", "preparams-00.json")
			code, stdout, stderr = runCLI(it.args(home, "--preparams-fixtures", fx)...)
			if code != 0 {
				t.Fatalf("init after the failures: exit %d\n%s\n%s", code, stdout, stderr)
			}
			var res initResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatal(err)
			}
			if !res.SealKey.Created || !res.IdentityKey.Created || res.PreParamsReady != 1 {
				t.Fatalf("init result %+v: want both keys created and one pre-parameter set", res)
			}
			// Run again: nothing created, same site. A failure now (a bad
			// fixture on a set-up site) removes nothing that was there.
			code, stdout, _ = runCLI(it.args(home)...)
			var again initResult
			if code != 0 || json.Unmarshal([]byte(stdout), &again) != nil || again.SealKey.Created || again.IdentityKey.Created ||
				again.PeerID != res.PeerID || again.SealKey.ID != res.SealKey.ID {
				t.Fatalf("second init: exit %d, %s; want the same keys, none created", code, stdout)
			}
			if code, _, _ := runCLI(it.args(home, "--preparams-fixtures", bad)...); code != 1 {
				t.Fatal("init with a bad fixture on a set-up site succeeded")
			}
			if seal, idn := tokenKeys(t, it); !seal || !idn {
				t.Fatalf("a failed init on a set-up site removed its keys: seal %v, identity %v", seal, idn)
			}
			for _, f := range []string{configFile, storeDirName} {
				if _, err := os.Stat(filepath.Join(home, f)); err != nil {
					t.Fatalf("a failed init on a set-up site removed %s: %v", f, err)
				}
			}
		})
	}
}

// NSS softoken needs its initialization arguments at every start:
// --module-init-args keeps them in config.json, and the JSON reports that
// the token says CKA_LOCAL false for the keys it generated.
func TestInit_ModuleInitArgs(t *testing.T) {
	it := initTokens[1].make(t)
	dir := filepath.Join(t.TempDir(), "home")
	noArgs := it
	noArgs.initArgs = ""
	code, _, stderr := runCLI(noArgs.args(dir)...)
	if code != 1 || !strings.Contains(stderr, "module-init-args") {
		t.Fatalf("init of NSS softoken without --module-init-args: exit %d, stderr %q; want a hint at --module-init-args", code, stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed init left %s behind", dir)
	}
	code, stdout, stderr := runCLI(it.args(dir)...)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res initResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.SealKey.Local || res.IdentityKey.Local || res.SealKey.Scheme != hsmshare.SchemeGCM.String() || !strings.Contains(stderr, "CKA_LOCAL false") {
		t.Fatalf("init on NSS softoken: %+v, stderr %q; want local false for both keys, GCM, and a note", res, stderr)
	}
	cfg, err := home{dir: dir}.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ModuleInitArgs != it.initArgs {
		t.Fatalf("config.json module_init_args = %q, want %q", cfg.ModuleInitArgs, it.initArgs)
	}
	// Other arguments for the same home are refused: they could name
	// another database.
	other := it
	other.initArgs = strings.Replace(it.initArgs, "flags=", "flags=readOnly", 1)
	if code, _, stderr := runCLI(other.args(dir)...); code != 1 || !strings.Contains(stderr, "module-init-args") {
		t.Fatalf("init with other arguments: exit %d, stderr %q", code, stderr)
	}
}

// A token without a mechanism keyquorum needs gets its own code, not
// "internal".
func TestErrorJSON_MechanismMissing(t *testing.T) {
	err := fmt.Errorf("keyquorum: identity key: %w", &hsmshare.MechanismError{Mechanism: "CKM_EC_KEY_PAIR_GEN", Token: "t", Purpose: "generate the P-256 identity key"})
	if b := errorJSON(err); b.Code != codeMechanismMissing || !strings.Contains(b.Error, "CKM_EC_KEY_PAIR_GEN") {
		t.Fatalf("errorJSON = %+v, want code %s naming the mechanism", b, codeMechanismMissing)
	}
}

// A token without a generator, and one whose generator fails, get codes of
// their own, in init and run (errorJSON) as in API calls (classify).
func TestErrorJSON_TokenRNG(t *testing.T) {
	noRNG := fmt.Errorf("keyquorum: random number generator of token \"t\": %w", hsmshare.ErrNoRNG)
	if b := errorJSON(noRNG); b.Code != codeNoTokenRNG {
		t.Fatalf("errorJSON(no generator) = %+v, want code %s", b, codeNoTokenRNG)
	}
	failed := fmt.Errorf("tss: sign: %w", fmt.Errorf("%w: C_GenerateRandom on token \"t\"", hsmshare.ErrRandomFailed))
	if b := errorJSON(failed); b.Code != codeTokenRNGFailed {
		t.Fatalf("errorJSON(generator failed) = %+v, want code %s", b, codeTokenRNGFailed)
	}
	if code, status, _ := classify(failed); code != codeTokenRNGFailed || status != 503 {
		t.Fatalf("classify(generator failed) = %s %d, want %s 503", code, status, codeTokenRNGFailed)
	}
}

// --allow-no-token-rng is kept in config.json for run, and a later init
// without it takes it back.
func TestInit_AllowNoTokenRNGIsKept(t *testing.T) {
	it := initTokens[0].make(t)
	dir := filepath.Join(t.TempDir(), "site")
	for _, tc := range []struct {
		extra []string
		want  bool
	}{
		{[]string{"--allow-no-token-rng"}, true},
		{nil, false},
	} {
		if code, stdout, stderr := runCLI(it.args(dir, tc.extra...)...); code != 0 {
			t.Fatalf("init %v: exit %d\nstdout %s\nstderr %s", tc.extra, code, stdout, stderr)
		}
		cfg, err := home{dir: dir}.loadConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AllowNoTokenRNG != tc.want {
			t.Fatalf("init %v: config.json allow_no_token_rng = %v, want %v", tc.extra, cfg.AllowNoTokenRNG, tc.want)
		}
	}
}
