package main

// Error codes an operator meets in the first hour: failures of the command
// itself (a PIN file that is gone, a home that is not set up or belongs to
// another token, a client that stops waiting) each have their own code
// instead of "internal", and a condition has the same code whether this
// site or another one finds it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/tss"
)

func TestCLI_ClientFailureCodes(t *testing.T) {
	s := newTestSite(t)

	t.Run("HomeNotSetUp", func(t *testing.T) {
		missing := filepath.Join(s.root, "no-such-home")
		code, eb, _ := runClient(t, "status", "--home", missing)
		if code != 1 || eb.Code != codeNotInitialized || !strings.Contains(eb.Error, "kqnode init --home "+missing) {
			t.Fatalf("status on a home that does not exist: exit %d, %+v; want %s and the init command", code, eb, codeNotInitialized)
		}
		empty := filepath.Join(s.root, "empty-home")
		if err := os.Mkdir(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		code, eb, _ = runClient(t, "sign", "--home", empty, "--key", strings.Repeat("ab", 16), "--digest", strings.Repeat("cd", 32))
		if code != 1 || eb.Code != codeNotInitialized || !strings.Contains(eb.Error, configFile) {
			t.Fatalf("sign on a home without %s: exit %d, %+v; want %s", configFile, code, eb, codeNotInitialized)
		}
	})

	t.Run("HomeOfAnotherToken", func(t *testing.T) {
		other := s.hsm.NewToken(t)
		pin := filepath.Join(s.root, "other-pin")
		if err := os.WriteFile(pin, []byte(other.PIN+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s.home)
		code, out, stderr := runCLI("init", "--home", s.home, "--module", s.hsm.Module, "--token", other.Label, "--pin-source", "file:"+pin)
		var eb errorBody
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &eb); err != nil {
			t.Fatalf("init printed %q: %v", out, err)
		}
		if code != 1 || eb.Code != codeHomeMismatch || !strings.Contains(eb.Error, s.token.Label) || !strings.Contains(stderr, "another --home") {
			t.Fatalf("init of a home set up for token %s with token %s: exit %d, %+v", s.token.Label, other.Label, code, eb)
		}
		sameSnapshot(t, "init with another token", before, snapshot(t, s.home))
	})

	t.Run("PINFileMissing", func(t *testing.T) {
		gone := filepath.Join(s.root, "moved-pin")
		fresh := filepath.Join(s.root, "fresh-home")
		code, out, _ := runCLI("init", "--home", fresh, "--module", s.hsm.Module, "--token", s.token.Label, "--pin-source", "file:"+gone)
		var eb errorBody
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &eb); err != nil {
			t.Fatalf("init printed %q: %v", out, err)
		}
		if code != 1 || eb.Code != codePINUnavailable || !strings.Contains(eb.Error, gone) {
			t.Fatalf("init with a PIN file that does not exist: exit %d, %+v; want %s naming %s", code, eb, codePINUnavailable, gone)
		}
		if _, err := os.Stat(fresh); err == nil {
			t.Errorf("init without its PIN file created %s", fresh)
		}
		// run reads the PIN at every start: a PIN file moved away stops it
		// with the same condition.
		moved := s.pinFile + ".away"
		if err := os.Rename(s.pinFile, moved); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(moved, s.pinFile)
		_, err := s.start(t)
		if !errors.Is(err, errPINUnavailable) || !strings.Contains(err.Error(), s.pinFile) {
			t.Fatalf("run without its PIN file: %v; want errPINUnavailable naming %s", err, s.pinFile)
		}
		if eb := errorJSON(err); eb.Code != codePINUnavailable {
			t.Fatalf("run without its PIN file: code %s", eb.Code)
		}
		code, out, _ = runCLI("init", "--home", fresh, "--module", s.hsm.Module, "--token", s.token.Label, "--pin-source", "env:KQNODE_TEST_UNSET_PIN")
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &eb); err != nil {
			t.Fatalf("init printed %q: %v", out, err)
		}
		if code != 1 || eb.Code != codePINUnavailable || !strings.Contains(eb.Error, "KQNODE_TEST_UNSET_PIN") {
			t.Fatalf("init with an unset PIN variable: exit %d, %+v", code, eb)
		}
	})

	t.Run("ClientTimeout", func(t *testing.T) {
		// What listens on the site's socket accepts and never answers, as
		// a site stuck in a long operation would: the client's own
		// --timeout ends the wait, with its own code.
		l, err := net.Listen("unix", filepath.Join(s.home, apiSocket))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		held := make(chan net.Conn, 4)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					close(held)
					return
				}
				held <- c
			}
		}()
		defer func() {
			l.Close()
			for c := range held {
				c.Close()
			}
		}()
		info, _ := json.Marshal(apiInfo{Network: "unix", Addr: filepath.Join(s.home, apiSocket), PID: os.Getpid(), PeerID: s.peerID})
		if err := os.WriteFile(filepath.Join(s.home, apiFile), info, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(s.home, apiFile))
		code, eb, _ := runClient(t, "status", "--home", s.home, "--timeout", "1s")
		if code != 1 || eb.Code != codeClientTimeout || !strings.Contains(eb.Error, "--timeout 1s") || !strings.Contains(eb.Error, "kqnode status") {
			t.Fatalf("a site that does not answer: exit %d, %+v; want %s", code, eb, codeClientTimeout)
		}
	})
}

// A remote site without pre-parameters used to be "refused" while the
// local one was "no_preparams": now both are no_preparams, the remote one
// naming the site.
func TestCLI_NoPreParamsSameCodeLocalAndRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 0)
	a, b := sites[0], sites[1]
	// Only a has a pre-parameter set.
	var res initResult
	c.ok(t, a.env(), &res, append([]string{"init", "--home", a.home, "--module", a.hsm.Module, "--token", a.token.Label,
		"--pin-source", "file:" + a.pinFile, "--preparams-fixtures", fixtureFile(0)}, testAdminArgs()...)...)
	if res.PreParamsReady != 1 {
		t.Fatalf("site a has %d pre-parameter sets, want 1", res.PreParamsReady)
	}
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writePeers(t, root, sites), testPolicyFile(t), sites)
	parties := fmt.Sprintf("%s,%s,%s", a.peerID, b.peerID, sites[2].peerID)

	remote := c.fails(t, nil, 1, codeNoPreParams, "keygen", "--home", a.home, "--threshold", "2", "--parties", parties)
	if len(remote.Parties) == 0 || slices.Contains(remote.Parties, a.peerID) {
		t.Fatalf("a remote site without pre-parameters: parties %v, want the sites that have none", remote.Parties)
	}
	local := c.fails(t, nil, 1, codeNoPreParams, "keygen", "--home", b.home, "--threshold", "2", "--parties", parties)
	if len(local.Parties) != 0 {
		t.Fatalf("this site without pre-parameters: parties %v, want none", local.Parties)
	}
}

// A site that is stopped (its port refuses connections) fails an operation
// that needs it at once, naming it, even with a send timeout longer than
// the client waits; it used to cost the whole send timeout.
func TestCLI_StoppedSiteFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("kqnode processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a, b, stopped := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	// c is never started: its port refuses.
	runSites(ctx, t, c, cluster, writePeers(t, root, sites), testPolicyFile(t), []*e2eSite{a, b},
		"--send-timeout", "1h", "--join-timeout", "1h")
	eb := c.fails(t, nil, 1, codeUnreachable, "keygen", "--home", a.home, "--threshold", "2",
		"--parties", a.peerID+","+b.peerID+","+stopped.peerID, "--timeout", "3m")
	if !slices.Equal(eb.Parties, []string{stopped.peerID}) || !strings.Contains(eb.Error, "refuse") {
		t.Fatalf("keygen with a stopped site: %+v; want unreachable naming %s, refused", eb, stopped.peerID)
	}
}

// Messages speak of the command line, not of the library under it.
func TestCLI_MessagesInCLITerms(t *testing.T) {
	s := newTestSite(t)

	code, out, _ := runCLI("init", "--home", filepath.Join(s.root, "new-home"), "--module", filepath.Join(s.root, "no-such-module.so"),
		"--token", s.token.Label, "--pin-source", "file:"+s.pinFile)
	var eb errorBody
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &eb); err != nil {
		t.Fatalf("init printed %q: %v", out, err)
	}
	if code != 1 || eb.Code != codeModuleNotFound || !strings.Contains(eb.Error, "check --module") || strings.Contains(eb.Error, "Config.") {
		t.Fatalf("init with a module that does not exist: exit %d, %+v; want %s telling to check --module", code, eb, codeModuleNotFound)
	}

	s.mustStart(t)
	_, err := s.start(t)
	if err == nil || !strings.Contains(err.Error(), "another process") || strings.Contains(err.Error(), "another user") {
		t.Fatalf("a second run on the same home: %v; want it to say another process holds the store", err)
	}
	if eb := errorJSON(err); eb.Code != codeStoreLocked {
		t.Fatalf("a second run on the same home: code %s, want %s", eb.Code, codeStoreLocked)
	}

	spaced := s.peerID + " " + s.peerID
	for _, args := range [][]string{
		{"keygen", "--home", s.home, "--threshold", "2", "--parties", spaced},
		{"sign", "--home", s.home, "--key", strings.Repeat("ab", 16), "--digest", strings.Repeat("cd", 32), "--signers", spaced},
		{"presign", "--home", s.home, "--key", strings.Repeat("ab", 16), "--count", "1", "--signers", spaced},
	} {
		code, eb, stderr := runClient(t, args...)
		if code != 2 || eb.Code != codeBadRequest || !strings.HasPrefix(stderr, "kqnode "+args[0]+": ") || !strings.Contains(stderr, "commas, not spaces") {
			t.Errorf("kqnode %s with peer IDs separated by spaces: exit %d, %+v, stderr %q; want a usage error saying comma-separated", args[0], code, eb, stderr)
		}
	}

	missing := filepath.Join(s.root, "no-such.psbt")
	code, eb, stderr := runClient(t, "sign-psbt", "--home", s.home, "--key", strings.Repeat("ab", 16), "--psbt", "@"+missing)
	if code != 2 || !strings.HasPrefix(stderr, "kqnode sign-psbt: --psbt @"+missing) {
		t.Errorf("sign-psbt with a missing @file: exit %d, %+v, stderr %q; want a usage error naming the command", code, eb, stderr)
	}
	code, _, stderr = runClient(t, "request", "create", "--home", s.home, "--key", strings.Repeat("ab", 16), "--tx", "@"+missing, "--chain-id", "1")
	if code != 2 || !strings.HasPrefix(stderr, "kqnode request create: --tx @"+missing) {
		t.Errorf("request create with a missing @file: exit %d, stderr %q; want a usage error naming the command", code, stderr)
	}
}

// TestClassify_RemoteNotRecordedIsAnAuditFailure: another site that used
// presignatures but could not record their use in its audit log refuses
// with tss's code not_recorded; the client reports it with the code of
// this site's own audit failure, naming that site, not as a generic
// refusal.
func TestClassify_RemoteNotRecordedIsAnAuditFailure(t *testing.T) {
	ref := &tss.RefusedError{Party: "QmOtherSite", Code: refusalNotRecorded, Reason: "presignature use not recorded"}
	if !errors.Is(ref, tss.ErrNotRecorded) {
		t.Fatalf("refusal code %q is not tss's code of ErrNotRecorded", refusalNotRecorded)
	}
	remote := fmt.Errorf("keyquorum: sign: %w", ref)
	code, status, parties := classify(remote)
	if code != codeAudit || status != 503 || !slices.Equal(parties, []string{"QmOtherSite"}) {
		t.Errorf("remote not_recorded: %s %d %v; want %s 503 [QmOtherSite]", code, status, parties, codeAudit)
	}
	local := fmt.Errorf("%w: disk full", keyquorum.ErrAudit)
	if code, status, parties := classify(local); code != codeAudit || status != 503 || parties != nil {
		t.Errorf("local audit failure: %s %d %v; want %s 503 and no parties", code, status, parties, codeAudit)
	}
}
