package policy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum/policy"
)

// approverKey is a test approver's key: it prints its public key line and
// approves a statement.
type approverKey interface {
	// pubLine is the key as in a .pub file: TYPE BASE64 COMMENT.
	pubLine() string
	approve(t testing.TB, statement []byte) policy.Approval
}

// sshKeygen runs ssh-keygen with args and stdin, and fails the test with
// its output if it fails.
func sshKeygen(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(sshKeygenPath(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func sshKeygenPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatal("ssh-keygen not found: install openssh-client (make deps does)")
	}
	return p
}

// keygenKey is a key made by ssh-keygen; it approves with ssh-keygen -Y sign.
type keygenKey struct {
	file    string
	pub     string
	hashAlg string // "" for ssh-keygen's default (sha512)
}

// newKeygenKey makes an ed25519 ("ed25519") or ECDSA P-256 ("ecdsa") key
// with ssh-keygen.
func newKeygenKey(t testing.TB, typ, comment string) *keygenKey {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", "", "-C", comment, "-f", file}
	if typ == "ecdsa" {
		args = append(args, "-b", "256")
	}
	sshKeygen(t, nil, args...)
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return &keygenKey{file: file, pub: strings.TrimSpace(string(pub))}
}

func (k *keygenKey) pubLine() string { return k.pub }

// approve signs the statement with ssh-keygen -Y sign -n namespace.
func (k *keygenKey) approve(t testing.TB, statement []byte) policy.Approval {
	t.Helper()
	return k.sign(t, statement, policy.ApprovalNamespace)
}

func (k *keygenKey) sign(t testing.TB, statement []byte, namespace string) policy.Approval {
	t.Helper()
	msg := filepath.Join(t.TempDir(), "statement")
	if err := os.WriteFile(msg, statement, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-Y", "sign", "-n", namespace, "-f", k.file}
	if k.hashAlg != "" {
		args = append(args, "-O", "hashalg="+k.hashAlg)
	}
	sshKeygen(t, nil, append(args, msg)...)
	sig, err := os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return policy.Approval{Statement: statement, Signature: sig}
}

// sshVerify runs ssh-keygen -Y verify for an approval made by the key in
// pubLine and returns its error, nil when ssh-keygen accepts it.
func sshVerify(t testing.TB, pubLine string, a policy.Approval) error {
	t.Helper()
	dir := t.TempDir()
	signers := filepath.Join(dir, "allowed_signers")
	line := fmt.Sprintf("approver@test namespaces=%q %s\n", policy.ApprovalNamespace, pubLine)
	if err := os.WriteFile(signers, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := filepath.Join(dir, "statement.sig")
	if err := os.WriteFile(sig, a.Signature, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshKeygenPath(t), "-Y", "verify", "-f", signers, "-I", "approver@test", "-n", policy.ApprovalNamespace, "-s", sig)
	cmd.Stdin = bytes.NewReader(a.Statement)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// fidoKey is a FIDO2 security key in software: an sk-ssh-ed25519 or
// sk-ecdsa-sha2-nistp256 key whose signatures follow OpenSSH PROTOCOL.u2f
// (the authenticator signs SHA-256(application) || flags || counter ||
// SHA-256(data)). flags is what the "authenticator" reports: 0x01 when
// the user touched it.
type fidoKey struct {
	ed      ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	app     string
	flags   byte
	counter uint32
	comment string
}

func newFIDOKey(t testing.TB, typ, comment string) *fidoKey {
	t.Helper()
	k := &fidoKey{app: "ssh:", flags: 0x01, counter: 7, comment: comment}
	var err error
	switch typ {
	case ssh.KeyAlgoSKED25519:
		_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	case ssh.KeyAlgoSKECDSA256:
		k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("no FIDO key type %s", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fidoKeyFromSeed makes a deterministic key for recorded vectors.
func fidoKeyFromSeed(t testing.TB, typ, seed string) *fidoKey {
	t.Helper()
	h := sha256.Sum256([]byte(seed))
	k := &fidoKey{app: "ssh:", flags: 0x01, counter: 1, comment: seed}
	switch typ {
	case ssh.KeyAlgoSKED25519:
		k.ed = ed25519.NewKeyFromSeed(h[:])
	case ssh.KeyAlgoSKECDSA256:
		d := new(big.Int).SetBytes(h[:])
		d.Mod(d, new(big.Int).Sub(elliptic.P256().Params().N, big.NewInt(1)))
		d.Add(d, big.NewInt(1))
		k.ec = &ecdsa.PrivateKey{D: d}
		k.ec.Curve = elliptic.P256()
		k.ec.X, k.ec.Y = elliptic.P256().ScalarBaseMult(d.FillBytes(make([]byte, 32)))
	default:
		t.Fatalf("no FIDO key type %s", typ)
	}
	return k
}

// PublicKey implements ssh.Signer.
func (k *fidoKey) PublicKey() ssh.PublicKey {
	var wire []byte
	if k.ed != nil {
		wire = ssh.Marshal(struct {
			Type, Key, App string
		}{ssh.KeyAlgoSKED25519, string(k.ed.Public().(ed25519.PublicKey)), k.app})
	} else {
		wire = ssh.Marshal(struct {
			Type, Curve, Q, App string
		}{ssh.KeyAlgoSKECDSA256, "nistp256", string(elliptic.Marshal(elliptic.P256(), k.ec.X, k.ec.Y)), k.app})
	}
	pub, err := ssh.ParsePublicKey(wire)
	if err != nil {
		panic(err) // the encoding above is fixed; a failure is a bug in this helper
	}
	return pub
}

// Sign implements ssh.Signer the way a FIDO2 authenticator and ssh-sk.c do.
func (k *fidoKey) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	appHash := sha256.Sum256([]byte(k.app))
	dataHash := sha256.Sum256(data)
	msg := append(appHash[:], k.flags)
	msg = binary.BigEndian.AppendUint32(msg, k.counter)
	msg = append(msg, dataHash[:]...)
	rest := binary.BigEndian.AppendUint32([]byte{k.flags}, k.counter)
	if k.ed != nil {
		return &ssh.Signature{Format: ssh.KeyAlgoSKED25519, Blob: ed25519.Sign(k.ed, msg), Rest: rest}, nil
	}
	h := sha256.Sum256(msg)
	rr, ss, err := ecdsa.Sign(r, k.ec, h[:])
	if err != nil {
		return nil, err
	}
	return &ssh.Signature{Format: ssh.KeyAlgoSKECDSA256, Blob: ssh.Marshal(struct{ R, S *big.Int }{rr, ss}), Rest: rest}, nil
}

func (k *fidoKey) pubLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey()))) + " " + k.comment
}

func (k *fidoKey) approve(t testing.TB, statement []byte) policy.Approval {
	t.Helper()
	a, err := policy.SignStatement(rand.Reader, k, statement)
	if err != nil {
		t.Fatal(err)
	}
	return *a
}

// approvers replaces the key of every approver line of a policy file with
// a fresh key of the same type (ssh-keygen for ed25519 and ECDSA, a software
// FIDO key for sk types) and returns the new file and the keys by name.
func approvers(t testing.TB, src []byte) (string, map[string]approverKey) {
	t.Helper()
	keys := map[string]approverKey{}
	lines := strings.Split(string(src), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "approver" || strings.HasPrefix(line, " ") {
			continue
		}
		name, typ := f[1], f[2]
		var k approverKey
		switch typ {
		case ssh.KeyAlgoED25519:
			k = newKeygenKey(t, "ed25519", name+"@test")
		case ssh.KeyAlgoECDSA256:
			k = newKeygenKey(t, "ecdsa", name+"@test")
		default:
			k = newFIDOKey(t, typ, name+"@test")
		}
		if _, dup := keys[name]; dup {
			t.Fatalf("approver %s has two keys in the example; the helper gives each approver one", name)
		}
		keys[name] = k
		lines[i] = "approver " + name + " " + k.pubLine()
	}
	return strings.Join(lines, "\n"), keys
}
