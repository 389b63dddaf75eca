package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// opKeyFiles is an operator's SSH key pair in files, as ssh-keygen
// writes them: key (OpenSSH private key, no passphrase) and pub.
type opKeyFiles struct {
	key, pub string
	signer   ssh.Signer
}

// testAdmin is the operator every test site is set up with (TestMain
// makes it and points $KQ_OPERATOR_KEY at it), with every role so that the
// tests of other features can run every command.
var testAdmin opKeyFiles

// allRolesList is every role, as --roles takes them.
var allRolesList = strings.Join(allRoles, ",")

// testAdminArgs are the flags of kqnode init that register testAdmin.
func testAdminArgs() []string {
	return []string{"--admin-key", testAdmin.pub, "--admin-roles", allRolesList}
}

// writeOperatorKey makes an ed25519 key and writes it under dir as NAME
// and NAME.pub.
func writeOperatorKey(dir, name string) (opKeyFiles, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return opKeyFiles{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return opKeyFiles{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return opKeyFiles{}, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return opKeyFiles{}, err
	}
	k := opKeyFiles{key: filepath.Join(dir, name), pub: filepath.Join(dir, name+".pub"), signer: signer}
	if err := os.WriteFile(k.key, pem.EncodeToMemory(block), 0o600); err != nil {
		return opKeyFiles{}, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + name + "\n"
	if err := os.WriteFile(k.pub, []byte(line), 0o644); err != nil {
		return opKeyFiles{}, err
	}
	return k, nil
}

// testSiteID is the site a unit-test server (authServer) answers as.
const testSiteID = "12D3KooWTestSiteOfTheUnitTests"

// authServer is a control-API server without a node, for tests that stop
// at authentication or at decoding: its operators are ops (testAdmin with
// every role when none are given), kept in a temporary home.
func authServer(t testing.TB, ops ...*operator) *server {
	t.Helper()
	h := home{dir: t.TempDir()}
	set := newOperatorSet(h)
	if len(ops) == 0 {
		b, err := os.ReadFile(testAdmin.pub)
		if err != nil {
			t.Fatal(err)
		}
		ops = []*operator{{Name: "admin", Key: string(b), Roles: allRoles}}
	}
	for _, o := range ops {
		if err := set.insert(o); err != nil {
			t.Fatal(err)
		}
	}
	return &server{log: slog.New(slog.DiscardHandler), auth: newAuthenticator(testSiteID, set), operators: set, home: h.dir}
}

// signedRequest is a request as a kqnode client signs it for site.
func signedRequest(t testing.TB, signer ssh.Signer, site, method, path, body string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	signHeaders(t, req, signer, site, []byte(body))
	return req
}

// signHeaders signs req (whose body is body) as a client does.
func signHeaders(t testing.TB, req *http.Request, signer ssh.Signer, site string, body []byte) {
	t.Helper()
	nonce, err := newNonce()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	auth, err := signAPIRequest(signer, signedText(site, req.Method, req.URL.RequestURI(), body, now, nonce))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set(headerTime, strconv.FormatInt(now, 10))
	req.Header.Set(headerNonce, nonce)
}
