package hsmshare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"go.uber.org/goleak"

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

// testConfig returns a Config for tok with a literal PIN.
func testConfig(tok *softhsm.Token) Config {
	return Config{ModulePath: tok.Dir.Module, TokenLabel: tok.Label, PIN: tok.PIN}
}

// openToken opens tok and closes it when the test ends.
func openToken(t testing.TB, tok *softhsm.Token, mutate ...func(*Config)) *Token {
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

// newSealKey opens a fresh token and creates a seal key on it.
func newSealKey(t testing.TB, scheme Scheme) *SealKey {
	t.Helper()
	tk := openToken(t, softhsm.New(t), withScheme(scheme))
	k, err := tk.CreateSealKey(context.Background(), "seal")
	if err != nil {
		t.Fatalf("CreateSealKey: %v", err)
	}
	return k
}

// schemes are the two sealing schemes; both run against the real token
// (SoftHSM2 has GCM, so the fallback is forced by Config.Scheme).
var schemes = []Scheme{SchemeGCM, SchemeCBCHMAC}

// child describes a second process: the test binary re-executed with a role.
type child struct {
	role string
	tok  *softhsm.Token
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
		c.tok.Dir.Env(),
		"HSMSHARE_CHILD_MODULE="+c.tok.Dir.Module,
		"HSMSHARE_CHILD_TOKEN="+c.tok.Label,
		"HSMSHARE_CHILD_PIN="+c.tok.PIN,
	)
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
		ModulePath: os.Getenv("HSMSHARE_CHILD_MODULE"),
		TokenLabel: os.Getenv("HSMSHARE_CHILD_TOKEN"),
		PINSource:  "env:HSMSHARE_CHILD_PIN",
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
