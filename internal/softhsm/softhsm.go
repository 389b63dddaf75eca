// Package softhsm creates throw-away SoftHSM2 tokens for tests.
//
// A PKCS#11 module is loaded once per process and SoftHSM2 reads its
// configuration (SOFTHSM2_CONF) only when the module is initialized, so one
// process can see exactly one token directory at a time, and tokens created
// after the module was initialized stay invisible until every user has closed
// it. The helpers follow from that:
//
//   - NewDir makes a private token directory with its own softhsm2.conf under
//     t.TempDir() and points SOFTHSM2_CONF at it for the rest of the test
//     (t.Setenv, so such a test cannot run in parallel with others).
//   - (*Dir).NewToken initializes one more token in that directory with a
//     unique label and random PINs. Tests that need several parties in one
//     process create all their tokens in one Dir before opening any of them.
//   - New is NewDir followed by one NewToken.
//
// Child processes see the same tokens when they get [Dir.Env] in their
// environment.
package softhsm

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// ModuleCandidates lists where SoftHSM2's PKCS#11 module is looked for, in
// order, when SOFTHSM2_MODULE is not set.
var ModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// ModulePath returns the path of the SoftHSM2 PKCS#11 module: the value of
// SOFTHSM2_MODULE if set, else the first of [ModuleCandidates] that exists.
func ModulePath() (string, error) {
	if p := os.Getenv("SOFTHSM2_MODULE"); p != "" {
		return p, nil
	}
	for _, p := range ModuleCandidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("softhsm: libsofthsm2.so not found; install softhsm2 (make deps) or set SOFTHSM2_MODULE")
}

// Dir is a private SoftHSM2 token directory with its own configuration file.
type Dir struct {
	// Root is the directory holding softhsm2.conf and tokens/.
	Root string
	// ConfPath is the softhsm2.conf that SOFTHSM2_CONF points at.
	ConfPath string
	// Module is the SoftHSM2 PKCS#11 module path.
	Module string
}

// Token is one initialized SoftHSM2 token.
type Token struct {
	// Dir is the token directory the token lives in.
	Dir *Dir
	// Label is the token label, unique within the process.
	Label string
	// Serial is the serial number SoftHSM2 assigned.
	Serial string
	// PIN is the user PIN.
	PIN string
	// SOPIN is the security officer PIN.
	SOPIN string
}

var labelSeq atomic.Uint64

var errDuplicateLabel = errors.New("softhsm: duplicate token label")

// CreateDir writes a new token directory and configuration under root
// (which must exist). It does not change the environment; see [NewDir] for
// the test helper that does.
func CreateDir(root string) (*Dir, error) {
	mod, err := ModulePath()
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(root, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return nil, fmt.Errorf("softhsm: create token directory: %w", err)
	}
	conf := filepath.Join(root, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, fmt.Errorf("softhsm: write %s: %w", conf, err)
	}
	return &Dir{Root: root, ConfPath: conf, Module: mod}, nil
}

// NewDir creates a token directory under t.TempDir() and sets SOFTHSM2_CONF
// to its configuration for the duration of the test.
func NewDir(t testing.TB) *Dir {
	t.Helper()
	d, err := CreateDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", d.ConfPath)
	return d
}

// New creates a token directory with one token in it (see [NewDir]).
func New(t testing.TB) *Token {
	t.Helper()
	return NewDir(t).NewToken(t)
}

// NewToken initializes one more token in d and returns it. Create every
// token a test needs before the test opens the module.
func (d *Dir) NewToken(t testing.TB) *Token {
	t.Helper()
	tok, err := d.CreateToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// NewTokens initializes n tokens in d.
func (d *Dir) NewTokens(t testing.TB, n int) []*Token {
	t.Helper()
	toks := make([]*Token, n)
	for i := range toks {
		toks[i] = d.NewToken(t)
	}
	return toks
}

// CreateToken initializes one more token in d with a unique label and
// random PINs, using softhsm2-util.
func (d *Dir) CreateToken() (*Token, error) {
	return d.CreateTokenLabelled(fmt.Sprintf("kq-%d-%s", labelSeq.Add(1), randHex(4)))
}

// CreateTokenLabelled initializes one more token labelled label (at most 32
// bytes) with random PINs. Token labels are not unique in PKCS#11, and this
// lets a test create two tokens with one label; the second one's Serial is
// then left empty, since it cannot be found by label.
func (d *Dir) CreateTokenLabelled(label string) (*Token, error) {
	tok := &Token{
		Dir:   d,
		Label: label,
		PIN:   randHex(8),
		SOPIN: randHex(8),
	}
	if _, err := d.run("--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", tok.SOPIN); err != nil {
		return nil, err
	}
	serial, err := d.serialOf(tok.Label)
	switch {
	case errors.Is(err, errDuplicateLabel):
		// Serial stays empty: it cannot be told apart by label.
	case err != nil:
		return nil, err
	default:
		tok.Serial = serial
	}
	return tok, nil
}

// Env returns the environment entry that makes a child process see d's
// tokens: "SOFTHSM2_CONF=<conf>".
func (d *Dir) Env() string { return "SOFTHSM2_CONF=" + d.ConfPath }

// PINFile writes the token's user PIN to a 0600 file under t.TempDir() and
// returns its path, for Config.PINSource "file:<path>".
func (tok *Token) PINFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// String describes the token without its PINs.
func (tok Token) String() string {
	return fmt.Sprintf("softhsm token %q (serial %s)", tok.Label, tok.Serial)
}

// GoString is like String, so %#v does not print the PINs either.
func (tok Token) GoString() string { return tok.String() }

func (d *Dir) run(args ...string) ([]byte, error) {
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), d.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New("softhsm: softhsm2-util not found; install softhsm2 (make deps)")
		}
		// The arguments may hold PINs; report only the action.
		return nil, fmt.Errorf("softhsm: softhsm2-util %s failed: %w: %s", args[0], err, redact(out, args))
	}
	return out, nil
}

// serialOf finds the serial of the token labelled label in
// `softhsm2-util --show-slots`.
func (d *Dir) serialOf(label string) (string, error) {
	out, err := d.run("--show-slots")
	if err != nil {
		return "", err
	}
	var serial, found string
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Serial number:"); ok {
			serial = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Label:"); ok && strings.TrimSpace(v) == label {
			found = serial
			n++
		}
	}
	switch {
	case n == 0:
		return "", fmt.Errorf("softhsm: token %q not listed by softhsm2-util --show-slots", label)
	case n > 1:
		return "", fmt.Errorf("%w: %d tokens labelled %q", errDuplicateLabel, n, label)
	}
	return found, nil
}

func redact(out []byte, args []string) string {
	s := string(bytes.TrimSpace(out))
	for i, a := range args {
		if (a == "--pin" || a == "--so-pin") && i+1 < len(args) {
			s = strings.ReplaceAll(s, args[i+1], "[redacted]")
		}
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24 (it aborts the process instead)
	return hex.EncodeToString(b)
}
