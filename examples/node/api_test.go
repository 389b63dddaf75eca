package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
)

func TestLoopbackAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.1:7700", "127.1.2.3:80", "[::1]:7700"} {
		if err := loopbackAddr(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:7700", "[::]:7700", "192.0.2.1:7700", "localhost:7700", ":7700", "7700",
		"127.0.0.1", "127.0.0.1:http-alt-x", "[::ffff:192.0.2.1]:7700", ""} {
		if err := loopbackAddr(bad); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%q accepted or unclear: %v", bad, err)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err     error
		code    string
		status  int
		parties []string
	}{
		{fmt.Errorf("x: %w", &tss.RoundTimeoutError{Parties: []tss.PartyID{"QmB"}}), codeTimeout, 504, []string{"QmB"}},
		{fmt.Errorf("x: %w", &tss.UnreachableError{Parties: []tss.PartyID{"QmC"}}), codeUnreachable, 504, []string{"QmC"}},
		{&tss.RefusedError{Party: "QmD", Reason: "policy"}, codeRefused, 502, []string{"QmD"}},
		{&tss.CulpritError{Parties: []tss.PartyID{"QmE"}}, codeCulprit, 502, []string{"QmE"}},
		{fmt.Errorf("x: %w", tss.ErrUnknownKey), codeUnknownKey, 404, nil},
		{fmt.Errorf("x: %w", tss.ErrNoPresignature), codeNoPresignature, 409, nil},
		{fmt.Errorf("x: %w", tss.ErrNoPreParams), codeNoPreParams, 409, nil},
		{fmt.Errorf("x: %w", wallet.ErrInvalidPSBT), codeBadRequest, 400, nil},
		{fmt.Errorf("x: %w", tss.ErrBadRequest), codeBadRequest, 400, nil},
		{fmt.Errorf("x: %w", keyquorum.ErrClosed), codeUnavailable, 503, nil},
		{errors.New("disk on fire"), codeInternal, 500, nil},
	}
	for _, tc := range cases {
		code, status, parties := classify(tc.err)
		if code != tc.code || status != tc.status || fmt.Sprint(parties) != fmt.Sprint(tc.parties) {
			t.Errorf("%v: %s %d %v, want %s %d %v", tc.err, code, status, parties, tc.code, tc.status, tc.parties)
		}
	}
}

// TestAPI_RefusesWithoutToken checks that the API answers nothing but 401
// to a request without the right token; the handler never reaches the
// node (which is nil here and would panic).
func TestAPI_RefusesWithoutToken(t *testing.T) {
	s := &server{log: slog.New(slog.DiscardHandler), tokenSum: sha256.Sum256([]byte("right-token"))}
	h := s.handler()
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-token", "bearer right-token", "Basic right-token", "Bearer right-token "} {
		for _, path := range []string{pathStatus, pathSign, pathKeygen, "/v1/unknown"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), codeUnauthorized) {
				t.Errorf("%s with %q: %d %s", path, auth, rec.Code, rec.Body.String())
			}
		}
	}
	// With the token, unknown paths and methods are plain 404/405.
	req := httptest.NewRequest(http.MethodGet, pathSign, nil)
	req.Header.Set("Authorization", "Bearer right-token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d", pathSign, rec.Code)
	}
}
