package main

// Attacks by another user on the site's host: getting a signed control-API
// request, swapping the files the site trusts, flooding the API.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClient_DoesNotSendTokenToImpostor: the site crashed and left
// api.json behind; another user's program took its TCP port. The client
// must find out that it does not talk to the site before it sends a
// signed request (which the program could replay within its window).
func TestClient_DoesNotSendTokenToImpostor(t *testing.T) {
	s := newTestSite(t)
	attacker := anyOtherProcess(t)
	r := s.mustStart(t, "--api", "127.0.0.1:0")
	// The client talks to the site itself over TLS with the pinned key.
	if code, eb, stderr := runClient(t, "status", "--home", s.home); code != 0 {
		t.Fatalf("status over TCP: %d %+v %s", code, eb, stderr)
	}
	left, err := os.ReadFile(filepath.Join(s.home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal(left, &api); err != nil {
		t.Fatal(err)
	}
	// A crash: the process is gone, api.json stays.
	r.stop(t)
	if err := os.WriteFile(filepath.Join(s.home, apiFile), left, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := attacker.command(ctx, "impostor", api.Addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "listening" {
			t.Fatalf("impostor: %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the impostor did not listen")
	}

	code, eb, stderr := runClient(t, "status", "--home", s.home)
	cancel()
	var seen []string
	for l := range lines {
		if strings.HasPrefix(l, "auth: ") && l != "auth: " {
			seen = append(seen, l)
		}
	}
	if len(seen) > 0 {
		t.Errorf("the client sent its credentials to the program on the crashed site's port (uid %d): %q", attacker.uid, seen)
	}
	if code != 1 || eb.Code != codeNotAuthenticated || !strings.Contains(stderr, api.Addr) {
		t.Errorf("status against an impostor: exit %d, %+v, stderr %q; want %s naming %s", code, eb, stderr, codeNotAuthenticated, api.Addr)
	}
	t.Logf("the client said: %s", eb.Error)
}

// TestClient_ChecksSocketServerUID: the client sends a signed request
// (which could be replayed within its time window) over the
// home's socket only to a server of its own uid. (Other users cannot put a
// socket into a safe home; here root moves one made by uid 65534 there, as
// a stand-in for any way a foreign socket could get there.)
func TestClient_ChecksSocketServerUID(t *testing.T) {
	u := asOtherUser(t)
	s := newTestSite(t)
	r := s.mustStart(t)
	endpoint, err := os.ReadFile(filepath.Join(s.home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	if err := os.WriteFile(filepath.Join(s.home, apiFile), endpoint, 0o600); err != nil {
		t.Fatal(err)
	}

	// The other user's socket, made in a directory of its own.
	dir, err := os.MkdirTemp(filepath.Dir(s.root), "other-")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(s.root), dir} {
		chmod(t, d, 0o755)
	}
	if err := os.Chown(dir, u.uid, u.uid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := u.command(ctx, "impostor", "unix:"+filepath.Join(dir, "sock"))
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other user's server did not listen")
		}
	}
	if err := os.Rename(filepath.Join(dir, "sock"), filepath.Join(s.home, apiSocket)); err != nil {
		t.Fatal(err)
	}

	code, eb, stderr := runClient(t, "status", "--home", s.home)
	cancel()
	cmd.Wait()
	if strings.Contains(out.String(), "auth: "+apiAuthScheme) {
		t.Errorf("the client sent a signed request to a server of uid %d: %s", u.uid, out.String())
	}
	if code != 1 || eb.Code != codeNotAuthenticated || !strings.Contains(eb.Error, "uid 65534") {
		t.Errorf("status against another user's socket: exit %d, %+v, stderr %q", code, eb, stderr)
	}
}

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

// TestClient_RefusesUnsafeEndpointFile: the client reads where to send
// its requests from the endpoint file only when it is the user's own, closed
// to others and no symlink.
func TestClient_RefusesUnsafeEndpointFile(t *testing.T) {
	s := newTestSite(t)
	s.mustStart(t)
	p := filepath.Join(s.home, apiFile)
	chmod(t, p, 0o644)
	code, eb, stderr := runClient(t, "status", "--home", s.home)
	if code != 1 || !strings.Contains(stderr, p) || !strings.Contains(stderr, "chmod 600 "+p) {
		t.Errorf("status with a world-readable %s: exit %d, %+v, stderr %q", apiFile, code, eb, stderr)
	}
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

// TestAPI_ConnectionLimit: connections beyond the limit are answered at
// once with 503 busy and closed, and the API serves again once
// connections are given back.
func TestAPI_ConnectionLimit(t *testing.T) {
	limit := defaultAPILimits.Conns
	s := newTestSite(t)
	s.mustStart(t)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range limit {
		held = append(held, dialAPI(t, s.home))
	}
	// Let the server accept them all.
	time.Sleep(200 * time.Millisecond)
	c := dialAPI(t, s.home)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: kqnode\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection %d: %v; want 503 busy", limit+1, err)
	}
	var eb errorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Code != codeBusy {
		t.Fatalf("connection %d: %d %+v; want 503 busy", limit+1, resp.StatusCode, eb)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, eb, stderr := runClient(t, "status", "--home", s.home)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the connections were closed: %d %+v %s", code, eb, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dialAPI connects to the site's control API as api.json says.
func dialAPI(t *testing.T, home string) net.Conn {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Network string `json:"network"`
		Addr    string `json:"addr"`
	}
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatal(err)
	}
	network := api.Network
	if network == "" {
		network = "tcp"
	}
	c, err := net.DialTimeout(network, api.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
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

// TestAPI_OtherUserCannotConnect: the API socket is closed to other users
// twice over: its mode (0600 in the 0700 home) keeps them from connecting,
// and if the modes are opened up by mistake the server still drops their
// connections (SO_PEERCRED) before reading a byte.
func TestAPI_OtherUserCannotConnect(t *testing.T) {
	u := asOtherUser(t)
	s := newTestSite(t)
	r := s.mustStart(t)
	sock := filepath.Join(s.home, apiSocket)
	if r.ready.API != "unix:"+sock {
		t.Fatalf("ready line API %q, want unix:%s", r.ready.API, sock)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v; want a socket with mode 0600", sock, fi.Mode(), err)
	}

	var res struct {
		Dial   string `json:"dial"`
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal([]byte(u.run(t, "dial-unix", sock, "")), &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Dial, "permission denied") {
		t.Errorf("uid %d connecting to %s: %+v; want permission denied", u.uid, sock, res)
	}

	// Open the way: the home and its parents to everyone, the socket too.
	for _, d := range []string{filepath.Dir(s.root), s.root, s.home} {
		chmod(t, d, 0o755)
	}
	chmod(t, sock, 0o777)
	if err := json.Unmarshal([]byte(u.run(t, "dial-unix", sock, "")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Dial != "" || res.Status != 0 || res.Error == "" {
		t.Errorf("uid %d connecting to an opened-up %s: %+v; want the connection dropped without an answer", u.uid, sock, res)
	}
	if !strings.Contains(r.log.String(), "refused a connection from another user") || !strings.Contains(r.log.String(), "uid=65534") {
		t.Errorf("the site did not log the refused connection:\n%s", r.log)
	}
	// The site's own user is still served.
	if code, eb, stderr := runClient(t, "status", "--home", s.home); code != 0 {
		t.Errorf("status: %d %+v %s", code, eb, stderr)
	}
}

// TestRun_StaleSocket: a socket a crashed run left in the home is removed
// at the next start; anything else in its place stops the start and is
// left alone.
func TestRun_StaleSocket(t *testing.T) {
	s := newTestSite(t)
	sock := filepath.Join(s.home, apiSocket)
	leaveStaleSocket := func(t *testing.T) {
		t.Helper()
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
	}

	t.Run("stale socket", func(t *testing.T) {
		leaveStaleSocket(t)
		r := s.mustStart(t)
		if code, eb, stderr := runClient(t, "status", "--home", s.home); code != 0 {
			t.Errorf("status after a start over a stale socket: %d %+v %s", code, eb, stderr)
		}
		r.stop(t)
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the socket outlived the site: %v", err)
		}
	})
	t.Run("live socket", func(t *testing.T) {
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if _, err := s.start(t); !errors.Is(err, errAPIInUse) {
			t.Errorf("start with a live socket in the home: %v; want errAPIInUse", err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		if err := os.WriteFile(sock, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(sock)
		_, err := s.start(t)
		if !errors.Is(err, errUnsafeFile) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("start with a file at %s: %v", apiSocket, err)
		}
		if b, _ := os.ReadFile(sock); string(b) != "keep me" {
			t.Errorf("the file at %s was changed", apiSocket)
		}
	})
	t.Run("another user's socket", func(t *testing.T) {
		asOtherUser(t)
		leaveStaleSocket(t)
		defer os.Remove(sock)
		if err := os.Lchown(sock, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		_, err := s.start(t)
		if !errors.Is(err, errUnsafeFile) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("start with another user's socket: %v", err)
		}
		if _, err := os.Lstat(sock); err != nil {
			t.Errorf("another user's socket was removed: %v", err)
		}
	})
}

// TestRun_OldTokenGrantsNothing: the token file of earlier versions is
// removed at start, and a request carrying it (or any bearer token) is
// refused; the same request signed by an operator is answered.
func TestRun_OldTokenGrantsNothing(t *testing.T) {
	s := newTestSite(t)
	legacy := filepath.Join(s.home, legacyTokenFile)
	old := strings.Repeat("7", 64)
	if err := os.WriteFile(legacy, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustStart(t)
	if _, err := os.Lstat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s of an earlier version survived a start: %v", legacyTokenFile, err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(s.home, apiSocket))
	}}}
	bearer, _ := http.NewRequest(http.MethodGet, "http://kqnode"+pathStatus, nil)
	bearer.Header.Set("Authorization", "Bearer "+old)
	signed, _ := http.NewRequest(http.MethodGet, "http://kqnode"+pathStatus, nil)
	signHeaders(t, signed, testAdmin.signer, s.peerID, nil)
	for name, tc := range map[string]struct {
		req  *http.Request
		want int
	}{"old token": {bearer, http.StatusUnauthorized}, "signed": {signed, http.StatusOK}} {
		resp, err := c.Do(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want != http.StatusOK && eb.Code != codeUnauthenticated) {
			t.Errorf("%s: %d %+v, want %d", name, resp.StatusCode, eb, tc.want)
		}
	}
}
