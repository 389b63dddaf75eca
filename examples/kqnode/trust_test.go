//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// privateDir returns a new 0700 directory whose parents pass the checks.
func privateDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func wantUnsafe(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, errUnsafeFile) {
		t.Fatalf("%v; want errUnsafeFile", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
}

// TestCheckModule: the PKCS#11 module, loaded as the site's user, must be
// root's or the user's and closed to writing by others, and so must every
// directory and symbolic link on the way to it.
func TestCheckModule(t *testing.T) {
	mod, err := softhsm.ModulePath()
	if err != nil {
		t.Skip(err)
	}
	if err := checkModule(mod); err != nil {
		t.Fatalf("the installed SoftHSM2 module %s: %v", mod, err)
	}
	d := privateDir(t)
	lib := filepath.Join(d, "lib.so")
	writeFile(t, lib, 0o755)
	if err := checkModule(lib); err != nil {
		t.Fatalf("a 0755 module in a 0700 directory: %v", err)
	}
	link := filepath.Join(d, "link.so")
	if err := os.Symlink("lib.so", link); err != nil {
		t.Fatal(err)
	}
	if err := checkModule(link); err != nil {
		t.Fatalf("a module through the user's own symbolic link: %v", err)
	}
	chmod(t, lib, 0o775)
	wantUnsafe(t, checkModule(link), lib, "writable by its group", "chmod go-w "+lib)
	chmod(t, lib, 0o755)
	chmod(t, d, 0o777)
	wantUnsafe(t, checkModule(lib), d, "without the sticky bit")
	chmod(t, d, 0o700)

	if os.Geteuid() == 0 {
		if err := os.Lchown(link, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		wantUnsafe(t, checkModule(link), link, "symbolic link", "owned by uid 65534")
	}
}

// TestHomeCheck_Links: the home is not followed through a symbolic link of
// its own, and the links on the way to it are followed only when root's or
// the user's.
func TestHomeCheck_Links(t *testing.T) {
	d := privateDir(t)
	real := filepath.Join(d, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	homeLink := filepath.Join(d, "home")
	if err := os.Symlink(real, homeLink); err != nil {
		t.Fatal(err)
	}
	wantUnsafe(t, home{dir: homeLink}.check(), homeLink, "symbolic link")

	if err := os.Mkdir(filepath.Join(real, "site"), 0o700); err != nil {
		t.Fatal(err)
	}
	through := filepath.Join(homeLink, "site")
	if err := (home{dir: through}).check(); err != nil {
		t.Fatalf("a home under the user's own link: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(homeLink, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		wantUnsafe(t, home{dir: through}.check(), homeLink, "owned by uid 65534", "point it elsewhere")
	}
}

// TestOpenTrusted_FIFO: a FIFO in place of a trusted file is refused at
// once, without blocking the open.
func TestOpenTrusted_FIFO(t *testing.T) {
	p := filepath.Join(privateDir(t), configFile)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := openTrusted(p, configPolicy); done <- err }()
	select {
	case err := <-done:
		wantUnsafe(t, err, p, "not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
}

// TestInit_RefusesUnsafeFiles: init checks what it trusts and writes into
// before it opens the token: an existing home open to others, a PIN file
// others can read, a parent others can write to.
func TestInit_RefusesUnsafeFiles(t *testing.T) {
	d := softhsm.NewDir(t)
	tok := d.NewToken(t)
	root := privateDir(t)
	pin := filepath.Join(root, "pin")
	if err := os.WriteFile(pin, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	initAt := func(homeDir, pinFile string) error {
		var stdout, stderr bytes.Buffer
		return cmdInit(context.Background(), []string{"--home", homeDir, "--module", d.Module, "--token", tok.Label,
			"--pin-source", "file:" + pinFile}, &stdout, &stderr)
	}

	open := filepath.Join(root, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	chmod(t, open, 0o777)
	wantUnsafe(t, initAt(open, pin), open, "writable by", "chmod 700 "+open)
	if _, err := os.Lstat(filepath.Join(open, configFile)); err == nil {
		t.Error("init wrote config.json into a home open to everyone")
	}

	chmod(t, pin, 0o644)
	fresh := filepath.Join(root, "fresh")
	wantUnsafe(t, initAt(fresh, pin), pin, "readable by", "chmod 600 "+pin)
	chmod(t, pin, 0o600)

	shared := filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	chmod(t, shared, 0o777)
	wantUnsafe(t, initAt(filepath.Join(shared, "a", "home"), pin), shared, "without the sticky bit")
	for _, p := range []string{fresh, filepath.Join(shared, "a")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("a refused init created %s", p)
		}
	}
	if err := initAt(filepath.Join(root, "good", "home"), pin); err != nil {
		t.Fatalf("init in a safe place: %v", err)
	}
}
