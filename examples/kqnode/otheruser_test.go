package main

// Another user on the site's host, for the attack tests: the test binary
// runs itself again as uid/gid 65534 (nobody) through
// SysProcAttr.Credential, which needs root and no user account, and plays
// one of the roles below instead of testing.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUID is the uid (and gid) the attacker runs as.
const otherUID = 65534

// envRole makes the test binary play a role instead of testing.
const envRole = "KQNODE_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(playRole(role, os.Args[len(os.Args)-1]))
	}
	dir, err := os.MkdirTemp("", "kqnode-operators-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Every client the tests run, in this process or as kqnode
	// processes, signs as the admin every test site is set up with.
	testAdmin, err = writeOperatorKey(dir, "admin")
	if err == nil {
		err = os.Setenv(envOperatorKey, testAdmin.key)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// playRole runs a role with its one argument and returns the exit status.
func playRole(role, arg string) int {
	var err error
	switch role {
	case "impostor":
		err = impostor(arg)
	case "dial-unix":
		err = dialUnix(arg)
	case "write-file":
		err = writeAs(arg)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// impostor listens on addr (host:port, or unix:PATH), as a program of
// another user that took the port of a crashed site would, and prints
// "auth: <header>" for every Authorization header a client sends it, over
// plain HTTP or over TLS with a certificate of its own. It prints
// "listening" once it listens and runs until killed.
func impostor(addr string) error {
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	if network == "unix" {
		os.Chmod(addr, 0o777)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			var conn io.ReadWriter = struct {
				io.Reader
				io.Writer
			}{br, c}
			if first, err := br.Peek(1); err == nil && first[0] == 0x16 { // a TLS handshake record
				tc := tls.Server(&peekedConn{Conn: c, r: br}, cfg)
				if tc.Handshake() != nil {
					fmt.Println("tls handshake failed")
					return
				}
				conn = tc
			}
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err != nil {
				return
			}
			fmt.Printf("auth: %s\n", req.Header.Get("Authorization"))
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
		}()
	}
}

// peekedConn reads through the bufio.Reader that peeked at the first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialUnix connects to the Unix socket at path, sends a status request with
// a made-up token and prints one JSON line: {"dial": error or "", "status":
// the HTTP status or 0, "error": the read error or ""}.
func dialUnix(path string) error {
	var out struct {
		Dial   string `json:"dial"`
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	defer func() { json.NewEncoder(os.Stdout).Encode(out) }()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		out.Dial = err.Error()
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: kqnode\r\nAuthorization: Bearer "+strings.Repeat("0", 64)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		out.Error = err.Error()
		return nil
	}
	resp.Body.Close()
	out.Status = resp.StatusCode
	return nil
}

// writeAs writes stdin to the file named by arg through a temporary file
// and a rename, as another user replacing a file in a directory it can
// write to would.
func writeAs(path string) error {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), ".swap")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// otherUser runs roles of the test binary as another user.
type otherUser struct {
	exe string // a copy of the test binary that uid 65534 can execute
	uid int
}

// asOtherUser prepares to run roles as uid 65534, or skips the test when
// it does not run as root (only root can start a process as another user).
func asOtherUser(t *testing.T) *otherUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacker runs as uid 65534 through SysProcAttr.Credential, which only root may set")
	}
	return newOtherUser(t, otherUID)
}

// anyOtherProcess is asOtherUser when the test runs as root, and else a
// process of the test's own user: for attacks that work whatever the
// attacker's uid (a port is anyone's once it is free).
func anyOtherProcess(t *testing.T) *otherUser {
	t.Helper()
	if os.Geteuid() == 0 {
		return newOtherUser(t, otherUID)
	}
	t.Logf("not root: the attacker runs as this test's uid %d instead of %d", os.Geteuid(), otherUID)
	return newOtherUser(t, os.Geteuid())
}

func newOtherUser(t *testing.T, uid int) *otherUser {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary sits in the go command's 0700 work directory: link
	// (or copy) it into a directory everyone can enter.
	dir, err := os.MkdirTemp("", "kqnode-other-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "kqnode.test")
	if err := os.Link(self, exe); err != nil {
		if err := copyFile(self, exe); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	return &otherUser{exe: exe, uid: uid}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// command returns the command that plays role with arg as the other user.
func (u *otherUser) command(ctx context.Context, role, arg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, u.exe, "-test.run=^$", arg)
	cmd.Env = append(os.Environ(), envRole+"="+role)
	cmd.Dir = "/"
	if u.uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.uid), Groups: []uint32{}}}
	}
	return cmd
}

// run plays role to the end and returns its stdout.
func (u *otherUser) run(t *testing.T, role, arg string, stdin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := u.command(ctx, role, arg)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s as uid %d: %v: %s", role, u.uid, err, stderr.String())
	}
	return string(out)
}

// tryRun is run for a role that may fail: it returns stdout, stderr and
// the error.
func (u *otherUser) tryRun(t *testing.T, role, arg string, stdin string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := u.command(ctx, role, arg)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}
