// Package nsstoken creates throw-away NSS softoken tokens for tests.
//
// NSS's software token (libsoftokn3.so, Debian package libnss3) keeps its
// keys in an SQLite database directory (cert9.db, key4.db) and is told which
// directory to open through its module initialization arguments: it refuses
// C_Initialize without them. Like every PKCS#11 library it is initialized
// once per process, so one process sees exactly the databases named in that
// one initialization. The helpers follow from that:
//
//   - Create makes a database directory with certutil (package
//     libnss3-tools) and sets its user PIN; the token is labelled with the
//     dbTokenDescription of the initialization arguments.
//   - A Set is the databases one process opens together; Set.InitArgs is the
//     argument string that opens all of them (the plain one-database form
//     for a set of one). Create every token of a set before the module is
//     opened: a token added later changes the arguments, and the module
//     keeps the ones it was initialized with until every user has closed it.
//   - New is a one-token Set under t.TempDir().
//
// Nothing here changes system configuration: no file outside the given
// directories is written and no environment variable is set.
package nsstoken

import (
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

// ModuleCandidates lists where NSS's softoken module is looked for, in
// order, when NSS_SOFTOKN_MODULE is not set.
var ModuleCandidates = []string{
	"/usr/lib/x86_64-linux-gnu/libsoftokn3.so",
	"/usr/lib/aarch64-linux-gnu/libsoftokn3.so",
	"/usr/lib64/libsoftokn3.so",
	"/usr/lib/libsoftokn3.so",
	"/usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so",
	"/opt/homebrew/lib/libsoftokn3.dylib",
}

// ModulePath returns the path of the softoken module: the value of
// NSS_SOFTOKN_MODULE if set, else the first of [ModuleCandidates] that exists.
func ModulePath() (string, error) {
	if p := os.Getenv("NSS_SOFTOKN_MODULE"); p != "" {
		return p, nil
	}
	for _, p := range ModuleCandidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nsstoken: libsoftokn3.so not found; install libnss3 (make deps) or set NSS_SOFTOKN_MODULE")
}

// Token is one NSS key database and the token it appears as.
type Token struct {
	// Set is the set of databases the token is opened with.
	Set *Set
	// Dir is the database directory (cert9.db, key4.db).
	Dir string
	// Label is the token label (the database's token description), unique
	// within the process and at most 32 bytes.
	Label string
	// PIN is the user PIN (the database password).
	PIN string
}

// Set is the databases one process opens with one module initialization.
type Set struct {
	// Root is the directory the databases are created in.
	Root string
	// Module is the softoken module path.
	Module string
	// Tokens are the set's tokens, in creation order.
	Tokens []*Token
}

var labelSeq atomic.Uint64

// NewSet returns an empty set whose databases live under root (which must
// exist).
func NewSet(root string) (*Set, error) {
	mod, err := ModulePath()
	if err != nil {
		return nil, err
	}
	return &Set{Root: root, Module: mod}, nil
}

// New creates a one-token set under t.TempDir().
func New(t testing.TB) *Token {
	t.Helper()
	s, err := NewSet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s.NewToken(t)
}

// NewSetOf creates a set of n tokens under t.TempDir().
func NewSetOf(t testing.TB, n int) *Set {
	t.Helper()
	s, err := NewSet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		s.NewToken(t)
	}
	return s
}

// NewToken adds one more token to s.
func (s *Set) NewToken(t testing.TB) *Token {
	t.Helper()
	tok, err := s.CreateToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// CreateToken adds a token with a unique label and a random PIN to s.
func (s *Set) CreateToken() (*Token, error) {
	return s.CreateTokenLabelled(fmt.Sprintf("kq-nss-%d-%s", labelSeq.Add(1), randHex(4)))
}

// CreateTokenLabelled adds a token labelled label (1 to 32 bytes) with a
// random PIN to s: a new database directory initialized by
// `certutil -N -d sql:DIR -f PINFILE`. Labels are not checked for
// uniqueness, so a test can make two tokens with one label.
func (s *Set) CreateTokenLabelled(label string) (*Token, error) {
	if label == "" || len(label) > 32 {
		return nil, fmt.Errorf("nsstoken: label %q: want 1 to 32 bytes", label)
	}
	dir, err := os.MkdirTemp(s.Root, "nssdb-")
	if err != nil {
		return nil, fmt.Errorf("nsstoken: create database directory: %w", err)
	}
	if err := checkArg(dir); err != nil {
		return nil, err
	}
	if err := checkArg(label); err != nil {
		return nil, err
	}
	tok := &Token{Set: s, Dir: dir, Label: label, PIN: randHex(8)}
	// certutil reads the new password from a file; it is removed at once.
	pinFile := filepath.Join(dir, ".pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("nsstoken: write PIN file: %w", err)
	}
	defer os.Remove(pinFile)
	out, err := exec.Command("certutil", "-N", "-d", "sql:"+dir, "-f", pinFile).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New("nsstoken: certutil not found; install libnss3-tools (make deps)")
		}
		return nil, fmt.Errorf("nsstoken: certutil -N -d sql:%s failed: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	s.Tokens = append(s.Tokens, tok)
	return tok, nil
}

// InitArgs returns the module initialization arguments that open the set's
// databases, for hsmshare.Config.ModuleInitArgs (and kqnode init's
// --module-init-args). For one database it is the form the README
// documents:
//
//	configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='LABEL' flags=
//
// For several it lists them in softoken's tokens=<…> parameter, one
// slot each (slot IDs from 4; softoken reserves 1 to 3).
func (s *Set) InitArgs() string {
	if len(s.Tokens) == 1 {
		tok := s.Tokens[0]
		return fmt.Sprintf("configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='%s' flags=", tok.Dir, tok.Label)
	}
	var b strings.Builder
	b.WriteString("flags= tokens=<")
	for i, tok := range s.Tokens {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "0x%x=[configdir='sql:%s' certPrefix='' keyPrefix='' tokenDescription='%s' flags=]", 4+i, tok.Dir, tok.Label)
	}
	b.WriteByte('>')
	return b.String()
}

// Module returns the softoken module path.
func (tok *Token) Module() string { return tok.Set.Module }

// InitArgs returns the initialization arguments of the token's set.
func (tok *Token) InitArgs() string { return tok.Set.InitArgs() }

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

// String describes the token without its PIN.
func (tok Token) String() string {
	return fmt.Sprintf("NSS softoken token %q (database %s)", tok.Label, tok.Dir)
}

// GoString is like String, so %#v does not print the PIN either.
func (tok Token) GoString() string { return tok.String() }

// checkArg refuses a value that softoken's parameter parser would end
// early: values are quoted with '…' inside […] inside <…>, and the parser
// looks only for the closing character of each (a backslash escapes one
// character per level, which these helpers do not attempt).
func checkArg(v string) error {
	if i := strings.IndexAny(v, `'"\[]<>`); i >= 0 {
		return fmt.Errorf("nsstoken: %q contains %q, which NSS initialization arguments cannot carry unescaped; use another directory or label", v, v[i])
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24 (it aborts the process instead)
	return hex.EncodeToString(b)
}
