package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testLimits are short enough for tests to outwait.
var testLimits = apiLimits{Conns: 2, BusyConns: 1, Busy: 500 * time.Millisecond,
	ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Idle: 300 * time.Millisecond, Write: time.Second}

// serveTestAPI serves the API of a site without a node (every request
// without an operator's signature gets 401) on the home's socket, or on
// loopback TCP when tcp is set, and returns a dialer for raw connections
// (TLS completed on TCP); tryDial returns the handshake's error instead
// of failing the test.
func serveTestAPI(t *testing.T, tcp bool) (dial func(t *testing.T) net.Conn, tryDial func(t *testing.T) (net.Conn, error)) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	addr := ""
	if tcp {
		addr = "127.0.0.1:0"
	}
	ln, info, err := listenAPI(home{dir: t.TempDir()}, addr, testLimits, logger)
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t)
	s.log, s.writeTimeout = logger, testLimits.Write
	srv := newAPIServer(s.handler(), ln, testLimits, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	tryDial = func(t *testing.T) (net.Conn, error) {
		t.Helper()
		c, err := net.DialTimeout(info.Network, info.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !tcp {
			return c, nil
		}
		tc := tls.Client(c, pinnedTLS(info.TLSPin))
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		tc.SetDeadline(time.Time{})
		return tc, err
	}
	dial = func(t *testing.T) net.Conn {
		t.Helper()
		c, err := tryDial(t)
		if err != nil {
			t.Fatalf("TLS with the pinned key: %v", err)
		}
		return c
	}
	return dial, tryDial
}

// ask sends a status request on c and returns the answer's status and
// error code, or the error reading it.
func ask(c net.Conn) (int, string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: kqnode\r\n\r\n"); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var eb errorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Code, nil
}

// TestAPI_StalledConnectionsGiveTheirPlaceBack: connections that take the
// API's places and then send nothing (or half a request) are closed after
// the read timeouts; meanwhile others are answered 503 busy, or closed when
// even the busy answers are all taken; afterwards the API serves again.
func TestAPI_StalledConnectionsGiveTheirPlaceBack(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "unix", true: "tcp+tls"}[tcp], func(t *testing.T) {
			dial, tryDial := serveTestAPI(t, tcp)
			silent := dial(t) // sends nothing
			defer silent.Close()
			half := dial(t) // sends half a request
			defer half.Close()
			io.WriteString(half, "POST /v1/sign HTTP/1.1\r\nHost: kqnode\r\nContent-Length: 100\r\n\r\n{\"key")
			time.Sleep(50 * time.Millisecond)

			over := dial(t)
			defer over.Close()
			if status, code, err := ask(over); err != nil || status != http.StatusServiceUnavailable || code != codeBusy {
				t.Fatalf("connection over the limit: %d %q %v; want 503 busy", status, code, err)
			}
			// The busy server closes it after the answer, and gives its
			// place back before it does: wait for the close.
			over.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(over); err != nil {
				t.Fatalf("the busy answer's connection was not closed: %v", err)
			}
			// Hold the one busy answer's place, then one more connection
			// is closed without an answer.
			holdBusy := dial(t)
			defer holdBusy.Close()
			time.Sleep(50 * time.Millisecond)
			dropped, err := tryDial(t)
			defer dropped.Close()
			if err == nil {
				if status, _, err := ask(dropped); err == nil {
					t.Fatalf("connection over the limit and the busy limit answered %d", status)
				}
			}

			// The stalled ones are closed by the server...
			for name, c := range map[string]net.Conn{"silent": silent, "half a request": half} {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				start := time.Now()
				_, err := io.ReadAll(c)
				if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
					t.Errorf("%s connection: %v; want it closed by the server", name, err)
				}
				t.Logf("%s connection closed by the server after another %v", name, time.Since(start).Round(time.Millisecond))
			}
			// ... and the API serves again.
			again := dial(t)
			defer again.Close()
			if status, code, err := ask(again); err != nil || status != http.StatusUnauthorized || code != codeUnauthenticated {
				t.Fatalf("after the stalled connections: %d %q %v; want 401 from the API", status, code, err)
			}
		})
	}
}

// TestAPI_IdleKeepAliveGivesItsPlaceBack: a kept-alive connection that
// sends no next request is closed after the idle timeout.
func TestAPI_IdleKeepAliveGivesItsPlaceBack(t *testing.T) {
	dial, _ := serveTestAPI(t, false)
	var conns []net.Conn
	for range testLimits.Conns {
		c := dial(t)
		defer c.Close()
		if status, _, err := ask(c); err != nil || status != http.StatusUnauthorized {
			t.Fatalf("first request: %d %v", status, err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("idle kept-alive connection: %v; want it closed by the server", err)
		}
	}
	c := dial(t)
	defer c.Close()
	if status, _, err := ask(c); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("after the idle connections: %d %v", status, err)
	}
}

// TestPinnedTLS_RefusesOtherKey: the client's TLS refuses a server with
// another key, even one with the same certificate fields.
func TestPinnedTLS_RefusesOtherKey(t *testing.T) {
	cfg, pin, err := newAPIIdentity()
	if err != nil {
		t.Fatal(err)
	}
	other, otherPin, err := newAPIIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if pin == otherPin || !strings.HasPrefix(pin, "sha256//") {
		t.Fatalf("pins %q and %q", pin, otherPin)
	}
	for _, tc := range []struct {
		server *tls.Config
		ok     bool
	}{{cfg, true}, {other, false}} {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", tc.server)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), pinnedTLS(pin))
		ln.Close()
		if tc.ok && err != nil {
			t.Errorf("the pinned key refused: %v", err)
		}
		if !tc.ok && !errors.Is(err, errServerNotAuthenticated) {
			t.Errorf("another key: %v; want errServerNotAuthenticated", err)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestAPI_UnreadAnswerTimesOut: a client that sends a request and never
// reads the answer holds its connection only for the write timeout.
func TestAPI_UnreadAnswerTimesOut(t *testing.T) {
	ln, info, err := listenAPI(home{dir: t.TempDir()}, "", testLimits, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t)
	s.writeTimeout = testLimits.Write
	wrote := make(chan error, 1)
	big := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An answer far larger than the socket's buffers.
		chunk := make([]byte, 1<<20)
		for range 256 {
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}))
	srv := newAPIServer(big, ln, testLimits, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial(info.Network, info.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := signedRequest(t, testAdmin.signer, testSiteID, http.MethodGet, pathStatus, "")
	req.Host = "kqnode"
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("256 MiB were written to a client that reads nothing")
		}
		t.Logf("the answer's write failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the answer's write to a client that reads nothing still blocks after 30 s")
	}
}
