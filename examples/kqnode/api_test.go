package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
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
		// Another site's refusal for a condition with its own code gets
		// that code, naming the site; its policy's refusal stays refused.
		{fmt.Errorf("x: %w", &tss.RefusedError{Party: "QmF", Code: "no_preparams"}), codeNoPreParams, 409, []string{"QmF"}},
		{&tss.RefusedError{Party: "QmG", Code: "unknown_key"}, codeUnknownKey, 404, []string{"QmG"}},
		{&tss.RefusedError{Party: "QmH", Code: "policy"}, codeRefused, 502, []string{"QmH"}},
		{fmt.Errorf("x: %w", tss.ErrUnknownKey), codeUnknownKey, 404, nil},
		{fmt.Errorf("x: %w", tss.ErrNoPresignature), codeNoPresignature, 409, nil},
		{fmt.Errorf("x: %w", tss.ErrNoPreParams), codeNoPreParams, 409, nil},
		{fmt.Errorf("x: %w", wallet.ErrInvalidPSBT), codeBadRequest, 400, nil},
		{fmt.Errorf("x: %w", tss.ErrBadRequest), codeBadRequest, 400, nil},
		{fmt.Errorf("x: %w", hsmshare.ErrInvalidName), codeBadRequest, 400, nil},
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

// TestAPI_RefusesUnsignedRequests checks that the API answers nothing but
// 401 to a request that is not signed by an operator, bearer tokens of
// earlier versions included; the handler never reaches the node (which is
// nil here and would panic).
func TestAPI_RefusesUnsignedRequests(t *testing.T) {
	h := authServer(t).handler()
	for _, auth := range []string{"", "Bearer", "Bearer " + strings.Repeat("0", 64), "KQ-SSHSIG", "KQ-SSHSIG AAAA", "Basic right-token"} {
		for _, path := range []string{pathStatus, pathSign, pathKeygen, "/v1/unknown"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), codeUnauthenticated) {
				t.Errorf("%s with %q: %d %s", path, auth, rec.Code, rec.Body.String())
			}
		}
	}
}

// TestAPI_UnknownRoutesAnswerJSON: signed by an admin, an unknown path is 404
// and a wrong method 405, each with the JSON error body every client
// decodes; neither reaches the node (nil here).
func TestAPI_UnknownRoutesAnswerJSON(t *testing.T) {
	h := authServer(t).handler()
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/v1/unknown", http.StatusNotFound, codeNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, codeNotFound, ""},
		{http.MethodPost, "/v2/sign", http.StatusNotFound, codeNotFound, ""},
		{http.MethodGet, pathSign, http.StatusMethodNotAllowed, codeBadRequest, http.MethodPost},
		{http.MethodDelete, pathKeygen, http.StatusMethodNotAllowed, codeBadRequest, http.MethodPost},
		{http.MethodPost, pathStatus, http.StatusMethodNotAllowed, codeBadRequest, http.MethodGet},
	} {
		req := signedRequest(t, testAdmin.signer, testSiteID, tc.method, tc.path, "")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var eb errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || rec.Code != tc.status || eb.Code != tc.code ||
			eb.Error == "" || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q (Allow %q, %v); want %d with code %s", tc.method, tc.path, rec.Code, rec.Body.String(),
				rec.Header().Get("Allow"), err, tc.status, tc.code)
		}
	}
}

// TestAPI_RefusesOversizedBody: a body over maxRequestBody is refused with
// 400 while it is read, before the node sees it.
func TestAPI_RefusesOversizedBody(t *testing.T) {
	h := authServer(t).handler()
	body := `{"key_id":"` + strings.Repeat("a", maxRequestBody) + `"}`
	req := signedRequest(t, testAdmin.signer, testSiteID, http.MethodPost, pathSign, body)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb errorBody
	json.Unmarshal(rec.Body.Bytes(), &eb)
	if rec.Code != http.StatusBadRequest || eb.Code != codeBadRequest || !strings.Contains(eb.Error, "too large") {
		t.Errorf("a %d-byte body: %d %+v", len(body), rec.Code, eb)
	}
}

// TestCheckKeyID: what the API accepts as a key ID.
func TestCheckKeyID(t *testing.T) {
	for _, ok := range []string{strings.Repeat("0", 16), strings.Repeat("f", 64), "0123456789abcdef0123456789abcdef"} {
		if err := checkKeyID(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("0", 15), strings.Repeat("0", 65), strings.Repeat("A", 32), "../" + strings.Repeat("0", 16),
		strings.Repeat("0", 15) + "g", strings.Repeat("0", 15) + "\x00", strings.Repeat("0", 15) + "é"} {
		if err := checkKeyID(bad); !errors.Is(err, errBadRequest) {
			t.Errorf("%q: %v; want errBadRequest", bad, err)
		}
	}
}
