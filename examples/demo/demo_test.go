package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestDemo runs the whole demo `make demo` runs, against a kqnode binary
// built for the test, and checks that it passes and leaves nothing behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs three kqnode processes through a keygen (about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	bin, err := proctest.Build(ctx, t.TempDir(), "github.com/keyquorum/keyquorum/examples/kqnode", false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(ctx, options{kqnode: bin, fixtures: filepath.Join(fixtures.Dir(), "preparams"), timeout: 10 * time.Minute}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	m := regexp.MustCompile(`Working directory: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("the demo did not print its working directory")
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the demo left %s behind: %v", m[1], err)
	}
}

// TestDemo_Cold runs the cold-site demo `make demo-cold` runs.
func TestDemo_Cold(t *testing.T) {
	if testing.Short() {
		t.Skip("the cold demo runs three kqnode processes through keygen, presign and three signatures over files")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	bin, err := proctest.Build(ctx, t.TempDir(), "github.com/keyquorum/keyquorum/examples/kqnode", false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(ctx, options{kqnode: bin, fixtures: filepath.Join(fixtures.Dir(), "preparams"), timeout: 10 * time.Minute, cold: true}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("cold demo failed: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("digest:")) {
		t.Fatal("the cold demo did not show the operator the digest before the import")
	}
}

// TestDemo_FailsCleanly checks that a demo that cannot start reports why
// and exits with an error instead of pretending.
func TestDemo_FailsCleanly(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), options{kqnode: filepath.Join(t.TempDir(), "no-such-kqnode"),
		fixtures: filepath.Join(fixtures.Dir(), "preparams"), timeout: time.Minute}, &out)
	if err == nil {
		t.Fatal("the demo ran without a kqnode binary")
	}
	err = run(context.Background(), options{kqnode: os.Args[0], fixtures: t.TempDir(), timeout: time.Minute}, &out)
	if err == nil {
		t.Fatal("the demo ran without pre-parameter fixtures")
	}
}
