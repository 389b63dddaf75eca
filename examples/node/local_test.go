package main

// Attacks by another user on the site's host: stealing the control API's
// token, swapping the files the site trusts, flooding the API.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_RefusesUnsafeHome: every file the site trusts (the home and its
// parents, config.json, store/, the PIN file, the peer file) must be the
// site user's own and closed to others, and no symlink; else run stops
// before it reads them, with an error that names the file and the fix.
func TestRun_RefusesUnsafeHome(t *testing.T) {
	cases := []struct {
		name string
		// setup changes the site; want are substrings of the error.
		setup func(t *testing.T, s *testSite) []string
	}{
		{"home writable by everyone, config.json swapped by another user", func(t *testing.T, s *testSite) []string {
			u := asOtherUser(t)
			chmod(t, s.home, 0o777)
			// Let the other user reach the home (t.TempDir makes 0700 directories).
			chmod(t, s.root, 0o755)
			chmod(t, filepath.Dir(s.root), 0o755)
			cfg, err := os.ReadFile(filepath.Join(s.home, configFile))
			if err != nil {
				t.Fatal(err)
			}
			evil := strings.Replace(string(cfg), s.hsm.Module, "/tmp/attacker/pkcs11.so", 1)
			u.run(t, "write-file", filepath.Join(s.home, configFile), evil)
			return []string{s.home, "writable by", "chmod 700 " + s.home}
		}},
		{"home writable by its group", func(t *testing.T, s *testSite) []string {
			chmod(t, s.home, 0o770)
			return []string{s.home, "writable by", "chmod 700 " + s.home}
		}},
		{"config.json writable by its group", func(t *testing.T, s *testSite) []string {
			p := filepath.Join(s.home, configFile)
			chmod(t, p, 0o660)
			return []string{p, "writable by", "chmod 600 " + p}
		}},
		{"config.json a symlink", func(t *testing.T, s *testSite) []string {
			p := filepath.Join(s.home, configFile)
			elsewhere := filepath.Join(s.root, "config-elsewhere.json")
			if err := os.Rename(p, elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, p); err != nil {
				t.Fatal(err)
			}
			return []string{p, "symlink"}
		}},
		{"config.json owned by another user", func(t *testing.T, s *testSite) []string {
			asOtherUser(t)
			p := filepath.Join(s.home, configFile)
			if err := os.Chown(p, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return []string{p, "owned by uid 65534"}
		}},
		{"store writable by everyone", func(t *testing.T, s *testSite) []string {
			p := filepath.Join(s.home, storeDirName)
			chmod(t, p, 0o777)
			return []string{p, "writable by", "chmod 700 " + p}
		}},
		{"PIN file readable by its group", func(t *testing.T, s *testSite) []string {
			chmod(t, s.pinFile, 0o640)
			return []string{s.pinFile, "readable by", "chmod 600 " + s.pinFile}
		}},
		{"PIN file a symlink", func(t *testing.T, s *testSite) []string {
			elsewhere := filepath.Join(s.root, "pin-elsewhere")
			if err := os.Rename(s.pinFile, elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, s.pinFile); err != nil {
				t.Fatal(err)
			}
			return []string{s.pinFile, "symlink"}
		}},
		{"peer file writable by everyone", func(t *testing.T, s *testSite) []string {
			chmod(t, s.peers, 0o666)
			return []string{s.peers, "writable by", "chmod 600 " + s.peers}
		}},
		{"home's parent writable by everyone without the sticky bit", func(t *testing.T, s *testSite) []string {
			chmod(t, s.root, 0o777)
			return []string{s.root, "writable by", "sticky"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSite(t)
			want := tc.setup(t, s)
			_, err := s.start(t)
			if err == nil {
				t.Fatalf("run started on an unsafe home (%s)", tc.name)
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, errUnsafeFile) {
				t.Errorf("the error does not wrap errUnsafeFile: %v", err)
			}
			if eb := errorJSON(err); eb.Code != codeUnsafeFile {
				t.Errorf("--json code %q, want %q", eb.Code, codeUnsafeFile)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "/tmp/attacker") {
				t.Errorf("run read the attacker's config.json: %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.home, apiFile)); err == nil {
				t.Errorf("a refused start wrote %s", apiFile)
			}
		})
	}
}

// TestRun_AcceptsStickyParent: a home in a directory everyone can write to
// but with the sticky bit (like /tmp) is safe: others cannot rename or
// remove what they do not own.
func TestRun_AcceptsStickyParent(t *testing.T) {
	s := newTestSite(t)
	chmod(t, s.root, 0o1777)
	s.mustStart(t)
}

// TestAPI_InvalidKeyIDIsBadRequest: key IDs that are not 16 to 64
// lowercase hex digits are the caller's mistake (400 bad_request), never a
// 500 from the store refusing them as file names.
func TestAPI_InvalidKeyIDIsBadRequest(t *testing.T) {
	s := newTestSite(t)
	s.mustStart(t)
	digest := strings.Repeat("ab", 32)
	for _, id := range []string{"zz", "../../../etc/passwd", ".", "..", "lock", strings.Repeat("A", 32),
		strings.Repeat("0", 15), strings.Repeat("0", 65), "0123456789abcdef/0", "0123456789abcdef\x00"} {
		code, eb, stderr := runClient(t, "sign", "--home", s.home, "--key", id, "--digest", digest)
		if code != 1 || eb.Code != codeBadRequest {
			t.Errorf("sign --key %q: exit %d, code %q (%s); want bad_request", id, code, eb.Code, stderr)
		}
		code, eb, stderr = runClient(t, "presign", "--home", s.home, "--key", id, "--count", "1")
		if code != 1 || eb.Code != codeBadRequest {
			t.Errorf("presign --key %q: exit %d, code %q (%s); want bad_request", id, code, eb.Code, stderr)
		}
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if mode&0o1000 != 0 {
		mode = mode&0o777 | os.ModeSticky
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
