package keyquorum_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADME_QuickStartIsTheExample keeps the README's library quick start
// identical to the body of Example, which the compiler checks.
func TestREADME_QuickStartIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "<!-- section:quickstart -->")
	if !ok {
		t.Fatal("README has no quickstart section")
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("the quickstart section has no Go block")
	}
	block, _, _ = strings.Cut(block, "\n```")

	_, body, ok := strings.Cut(string(src), "func Example() {\n")
	if !ok {
		t.Fatal("example_test.go has no Example function")
	}
	body, _, _ = strings.Cut(body, "\n}\n")
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	if want := strings.Join(lines, "\n"); block != want {
		t.Errorf("README quick start differs from Example; copy the body of Example into the README.\nREADME:\n%s\nExample:\n%s", block, want)
	}
}
