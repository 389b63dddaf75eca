package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// rolesServer is an authServer with one operator per role set: admin,
// requester, approver.
func rolesServer(t *testing.T) (*server, map[string]opKeyFiles) {
	t.Helper()
	dir := t.TempDir()
	keys := map[string]opKeyFiles{}
	var ops []*operator
	for name, roles := range map[string][]string{"alice": {roleAdmin}, "bob": {roleRequester}, "carol": {roleApprover}} {
		k, err := writeOperatorKey(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := os.ReadFile(k.pub)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
		ops = append(ops, &operator{Name: name, Key: string(pub), Roles: roles})
	}
	return authServer(t, ops...), keys
}

// call sends a signed request through the handler and returns its answer.
func call(t *testing.T, h http.Handler, req *http.Request) (int, errorBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb errorBody
	json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec.Code, eb
}

// TestAPI_RolesDecideWhatAnOperatorMayDo: each operator may use only the
// routes of its roles; a route without a role of its own is admin only.
// The body "{\"x\":1}" is refused by every handler's decoder, so a request
// that passes authentication answers bad_request without reaching the
// node (nil here).
func TestAPI_RolesDecideWhatAnOperatorMayDo(t *testing.T) {
	s, keys := rolesServer(t)
	h := s.handler()
	for _, tc := range []struct {
		who, method, path string
		want              string
	}{
		{"bob", http.MethodPost, pathKeygen, codeForbidden},
		{"bob", http.MethodPost, pathRequestsApprove, codeForbidden},
		{"bob", http.MethodPost, pathOperators, codeForbidden},
		{"bob", http.MethodPost, pathRequests, codeBadRequest},
		{"bob", http.MethodPost, pathSign, codeBadRequest},
		{"carol", http.MethodPost, pathRequests, codeForbidden},
		{"carol", http.MethodPost, pathSign, codeForbidden},
		{"carol", http.MethodPost, pathOperators, codeForbidden},
		{"carol", http.MethodPost, pathKeygen, codeForbidden},
		{"carol", http.MethodPost, pathRequestsApprove, codeBadRequest},
		{"alice", http.MethodPost, pathKeygen, codeBadRequest},
		{"alice", http.MethodPost, pathOperators, codeBadRequest},
		{"alice", http.MethodPost, pathSign, codeForbidden},
		{"bob", http.MethodGet, pathAuditEntry, codeForbidden},
		{"bob", http.MethodPost, pathOfflineExport, codeBadRequest},
		{"bob", http.MethodPost, pathOfflineImport, codeBadRequest},
		{"bob", http.MethodPost, pathOfflineSkip, codeForbidden},
		{"carol", http.MethodPost, pathOfflineImport, codeForbidden},
		{"carol", http.MethodPost, pathOfflineExport, codeForbidden},
		{"carol", http.MethodPost, pathOfflineInspect, codeBadRequest},
		{"alice", http.MethodPost, pathOfflineSkip, codeBadRequest},
		{"carol", http.MethodGet, pathAuditEntry, codeForbidden},
		{"alice", http.MethodGet, pathAuditEntry, codeBadRequest}, // no ?seq=
		{"bob", http.MethodPost, pathPoolTarget, codeForbidden},
		{"carol", http.MethodPost, pathPoolDrain, codeForbidden},
		{"alice", http.MethodPost, pathPoolDrain, codeBadRequest},
		// A backup holds every sealed share: admin only.
		{"bob", http.MethodPost, pathBackup, codeForbidden},
		{"carol", http.MethodPost, pathBackup, codeForbidden},
		{"alice", http.MethodPost, pathBackup, codeBadRequest},
		// Not classified in routeRoles: admin only.
		{"bob", http.MethodPost, pathPresign, codeForbidden},
		{"alice", http.MethodPost, pathPresign, codeBadRequest},
	} {
		status, eb := call(t, h, signedRequest(t, keys[tc.who].signer, testSiteID, tc.method, tc.path, `{"x":1}`))
		if eb.Code != tc.want || (tc.want == codeForbidden && (status != http.StatusForbidden || !strings.Contains(eb.Error, "kqnode operators add"))) {
			t.Errorf("%s %s %s: %d %+v, want %s", tc.who, tc.method, tc.path, status, eb, tc.want)
		}
	}
}

// TestAPI_SignedRequestAttacks: a replayed request, a changed body, a
// request for another site, an unknown key and a removed operator are
// refused as unauthenticated.
func TestAPI_SignedRequestAttacks(t *testing.T) {
	s, keys := rolesServer(t)
	h := s.handler()
	body := `{"name":"x"}`

	// Replay: the same signed request twice.
	req := signedRequest(t, keys["alice"].signer, testSiteID, http.MethodPost, pathOperatorsRemove, body)
	replay := req.Clone(req.Context())
	replay.Body = http.NoBody
	if _, eb := call(t, h, req); eb.Code != codeBadRequest {
		t.Fatalf("first request: %+v", eb)
	}
	replay = signedReplay(t, req, body)
	if status, eb := call(t, h, replay); status != http.StatusUnauthorized || eb.Code != codeUnauthenticated || !strings.Contains(eb.Error, "replayed") {
		t.Errorf("replayed request: %d %+v", status, eb)
	}

	// The body changed after signing.
	req = signedRequest(t, keys["alice"].signer, testSiteID, http.MethodPost, pathOperatorsRemove, body)
	req.Body = http.NoBody
	req = withBody(req, `{"name":"bob"}`)
	if status, eb := call(t, h, req); status != http.StatusUnauthorized || eb.Code != codeUnauthenticated || !strings.Contains(eb.Error, "changed after signing") {
		t.Errorf("changed body: %d %+v", status, eb)
	}
	if _, ok := s.operators.lookup(keys["bob"].signer.PublicKey().Marshal()); !ok {
		t.Fatal("a request with a changed body removed bob")
	}

	// Signed for another site.
	req = signedRequest(t, keys["alice"].signer, "12D3KooWAnotherSite", http.MethodGet, pathOperators, "")
	if status, eb := call(t, h, req); status != http.StatusUnauthorized || eb.Code != codeUnauthenticated {
		t.Errorf("request for another site: %d %+v", status, eb)
	}

	// An unknown key.
	stranger, err := writeOperatorKey(t.TempDir(), "mallory")
	if err != nil {
		t.Fatal(err)
	}
	req = signedRequest(t, stranger.signer, testSiteID, http.MethodGet, pathStatus, "")
	if status, eb := call(t, h, req); status != http.StatusUnauthorized || !strings.Contains(eb.Error, "not an operator key") {
		t.Errorf("unknown key: %d %+v", status, eb)
	}

	// A removed operator.
	if _, eb := call(t, h, signedRequest(t, keys["alice"].signer, testSiteID, http.MethodPost, pathOperatorsRemove, `{"name":"carol"}`)); eb.Code != "" {
		t.Fatalf("remove carol: %+v", eb)
	}
	req = signedRequest(t, keys["carol"].signer, testSiteID, http.MethodPost, pathRequestsApprove, `{"x":1}`)
	if status, eb := call(t, h, req); status != http.StatusUnauthorized || eb.Code != codeUnauthenticated {
		t.Errorf("removed operator: %d %+v", status, eb)
	}
	// The last admin cannot be removed.
	if status, eb := call(t, h, signedRequest(t, keys["alice"].signer, testSiteID, http.MethodPost, pathOperatorsRemove, `{"name":"alice"}`)); status != http.StatusBadRequest {
		t.Errorf("removing the last admin: %d %+v", status, eb)
	}
}

// signedReplay is req again, with its headers and the same body.
func signedReplay(t *testing.T, req *http.Request, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(req.Method, req.URL.Path, strings.NewReader(body))
	r.Header = req.Header.Clone()
	return r
}

// withBody is req with another body and the same headers.
func withBody(req *http.Request, body string) *http.Request {
	r := httptest.NewRequest(req.Method, req.URL.Path, strings.NewReader(body))
	r.Header = req.Header.Clone()
	return r
}

// TestCLI_OperatorsCommand: an admin adds a requester with kqnode
// operators add; the requester's keygen is refused as forbidden with the
// command that grants the role; once removed, the requester's requests
// are unauthenticated; the refusals are in the audit log under the
// operator's name.
func TestCLI_OperatorsCommand(t *testing.T) {
	s := newTestSite(t)
	s.mustStart(t)
	bob, err := writeOperatorKey(t.TempDir(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if code, eb, stderr := runClient(t, "operators", "add", "--home", s.home, "--name", "bob", "--key", bob.pub, "--roles", roleRequester); code != 0 {
		t.Fatalf("operators add: %d %+v %s", code, eb, stderr)
	}
	code, out, _ := runCLI("operators", "list", "--home", s.home, "--json")
	if code != 0 || !strings.Contains(out, `"name":"bob","roles":["requester"]`) || !strings.Contains(out, `"added_by":"admin"`) {
		t.Fatalf("operators list: %d %s", code, out)
	}
	code, eb, _ := runClient(t, "keygen", "--home", s.home, "--operator-key", bob.key, "--threshold", "2", "--parties", s.peerID+","+s.peerID)
	if code != 1 || eb.Code != codeForbidden || !strings.Contains(eb.Error, "needs role admin") || !strings.Contains(eb.Error, "kqnode operators add") {
		t.Errorf("keygen by a requester: %d %+v", code, eb)
	}
	if code, eb, _ := runClient(t, "status", "--home", s.home, "--operator-key", bob.key); code != 0 {
		t.Errorf("status by a requester: %d %+v", code, eb)
	}
	if code, eb, stderr := runClient(t, "operators", "remove", "--home", s.home, "--name", "bob"); code != 0 {
		t.Fatalf("operators remove: %d %+v %s", code, eb, stderr)
	}
	if code, eb, _ := runClient(t, "status", "--home", s.home, "--operator-key", bob.key); code != 1 || eb.Code != codeUnauthenticated {
		t.Errorf("status by a removed operator: %d %+v", code, eb)
	}
	code, out, stderr := runCLI("audit", "export", "--home", s.home)
	if code != 0 {
		t.Fatalf("audit export: %d %s", code, stderr)
	}
	for _, want := range []string{`"operator":"bob"`, `"reason":"forbidden: operator bob`, `"path":"/v1/operators/remove"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log has no %s:\n%s", want, out)
		}
	}
}
