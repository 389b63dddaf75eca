package main

// Signed API requests. Every control-API request carries
//
//	Authorization: KQ-SSHSIG <base64 of an SSHSIG blob>
//	KQ-Time:       <unix seconds>
//	KQ-Nonce:      <32 hex digits, fresh for each request>
//
// The blob is an SSH signature (OpenSSH PROTOCOL.sshsig, namespace
// "keyquorum-api", hash sha512) by the operator's key over the text
//
//	keyquorum-api v1
//	site <the site's peer ID>
//	method <HTTP method>
//	path <request URI>
//	body-sha256 <hex SHA-256 of the body>
//	time <KQ-Time>
//	nonce <KQ-Nonce>
//
// The site verifies it with the key of its operators file that equals the
// one in the blob (never with the blob's own key), refuses a time more
// than requestWindow away from its clock and a nonce it has seen within
// the window, and only then looks at the operator's roles. The signature
// binds the request to one site, one route and one body.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

const (
	apiNamespace    = "keyquorum-api"
	apiAuthScheme   = "KQ-SSHSIG"
	headerTime      = "KQ-Time"
	headerNonce     = "KQ-Nonce"
	apiSignedHeader = "keyquorum-api v1"
	// requestWindow is how far a request's time may be from the site's
	// clock; a nonce is remembered for twice as long.
	requestWindow = 2 * time.Minute
	// maxNonces bounds the nonces remembered at once (each is one signed
	// request of an operator within the window).
	maxNonces = 1 << 16
	// maxAuthHeader bounds the Authorization header's signature.
	maxAuthHeader = 4 << 10
	// envOperatorKey names the operator key when --operator-key is not given.
	envOperatorKey = "KQ_OPERATOR_KEY"
)

// Why a request was not let through.
var (
	// errUnauthenticated means the request is not signed by an operator
	// of the site (unsigned, unknown key, bad signature, replayed, stale).
	errUnauthenticated = errors.New("unauthenticated")
	// errForbidden means the operator's roles do not allow the route.
	errForbidden = errors.New("forbidden")
	// errNoOperatorKey means the client has no key to sign with.
	errNoOperatorKey = errors.New("no operator key")
)

// signedText is what an operator signs for one request.
func signedText(site, method, uri string, body []byte, t int64, nonce string) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf(nil, "%s\nsite %s\nmethod %s\npath %s\nbody-sha256 %x\ntime %d\nnonce %s\n",
		apiSignedHeader, site, method, uri, sum, t, nonce)
}

// sshsigBlob is the SSHSIG blob after its magic (PROTOCOL.sshsig §2).
type sshsigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  []byte
	HashAlg   string
	Signature []byte
}

// sshsigData is what an SSH signature signs (PROTOCOL.sshsig §3).
func sshsigData(namespace string, message []byte) []byte {
	h := sha512.Sum512(message)
	return append([]byte("SSHSIG"), ssh.Marshal(struct {
		Namespace, Reserved, HashAlg string
		Hash                         []byte
	}{namespace, "", "sha512", h[:]})...)
}

// signAPIRequest returns the Authorization header value for message.
func signAPIRequest(signer ssh.Signer, message []byte) (string, error) {
	sig, err := signer.Sign(rand.Reader, sshsigData(apiNamespace, message))
	if err != nil {
		return "", fmt.Errorf("sign the request with operator key %s: %w", ssh.FingerprintSHA256(signer.PublicKey()), err)
	}
	blob := append([]byte("SSHSIG"), ssh.Marshal(sshsigBlob{Version: 1, PublicKey: signer.PublicKey().Marshal(),
		Namespace: apiNamespace, HashAlg: "sha512", Signature: ssh.Marshal(sig)})...)
	return apiAuthScheme + " " + base64.StdEncoding.EncodeToString(blob), nil
}

// authenticator checks signed requests for one site.
type authenticator struct {
	site      string
	operators *operatorSet
	now       func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> when it may be forgotten
}

func newAuthenticator(site string, ops *operatorSet) *authenticator {
	return &authenticator{site: site, operators: ops, now: time.Now, nonces: map[string]time.Time{}}
}

// authError is a refused request: its sentinel (errUnauthenticated or
// errForbidden), the operator when known, and the reason in CLI terms.
type authError struct {
	kind     error
	operator string
	reason   string
}

func (e *authError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *authError) Unwrap() error { return e.kind }

func unauthenticated(format string, args ...any) *authError {
	return &authError{kind: errUnauthenticated, reason: fmt.Sprintf(format, args...)}
}

// verify checks the signature of a request with the given body and
// returns its operator.
func (a *authenticator) verify(method, uri, auth, ts, nonce string, body []byte) (*operator, error) {
	encoded, ok := strings.CutPrefix(auth, apiAuthScheme+" ")
	if !ok {
		return nil, unauthenticated("the request is not signed by an operator (no %q authorization): "+
			"kqnode clients sign with the key given by --operator-key or %s; the API token of earlier versions grants nothing", apiAuthScheme, envOperatorKey)
	}
	if len(encoded) > maxAuthHeader {
		return nil, unauthenticated("signature of %d bytes, at most %d", len(encoded), maxAuthHeader)
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, unauthenticated("%s %q is not a time in Unix seconds", headerTime, truncate(ts, 40))
	}
	now := a.now()
	if d := now.Sub(time.Unix(t, 0)); d > requestWindow || d < -requestWindow {
		return nil, unauthenticated("the request was signed at %s, %s away from the site's clock (%s); at most %s is accepted: check the clocks of the client and the site",
			time.Unix(t, 0).UTC().Format(time.RFC3339), d.Abs().Round(time.Second), now.UTC().Format(time.RFC3339), requestWindow)
	}
	if len(nonce) != 32 || strings.Trim(nonce, "0123456789abcdef") != "" {
		return nil, unauthenticated("%s must be 32 lowercase hex digits", headerNonce)
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, unauthenticated("the signature is not base64")
	}
	rest, ok := bytes.CutPrefix(raw, []byte("SSHSIG"))
	var blob sshsigBlob
	if !ok || ssh.Unmarshal(rest, &blob) != nil || blob.Version != 1 {
		return nil, unauthenticated("the signature is not an SSHSIG blob of version 1")
	}
	if blob.Namespace != apiNamespace || blob.HashAlg != "sha512" || len(blob.Reserved) != 0 {
		return nil, unauthenticated("the signature is for namespace %q with hash %q, want %q with sha512", truncate(blob.Namespace, 40), truncate(blob.HashAlg, 20), apiNamespace)
	}
	op, ok := a.operators.lookup(blob.PublicKey)
	if !ok {
		fp := "an unparsable key"
		if pub, err := ssh.ParsePublicKey(blob.PublicKey); err == nil {
			fp = "key " + ssh.FingerprintSHA256(pub)
		}
		return nil, unauthenticated("%s is not an operator key of this site: an admin registers it with `kqnode operators add --home DIR --name NAME --key KEY.pub --roles ROLE`", fp)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(blob.Signature, &sig); err != nil {
		return nil, &authError{kind: errUnauthenticated, operator: op.Name, reason: fmt.Sprintf("the signature of operator %s does not decode", op.Name)}
	}
	// Verified with the site's copy of the key, which equals the blob's.
	if err := op.pub.Verify(sshsigData(apiNamespace, signedText(a.site, method, uri, body, t, nonce)), &sig); err != nil {
		return nil, &authError{kind: errUnauthenticated, operator: op.Name, reason: fmt.Sprintf(
			"the signature of operator %s does not match this request (site %s, %s %s, its body, time and nonce): it was changed after signing or signed for another site",
			op.Name, a.site, method, truncate(uri, 100))}
	}
	if err := a.fresh(nonce, now); err != nil {
		err.operator = op.Name
		return nil, err
	}
	return op, nil
}

// fresh records nonce, refusing one seen within the window.
func (a *authenticator) fresh(nonce string, now time.Time) *authError {
	a.mu.Lock()
	defer a.mu.Unlock()
	if until, ok := a.nonces[nonce]; ok && now.Before(until) {
		return unauthenticated("the request was already made (nonce %s seen before): a replayed request is refused; a client signs every request anew", nonce)
	}
	if len(a.nonces) >= maxNonces {
		for n, until := range a.nonces {
			if !now.Before(until) {
				delete(a.nonces, n)
			}
		}
		if len(a.nonces) >= maxNonces {
			return unauthenticated("the site has taken %d signed requests within %s and remembers no more: try again in a minute", maxNonces, 2*requestWindow)
		}
	}
	a.nonces[nonce] = now.Add(2 * requestWindow)
	return nil
}

// authorize checks that op may use method and path.
func authorize(op *operator, method, path, home string) error {
	need := rolesFor(method, path)
	if op.has(need) {
		return nil
	}
	return &authError{kind: errForbidden, operator: op.Name, reason: fmt.Sprintf(
		"operator %s has role %s; %s %s needs role %s: an admin grants it with `kqnode operators add --home %s --name %s --key %s.pub --roles %s`",
		op.Name, strings.Join(op.Roles, ","), method, truncate(path, 100), strings.Join(need, " or "), home, op.Name, op.Name,
		strings.Join(append(op.Roles, need[0]), ","))}
}

// newNonce returns 16 random bytes in hex.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// loadOperatorKey returns the signer of the operator key named by flag or,
// when flag is empty, by $KQ_OPERATOR_KEY: a private key file without
// passphrase, or a public key (.pub) whose private key ssh-agent holds
// ($SSH_AUTH_SOCK; security keys and passphrase-protected keys go there).
func loadOperatorKey(flag string) (ssh.Signer, error) {
	file, from := flag, "--operator-key"
	if file == "" {
		file, from = os.Getenv(envOperatorKey), "$"+envOperatorKey
	}
	if file == "" {
		return nil, fmt.Errorf("%w: every API request is signed by an operator: give your SSH key with --operator-key FILE or %s=FILE (the private key, or KEY.pub with the key in ssh-agent); an admin registers it with `kqnode operators add`",
			errNoOperatorKey, envOperatorKey)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", errNoOperatorKey, from, file, err)
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
		return agentSigner(pub, from, file)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		if pm.PublicKey != nil {
			return agentSigner(pm.PublicKey, from, file)
		}
		return nil, fmt.Errorf("%w: %s %s is protected by a passphrase: add it to ssh-agent (ssh-add %s) and give %s.pub", errNoOperatorKey, from, file, file, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s is not an SSH key: %w", errNoOperatorKey, from, file, err)
	}
	return signer, nil
}

// agentSigner finds the signer of pub in ssh-agent.
func agentSigner(pub ssh.PublicKey, from, file string) (ssh.Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, fmt.Errorf("%w: %s %s is a public key, and no ssh-agent is running (SSH_AUTH_SOCK is not set): start one and ssh-add the private key, or give the private key file", errNoOperatorKey, from, file)
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("%w: ssh-agent at %s: %w", errNoOperatorKey, sock, err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: ssh-agent at %s: %w", errNoOperatorKey, sock, err)
	}
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
			// The connection stays open for the client's life (one command).
			return s, nil
		}
	}
	conn.Close()
	return nil, fmt.Errorf("%w: ssh-agent at %s does not hold the key of %s %s (%s): ssh-add it", errNoOperatorKey, sock, from, file, ssh.FingerprintSHA256(pub))
}
