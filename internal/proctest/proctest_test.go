package proctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/transport"
)

// TestMain plays a child role when the binary was re-executed by a test.
func TestMain(m *testing.M) {
	if c, ok := proctest.FromEnv(); ok && c.Role != "" {
		os.Exit(child(c))
	}
	os.Exit(m.Run())
}

// child roles:
//   - "party": counts its starts in its store directory, loads or creates an
//     identity key in its own token, prints them, then waits to be killed.
//   - "fail": prints a line and exits with status 3.
func child(c proctest.Child) int {
	switch c.Role {
	case "party":
		counter := filepath.Join(c.StoreDir, "starts")
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		n++
		if err := os.WriteFile(counter, []byte(strconv.Itoa(n)), 0o600); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		fmt.Println("START", n)
		ctx := context.Background()
		tok, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: c.Module, TokenLabel: c.TokenLabel, PINSource: "file:" + c.PINFile})
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		defer tok.Close()
		id, err := tok.Identity(ctx, "party-identity")
		if errors.Is(err, hsmshare.ErrKeyNotFound) {
			id, err = tok.CreateIdentity(ctx, "party-identity")
		}
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		party, err := transport.PartyIDFromPublicKey(id.PublicKey())
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		fmt.Println("IDENTITY", party)
		time.Sleep(time.Hour)
		return 0
	case "fail":
		fmt.Println("FAILING")
		return 3
	}
	return 2
}

func TestCluster_KillRestartKeepsStoreAndToken(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatalf("softhsm2-util is required (make deps): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := proctest.New(t)
	var procs []*proctest.Proc
	for i := range 2 {
		spec, err := proctest.SelfSpec(fmt.Sprintf("party%d", i), "TestCluster_KillRestartKeepsStoreAndToken", "party")
		if err != nil {
			t.Fatal(err)
		}
		spec.HSM = true
		p, err := c.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	ids := map[string]string{}
	for _, p := range procs {
		if l, err := p.WaitForLine(ctx, "START "); err != nil || l != "START 1" {
			t.Fatalf("%s: %q, %v", p.Name, l, err)
		}
		l, err := p.WaitForLine(ctx, "IDENTITY ")
		if err != nil {
			t.Fatal(err)
		}
		ids[p.Name] = l
	}
	if ids["party0"] == ids["party1"] {
		t.Fatal("two processes share an identity: their tokens are not separate")
	}

	p := procs[0]
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("still running after Kill")
	}
	if err := p.Wait(ctx); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("exit status after kill -9: %v", err)
	}
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := p.WaitForLine(ctx, "START "); err != nil || l != "START 2" {
		t.Fatalf("after restart: %q, %v (the store directory must survive)", l, err)
	}
	if l, err := p.WaitForLine(ctx, "IDENTITY "); err != nil || l != ids["party0"] {
		t.Fatalf("after restart: %q, %v; want the same identity %q from the same token", l, err, ids["party0"])
	}
	if !procs[1].Running() {
		t.Fatal("killing one process stopped another")
	}
	if out := p.Output(); !strings.Contains(out, "START 1") || !strings.Contains(out, "START 2") {
		t.Fatalf("log lost earlier runs:\n%s", out)
	}
}

func TestCluster_ReportsEarlyExit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := proctest.New(t)
	spec, err := proctest.SelfSpec("failer", "TestCluster_ReportsEarlyExit", "fail")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := p.WaitForLine(ctx, "FAILING"); err != nil || l != "FAILING" {
		t.Fatalf("%q, %v", l, err)
	}
	if _, err := p.WaitForLine(ctx, "NEVER"); err == nil || !strings.Contains(err.Error(), "exited before") {
		t.Fatalf("waiting for a line after exit: %v", err)
	}
	var ee *exec.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Wait: %v, want exit status 3", err)
	}
	if _, err := c.Start(ctx, spec); err == nil {
		t.Fatal("a second process with the same name was started")
	}
}
