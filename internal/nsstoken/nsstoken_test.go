package nsstoken

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/hsmshare"
)

func open(t *testing.T, tok *Token, pin string) (*hsmshare.Token, error) {
	t.Helper()
	return hsmshare.Open(context.Background(), hsmshare.Config{
		ModulePath: tok.Module(), ModuleInitArgs: tok.InitArgs(), TokenLabel: tok.Label, PIN: pin,
	})
}

func TestNew_OneDatabaseOpensWithThePlainArguments(t *testing.T) {
	tok := New(t)
	for _, f := range []string{"cert9.db", "key4.db"} {
		if _, err := os.Stat(filepath.Join(tok.Dir, f)); err != nil {
			t.Fatalf("certutil did not create %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(tok.Dir, ".pin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the PIN file given to certutil is still there (%v)", err)
	}
	want := fmt.Sprintf("configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='%s' flags=", tok.Dir, tok.Label)
	if got := tok.InitArgs(); got != want {
		t.Fatalf("InitArgs = %q, want %q", got, want)
	}
	if _, err := open(t, tok, tok.PIN+"x"); !errors.Is(err, hsmshare.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v, want ErrWrongPIN", err)
	}
	tk, err := open(t, tok, tok.PIN)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSet_TokensAreDistinctAndOpenTogether(t *testing.T) {
	s := NewSetOf(t, 3)
	if !strings.Contains(s.InitArgs(), "tokens=<0x4=[") {
		t.Fatalf("InitArgs of three databases: %q", s.InitArgs())
	}
	var open3 []*hsmshare.Token
	for _, tok := range s.Tokens {
		tk, err := open(t, tok, tok.PIN)
		if err != nil {
			t.Fatalf("open %s: %v", tok, err)
		}
		open3 = append(open3, tk)
		if tk.Label() != tok.Label {
			t.Fatalf("opened %s, want %s", tk, tok)
		}
	}
	// Each database holds its own keys.
	ctx := context.Background()
	if _, err := open3[0].CreateIdentity(ctx, "only-on-the-first"); err != nil {
		t.Fatal(err)
	}
	if _, err := open3[1].Identity(ctx, "only-on-the-first"); !errors.Is(err, hsmshare.ErrKeyNotFound) {
		t.Fatalf("the second token sees the first one's key: %v", err)
	}
	for _, tk := range open3 {
		if err := tk.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateTokenLabelled_RefusesWhatTheArgumentsCannotCarry(t *testing.T) {
	s, err := NewSet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"", strings.Repeat("x", 33), "it's", "a]b", "a>b"} {
		if _, err := s.CreateTokenLabelled(label); err == nil {
			t.Errorf("label %q accepted", label)
		}
	}
}

func TestToken_FormattingHidesPIN(t *testing.T) {
	tok := &Token{Label: "l", Dir: "/d", PIN: "pin-secret"}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", *tok, *tok, *tok)} {
		if strings.Contains(s, "secret") {
			t.Fatalf("formatted token shows the PIN: %s", s)
		}
	}
}
