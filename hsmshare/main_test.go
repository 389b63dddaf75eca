package hsmshare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum/internal/nsstoken"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// childEnv selects a child-process role when the test binary re-executes
// itself (see runChild). Tests that need a second process use it instead
// of a separate helper command.
const childEnv = "HSMSHARE_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	// Goroutines that exist before any test (started by package init
	// functions of dependencies, such as ipfs/go-log via tss-lib in the
	// external test package) are not leaks of this package.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// impl is one PKCS#11 implementation the suite runs on. Every test that
// talks to a token runs once per implementation (forEachImpl,
// forEachProfile), so a difference between them shows up as a failing
// subtest named after the implementation.
type impl struct {
	name string
	// newTokens creates n tokens that can be open at the same time. A
	// PKCS#11 library reads its configuration once per initialization, so
	// a test creates every token it needs before opening any.
	newTokens func(t testing.TB, n int) []*testToken
}

var (
	// softHSM2 tokens share one token directory per call (SOFTHSM2_CONF is
	// set for the test, so such tests cannot run in parallel).
	softHSM2 = impl{name: "SoftHSM2", newTokens: softHSMTokens}
	// nssSoftoken tokens are NSS databases opened with module
	// initialization arguments (Config.ModuleInitArgs).
	nssSoftoken = impl{name: "NSS", newTokens: nssTokens}

	impls = []impl{softHSM2, nssSoftoken}
)

// newToken creates one token.
func (im impl) newToken(t testing.TB) *testToken { return im.newTokens(t, 1)[0] }

// testToken is a throw-away token of one implementation.
type testToken struct {
	// implName is the implementation's name.
	implName string
	Label    string
	Serial   string
	PIN      string
	// cfg opens the token with a literal PIN.
	cfg Config
	// env is what a child process needs in its environment to see the
	// token (SOFTHSM2_CONF for SoftHSM2).
	env []string
	// soft is the SoftHSM2 token, for tests that use softhsm2-util or
	// pkcs11-tool on it; nil for other implementations.
	soft *softhsm.Token
}

func (tok *testToken) String() string {
	return fmt.Sprintf("%s token %q", tok.implName, tok.Label)
}

// PINFile writes the user PIN to a 0600 file and returns its path.
func (tok *testToken) PINFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func softHSMTokens(t testing.TB, n int) []*testToken {
	t.Helper()
	d := softhsm.NewDir(t)
	var out []*testToken
	for _, st := range d.NewTokens(t, n) {
		out = append(out, &testToken{
			implName: "SoftHSM2", Label: st.Label, Serial: st.Serial, PIN: st.PIN,
			cfg: Config{ModulePath: d.Module, TokenLabel: st.Label, PIN: st.PIN},
			env: []string{d.Env()}, soft: st,
		})
	}
	return out
}

func nssTokens(t testing.TB, n int) []*testToken {
	t.Helper()
	set := nsstoken.NewSetOf(t, n)
	var out []*testToken
	for _, nt := range set.Tokens {
		// Every softoken token reports the serial 0000000000000000.
		out = append(out, &testToken{
			implName: "NSS", Label: nt.Label, Serial: "0000000000000000", PIN: nt.PIN,
			cfg: Config{ModulePath: nt.Module(), ModuleInitArgs: set.InitArgs(), TokenLabel: nt.Label, PIN: nt.PIN},
		})
	}
	return out
}

// forEachImpl runs f as one subtest per implementation.
func forEachImpl(t *testing.T, f func(t *testing.T, im impl)) {
	t.Helper()
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { f(t, im) })
	}
}

// schemes are the two sealing schemes. Both tokens offer GCM, so the
// fallback is forced by Config.Scheme; it then runs on the real token.
var schemes = []Scheme{SchemeGCM, SchemeCBCHMAC}

// forEachProfile runs f once per implementation and scheme.
func forEachProfile(t *testing.T, f func(t *testing.T, im impl, scheme Scheme)) {
	t.Helper()
	for _, im := range impls {
		for _, s := range schemes {
			t.Run(im.name+"/"+s.String(), func(t *testing.T) { f(t, im, s) })
		}
	}
}

// testConfig returns a Config for tok with a literal PIN.
func testConfig(tok *testToken) Config { return tok.cfg }

// openToken opens tok and closes it when the test ends.
func openToken(t testing.TB, tok *testToken, mutate ...func(*Config)) *Token {
	t.Helper()
	cfg := testConfig(tok)
	for _, f := range mutate {
		f(&cfg)
	}
	tk, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open %s: %v", tok, err)
	}
	t.Cleanup(func() {
		if err := tk.Close(); err != nil {
			t.Errorf("Close %s: %v", tok, err)
		}
	})
	return tk
}

// openConfig opens cfg and closes the token when the test ends.
func openConfig(t testing.TB, cfg Config) *Token {
	t.Helper()
	tk, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open %s: %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := tk.Close(); err != nil {
			t.Errorf("Close %s: %v", cfg, err)
		}
	})
	return tk
}

func withScheme(s Scheme) func(*Config) { return func(c *Config) { c.Scheme = s } }

// newSealKey opens a fresh token of im and creates a seal key on it.
func newSealKey(t testing.TB, im impl, scheme Scheme) *SealKey {
	t.Helper()
	tk := openToken(t, im.newToken(t), withScheme(scheme))
	k, err := tk.CreateSealKey(context.Background(), "seal")
	if err != nil {
		t.Fatalf("CreateSealKey: %v", err)
	}
	return k
}

// child describes a second process: the test binary re-executed with a role.
type child struct {
	role string
	tok  *testToken
	env  map[string]string
}

// run starts the child and returns its exit code and combined output.
// Multi-process tests are skipped with -short (make test-short).
func (c child) run(t *testing.T) (int, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+c.role,
		"HSMSHARE_CHILD_MODULE="+c.tok.cfg.ModulePath,
		"HSMSHARE_CHILD_INIT_ARGS="+c.tok.cfg.ModuleInitArgs,
		"HSMSHARE_CHILD_TOKEN="+c.tok.Label,
		"HSMSHARE_CHILD_PIN="+c.tok.PIN,
	)
	cmd.Env = append(cmd.Env, c.tok.env...)
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("child %s: %v", c.role, err)
	}
	return code, out.String()
}

// Exit codes of child roles.
const (
	childOK      = 0
	childFailed  = 1
	childLocked  = 3
	childCrashed = 4 // the child "crashed" on purpose (os.Exit at a hook)
)

// runChild is the body of a child process. It prints what went wrong to
// stderr and reports through its exit code.
func runChild(role string) int {
	ctx := context.Background()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child %s: %s\n", role, fmt.Sprintf(format, args...))
		return childFailed
	}
	tk, err := Open(ctx, Config{
		ModulePath:     os.Getenv("HSMSHARE_CHILD_MODULE"),
		ModuleInitArgs: os.Getenv("HSMSHARE_CHILD_INIT_ARGS"),
		TokenLabel:     os.Getenv("HSMSHARE_CHILD_TOKEN"),
		PINSource:      "env:HSMSHARE_CHILD_PIN",
	})
	if err != nil {
		return fail("open token: %v", err)
	}
	defer tk.Close()
	key, err := tk.SealKey(ctx, os.Getenv("HSMSHARE_CHILD_KEY"))
	if err != nil {
		return fail("seal key: %v", err)
	}
	dir := os.Getenv("HSMSHARE_CHILD_STORE")
	st, err := OpenStore(dir, key, "party-a")
	if role == "lock" {
		switch {
		case err == nil:
		case errors.Is(err, ErrStoreLocked):
			return childLocked
		default:
			return fail("open store: %v", err)
		}
		defer st.Close()
		if err := st.Put(ctx, "keyshare", "from-child", 1, []byte("written by the child")); err != nil {
			return fail("put: %v", err)
		}
		return childOK
	}
	if err != nil {
		return fail("open store: %v", err)
	}
	defer st.Close()
	switch role {
	case "crash-before-rename":
		// Write version 2, then die between the temp file and the rename.
		st.hooks.afterTempSync = func(string) { os.Exit(childCrashed) }
		if err := st.Put(ctx, "keyshare", "k1", 2, []byte("version two")); err != nil {
			return fail("put: %v", err)
		}
		return fail("put returned instead of crashing")
	case "crash-mid-rotation":
		n, _ := strconv.Atoi(os.Getenv("HSMSHARE_CHILD_AFTER"))
		newKey, err := tk.SealKey(ctx, os.Getenv("HSMSHARE_CHILD_NEWKEY"))
		if err != nil {
			return fail("new seal key: %v", err)
		}
		st.hooks.rotate = func(step string, i int) error {
			if step == stepResealed && i == n {
				os.Exit(childCrashed)
			}
			return nil
		}
		if err := st.Rotate(ctx, newKey); err != nil {
			return fail("rotate: %v", err)
		}
		return fail("rotate returned instead of crashing")
	default:
		return fail("unknown role")
	}
}
