// Package sitetest builds complete test sites: a real SoftHSM2 token with a
// seal key and an identity key, a sealed store in a temporary directory,
// and the party ID derived from the identity key the way the transport
// derives it (the libp2p peer ID).
//
// A PKCS#11 module is process-global and SoftHSM2 only sees tokens that
// existed when it was initialized, so a test binary creates all its tokens
// up front: call [Main] from TestMain with the number of tokens the package
// needs at once, then [NewSite] in tests, in parallel if they like. A site's
// token goes back to the pool when its test ends.
package sitetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/softhsm"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

var (
	pool   chan *softhsm.Token
	tokDir *softhsm.Dir
)

// Main creates a token directory with n tokens, points SOFTHSM2_CONF at it,
// runs the tests and removes everything. Call it from TestMain.
func Main(m *testing.M, n int) int {
	root, err := os.MkdirTemp("", "kq-sitetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitetest:", err)
		return 1
	}
	defer os.RemoveAll(root)
	tokDir, err = softhsm.CreateDir(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitetest:", err)
		return 1
	}
	if err := os.Setenv("SOFTHSM2_CONF", tokDir.ConfPath); err != nil {
		fmt.Fprintln(os.Stderr, "sitetest:", err)
		return 1
	}
	pool = make(chan *softhsm.Token, n)
	for i := 0; i < n; i++ {
		tok, err := tokDir.CreateToken()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sitetest:", err)
			return 1
		}
		pool <- tok
	}
	code := m.Run()
	binary.cleanup()
	return code
}

// T is the part of testing.TB the helpers need. Any *testing.T or
// *testing.B is one; [Binary] returns one that lives for the whole test binary.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// binaryT is a T whose cleanups run when Main returns: for fixtures shared
// by every test of a binary (an expensive keygen, say). Fatal panics, which
// fails the test that triggered it.
type binaryT struct {
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

var binary = &binaryT{}

// Binary returns a [T] that lives until [Main] returns.
func Binary() T { return binary }

func (b *binaryT) Helper()                           {}
func (b *binaryT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (b *binaryT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (b *binaryT) Cleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}
func (b *binaryT) TempDir() string {
	d, err := os.MkdirTemp("", "kq-sitetest-")
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dirs = append(b.dirs, d)
	return d
}
func (b *binaryT) cleanup() {
	b.mu.Lock()
	cs, ds := b.cleanups, b.dirs
	b.cleanups, b.dirs = nil, nil
	b.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		os.RemoveAll(d)
	}
}

// Dir returns the token directory [Main] created.
func Dir() *softhsm.Dir { return tokDir }

// Site is one party's HSM, store and identity.
type Site struct {
	// ID is the party ID: the libp2p peer ID of Identity.
	ID tss.PartyID
	// Token is the open HSM token.
	Token *hsmshare.Token
	// SealKey seals the store.
	SealKey *hsmshare.SealKey
	// Identity is the party's HSM-held network identity key.
	Identity *hsmshare.Identity
	// Store is the party's sealed store.
	Store *hsmshare.Store
	// Dir is the store directory.
	Dir string
	// HSM is the SoftHSM token behind Token.
	HSM *softhsm.Token
}

// NewSite borrows a token from the pool (waiting up to a minute for one),
// creates fresh keys in it and opens a store in a new temporary directory.
// Everything is closed and the token returned when t ends.
func NewSite(t T) *Site {
	t.Helper()
	if pool == nil {
		t.Fatal("sitetest: call sitetest.Main from TestMain")
	}
	var tok *softhsm.Token
	select {
	case tok = <-pool:
	case <-time.After(time.Minute):
		t.Fatal("sitetest: no free SoftHSM token; raise the count given to sitetest.Main")
	}
	t.Cleanup(func() { pool <- tok })
	ctx := context.Background()
	ht, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: tokDir.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	if err != nil {
		t.Fatalf("sitetest: open token: %v", err)
	}
	t.Cleanup(func() { ht.Close() })
	var suffix [6]byte
	rand.Read(suffix[:])
	label := hex.EncodeToString(suffix[:])
	sk, err := ht.CreateSealKey(ctx, "seal-"+label)
	if err != nil {
		t.Fatalf("sitetest: seal key: %v", err)
	}
	id, err := ht.CreateIdentity(ctx, "identity-"+label)
	if err != nil {
		t.Fatalf("sitetest: identity key: %v", err)
	}
	pid, err := transport.PartyIDFromPublicKey(id.PublicKey())
	if err != nil {
		t.Fatalf("sitetest: party ID: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatalf("sitetest: %v", err)
	}
	st, err := hsmshare.OpenStore(dir, sk, string(pid))
	if err != nil {
		t.Fatalf("sitetest: store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &Site{ID: pid, Token: ht, SealKey: sk, Identity: id, Store: st, Dir: dir, HSM: tok}
}

// CopyStore copies the site's store directory, as an operator's backup
// would, into a new temporary directory and returns its path. Take it while
// no session writes to the store.
func (s *Site) CopyStore(t T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store-copy")
	if err := copyTree(s.Dir, dst); err != nil {
		t.Fatalf("sitetest: copy store: %v", err)
	}
	return dst
}

// ReplaceStore closes the site's store, replaces its directory with a copy
// of backup (a directory made by CopyStore) and opens it again: a restore
// from backup. The HSM token, its keys and its ledgers are untouched, as
// with a hardware HSM. Stop every user of the store first.
func (s *Site) ReplaceStore(t T, backup string) {
	t.Helper()
	if err := s.Store.Close(); err != nil {
		t.Fatalf("sitetest: close store: %v", err)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Fatalf("sitetest: remove store: %v", err)
	}
	if err := copyTree(backup, s.Dir); err != nil {
		t.Fatalf("sitetest: restore store: %v", err)
	}
	st, err := hsmshare.OpenStore(s.Dir, s.SealKey, string(s.ID))
	if err != nil {
		t.Fatalf("sitetest: reopen restored store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	s.Store = st
}

// copyTree copies the directory src to dst (which must not exist), keeping
// file modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}
