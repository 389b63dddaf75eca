package softhsm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestNewDir_TokensAreDistinctAndVisible(t *testing.T) {
	d := NewDir(t)
	if os.Getenv("SOFTHSM2_CONF") != d.ConfPath {
		t.Fatal("SOFTHSM2_CONF does not point at the new directory")
	}
	toks := d.NewTokens(t, 3)
	seen := map[string]bool{}
	for _, tok := range toks {
		if tok.Serial == "" || len(tok.PIN) < 4 || seen[tok.Label] || seen[tok.Serial] {
			t.Fatalf("token %s: empty serial, short PIN or duplicate", tok)
		}
		seen[tok.Label], seen[tok.Serial] = true, true
	}
	// An independent tool sees exactly these tokens, and the PIN works.
	out, err := exec.Command("softhsm2-util", "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, out)
	}
	for _, tok := range toks {
		if !strings.Contains(string(out), tok.Serial) {
			t.Fatalf("token %s not listed:\n%s", tok, out)
		}
	}
	if n := strings.Count(string(out), "Initialized:      yes"); n != 3 {
		t.Fatalf("%d initialized tokens listed, want 3", n)
	}
}

func TestToken_FormattingHidesPINs(t *testing.T) {
	tok := &Token{Label: "l", Serial: "s", PIN: "pin-secret", SOPIN: "so-secret"}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", *tok, *tok, *tok)} {
		if strings.Contains(s, "secret") {
			t.Fatalf("formatted token shows a PIN: %s", s)
		}
	}
}

func TestCreateTokenLabelled_DuplicateLabel(t *testing.T) {
	d := NewDir(t)
	a, err := d.CreateTokenLabelled("same")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateTokenLabelled("same")
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial == "" || b.Serial != "" {
		t.Fatalf("serials %q, %q: want the first set and the second empty", a.Serial, b.Serial)
	}
}
