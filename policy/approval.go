package policy

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// ApprovalNamespace is the SSH signature namespace of approvals (the -n of
// ssh-keygen -Y sign). A signature made for another purpose, such as git
// commits ("git") or files ("file"), is never an approval.
const ApprovalNamespace = "keyquorum-approval"

// Approval bounds.
const (
	// MaxApprovals bounds the approvals one request carries.
	MaxApprovals = 16
	// MaxStatementSize bounds an approval statement.
	MaxStatementSize = 8 << 10
	// MaxSignatureSize bounds an armored SSH signature.
	MaxSignatureSize = 8 << 10
	// MaxEvidenceSize bounds EncodeApprovals' output.
	MaxEvidenceSize = MaxApprovals*(MaxStatementSize+MaxSignatureSize)*2 + 1024
	// DefaultApprovalValidity is the longest an approval may stay valid
	// (expiry minus the site's clock) unless the policy sets
	// approval-max-validity.
	DefaultApprovalValidity = 7 * 24 * time.Hour
)

// statementHeader is the first line of every approval statement.
const statementHeader = "keyquorum-approval v1"

// Statement is what an approver signs: it names one intent, the summary the
// approver was shown, the key and its committee, and when the approval
// expires. Its text form (Text, FORMAT.md) is canonical; an approver signs
// that text with
//
//	ssh-keygen -Y sign -n keyquorum-approval -f KEY statement.txt
type Statement struct {
	// IntentHash is Intent.Hash of the approved intent.
	IntentHash [32]byte
	// SummaryHash is Plan.SummaryHash of what the approver was shown.
	SummaryHash [32]byte
	// KeyID names the key that is to sign.
	KeyID string
	// Committee is the key's committee, sorted.
	Committee []string
	// Expires is when the approval stops counting, in whole seconds (UTC).
	Expires time.Time
}

// Statement returns the statement approving this plan until expires
// (truncated to whole seconds).
func (p *Plan) Statement(expires time.Time) *Statement {
	return &Statement{
		IntentHash: p.IntentHash, SummaryHash: p.SummaryHash, KeyID: p.Key.ID,
		Committee: slices.Clone(p.Key.Committee), Expires: expires.UTC().Truncate(time.Second),
	}
}

// Text returns the canonical statement text:
//
//	keyquorum-approval v1
//	intent <64 hex digits>
//	summary <64 hex digits>
//	key <key ID>
//	committee <party ID> <party ID> ...
//	expires <RFC 3339 UTC time, e.g. 2026-12-05T17:00:00Z>
//
// with each line ending in a line feed.
func (s *Statement) Text() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nintent %s\nsummary %s\nkey %s\ncommittee %s\nexpires %s\n",
		statementHeader, hex.EncodeToString(s.IntentHash[:]), hex.EncodeToString(s.SummaryHash[:]),
		s.KeyID, strings.Join(s.Committee, " "), s.Expires.UTC().Format(time.RFC3339))
	return b.Bytes()
}

// ParseStatement parses a statement's text. It accepts only the canonical
// form Text writes: any other spelling of the same fields (upper-case hex,
// a time zone offset, extra spaces, CRLF, a missing final newline) is an
// error wrapping ErrApprovalMalformed.
func ParseStatement(text []byte) (*Statement, error) {
	if len(text) > MaxStatementSize {
		return nil, fmt.Errorf("%w: statement of %d bytes, at most %d", ErrApprovalMalformed, len(text), MaxStatementSize)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 7 || lines[6] != "" || lines[0] != statementHeader {
		return nil, fmt.Errorf("%w: not a %q statement of six lines", ErrApprovalMalformed, statementHeader)
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d must start with %q", ErrApprovalMalformed, i+1, name+" ")
		}
		return v, nil
	}
	var s Statement
	for i, h := range []*[32]byte{&s.IntentHash, &s.SummaryHash} {
		name := []string{"intent", "summary"}[i]
		v, err := field(1+i, name)
		if err != nil {
			return nil, err
		}
		raw, err := hex.DecodeString(v)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%w: %s must be 64 hex digits", ErrApprovalMalformed, name)
		}
		copy(h[:], raw)
	}
	var err error
	if s.KeyID, err = field(3, "key"); err != nil {
		return nil, err
	}
	committee, err := field(4, "committee")
	if err != nil {
		return nil, err
	}
	s.Committee = strings.Split(committee, " ")
	expires, err := field(5, "expires")
	if err != nil {
		return nil, err
	}
	if s.Expires, err = time.Parse(time.RFC3339, expires); err != nil {
		return nil, fmt.Errorf("%w: expires: %v", ErrApprovalMalformed, err)
	}
	if !validToken(s.KeyID) {
		return nil, fmt.Errorf("%w: key ID is not printable ASCII without spaces", ErrApprovalMalformed)
	}
	for _, p := range s.Committee {
		if !validToken(p) {
			return nil, fmt.Errorf("%w: committee member %q is not printable ASCII without spaces", ErrApprovalMalformed, p)
		}
	}
	if !bytes.Equal(s.Text(), text) {
		return nil, fmt.Errorf("%w: statement is not in canonical form (lowercase hex, single spaces, UTC time with Z, LF line ends)", ErrApprovalMalformed)
	}
	return &s, nil
}

// Approval is one person's approval of a request: the statement text they
// signed and their armored SSH signature of it (the .sig file ssh-keygen
// -Y sign writes). Approvals travel with a signing request as evidence;
// every site verifies them itself against its own policy.
type Approval struct {
	// Statement is the signed statement text.
	Statement []byte
	// Signature is the armored SSHSIG ("-----BEGIN SSH SIGNATURE-----").
	Signature []byte
}

// evidence is the JSON form of a list of approvals.
type evidence struct {
	Version   int        `json:"version"`
	Approvals []approval `json:"approvals"`
}

type approval struct {
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

// EncodeApprovals encodes approvals for a signing request (FORMAT.md,
// "Evidence"): JSON with the statement and signature texts.
func EncodeApprovals(approvals []Approval) ([]byte, error) {
	if len(approvals) > MaxApprovals {
		return nil, fmt.Errorf("%w: %d approvals, at most %d", ErrApprovalMalformed, len(approvals), MaxApprovals)
	}
	ev := evidence{Version: 1, Approvals: []approval{}}
	for i, a := range approvals {
		if len(a.Statement) > MaxStatementSize || len(a.Signature) > MaxSignatureSize {
			return nil, fmt.Errorf("%w: approval %d: statement or signature larger than %d bytes", ErrApprovalMalformed, i, MaxStatementSize)
		}
		ev.Approvals = append(ev.Approvals, approval{Statement: string(a.Statement), Signature: string(a.Signature)})
	}
	return json.Marshal(ev)
}

// DecodeApprovals decodes EncodeApprovals' output, with its bounds. An
// empty input means no approvals.
func DecodeApprovals(b []byte) ([]Approval, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxEvidenceSize {
		return nil, fmt.Errorf("%w: evidence of %d bytes, at most %d", ErrApprovalMalformed, len(b), MaxEvidenceSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ev evidence
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%w: evidence: %v", ErrApprovalMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: evidence: data after the JSON object", ErrApprovalMalformed)
	}
	if ev.Version != 1 {
		return nil, fmt.Errorf("%w: evidence version %d, this build reads version 1", ErrApprovalMalformed, ev.Version)
	}
	if len(ev.Approvals) > MaxApprovals {
		return nil, fmt.Errorf("%w: %d approvals, at most %d", ErrApprovalMalformed, len(ev.Approvals), MaxApprovals)
	}
	out := make([]Approval, 0, len(ev.Approvals))
	for i, a := range ev.Approvals {
		if len(a.Statement) > MaxStatementSize || len(a.Signature) > MaxSignatureSize {
			return nil, fmt.Errorf("%w: approval %d is too large", ErrApprovalMalformed, i)
		}
		out = append(out, Approval{Statement: []byte(a.Statement), Signature: []byte(a.Signature)})
	}
	return out, nil
}

// sshsig is the SSHSIG blob (OpenSSH PROTOCOL.sshsig §2), after the magic.
type sshsig struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  []byte
	HashAlg   string
	Signature []byte
}

const sshsigMagic = "SSHSIG"

// parseSSHSig decodes an armored SSH signature.
func parseSSHSig(armored []byte) (*sshsig, error) {
	if len(armored) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes, at most %d", ErrApprovalMalformed, len(armored), MaxSignatureSize)
	}
	block, rest := pem.Decode(armored)
	if block == nil || block.Type != "SSH SIGNATURE" || len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)", ErrApprovalMalformed)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the SSH signature", ErrApprovalMalformed)
	}
	blob, ok := bytes.CutPrefix(block.Bytes, []byte(sshsigMagic))
	if !ok {
		return nil, fmt.Errorf("%w: SSH signature does not start with %q", ErrApprovalMalformed, sshsigMagic)
	}
	var sig sshsig
	if err := ssh.Unmarshal(blob, &sig); err != nil {
		return nil, fmt.Errorf("%w: SSH signature: %v", ErrApprovalMalformed, err)
	}
	if sig.Version != 1 {
		return nil, fmt.Errorf("%w: SSH signature version %d, want 1", ErrApprovalMalformed, sig.Version)
	}
	return &sig, nil
}

// signedData returns what an SSH signature signs (PROTOCOL.sshsig §3):
// the magic, then the namespace, an empty reserved string, the hash
// algorithm and the hash of the message, each as an SSH string.
func signedData(namespace, hashAlg string, message []byte) ([]byte, error) {
	var h []byte
	switch hashAlg {
	case "sha512":
		sum := sha512.Sum512(message)
		h = sum[:]
	case "sha256":
		sum := sha256.Sum256(message)
		h = sum[:]
	default:
		return nil, fmt.Errorf("%w: %q (use sha256 or sha512)", ErrApprovalHashAlg, hashAlg)
	}
	return append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{namespace, "", hashAlg, h})...), nil
}

// SignStatement makes an approval with an SSH signer (an ssh-agent key,
// or a key loaded with ssh.ParsePrivateKey), as ssh-keygen -Y sign -n
// keyquorum-approval would, hashing with SHA-512. The result verifies with
// ssh-keygen -Y verify.
func SignStatement(rand io.Reader, signer ssh.Signer, statement []byte) (*Approval, error) {
	if len(statement) > MaxStatementSize {
		return nil, fmt.Errorf("%w: statement of %d bytes, at most %d", ErrApprovalMalformed, len(statement), MaxStatementSize)
	}
	data, err := signedData(ApprovalNamespace, "sha512", statement)
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand, data)
	if err != nil {
		return nil, fmt.Errorf("policy: sign approval statement: %w", err)
	}
	blob := append([]byte(sshsigMagic), ssh.Marshal(sshsig{
		Version: 1, PublicKey: signer.PublicKey().Marshal(), Namespace: ApprovalNamespace,
		HashAlg: "sha512", Signature: ssh.Marshal(sig),
	})...)
	armored := pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob})
	return &Approval{Statement: bytes.Clone(statement), Signature: armored}, nil
}

// verifyApproval checks one approval against the policy's approver keys,
// the plan and the clock, in this order: the signature envelope, the
// signing key (must be an approver key of this policy; the key embedded in
// the signature is only used to look it up), the signature under the
// policy's copy of that key (with user presence for sk keys), the
// statement's form, its intent, summary, key and committee, its expiry.
func (p *Policy) verifyApproval(plan *Plan, a Approval, now time.Time) (string, error) {
	if len(a.Statement) > MaxStatementSize {
		return "", fmt.Errorf("%w: statement of %d bytes, at most %d", ErrApprovalMalformed, len(a.Statement), MaxStatementSize)
	}
	sig, err := parseSSHSig(a.Signature)
	if err != nil {
		return "", err
	}
	if sig.Namespace != ApprovalNamespace {
		return "", fmt.Errorf("%w: namespace %q, want %q", ErrApprovalNamespace, sig.Namespace, ApprovalNamespace)
	}
	if len(sig.Reserved) != 0 {
		return "", fmt.Errorf("%w: reserved field is not empty", ErrApprovalMalformed)
	}
	ak, ok := p.keys[string(sig.PublicKey)]
	if !ok {
		fp := "unparsable key"
		if pub, err := ssh.ParsePublicKey(sig.PublicKey); err == nil {
			fp = ssh.FingerprintSHA256(pub)
		}
		return "", fmt.Errorf("%w: %s", ErrApprovalUnknownKey, fp)
	}
	data, err := signedData(sig.Namespace, sig.HashAlg, a.Statement)
	if err != nil {
		return "", err
	}
	var s ssh.Signature
	if err := ssh.Unmarshal(sig.Signature, &s); err != nil {
		return "", fmt.Errorf("%w: signature of key %s does not decode", ErrApprovalSignature, ssh.FingerprintSHA256(ak.key))
	}
	if err := checkUserPresence(ak.key, &s); err != nil {
		return "", err
	}
	if err := ak.key.Verify(data, &s); err != nil {
		return "", fmt.Errorf("%w: key %s of %s: %v", ErrApprovalSignature, ssh.FingerprintSHA256(ak.key), ak.approver, err)
	}
	st, err := ParseStatement(a.Statement)
	if err != nil {
		return ak.approver, err
	}
	switch {
	case st.IntentHash != plan.IntentHash:
		return ak.approver, fmt.Errorf("%w: statement names intent %x, this request is intent %x", ErrApprovalOtherIntent, st.IntentHash[:8], plan.IntentHash[:8])
	case st.SummaryHash != plan.SummaryHash:
		return ak.approver, fmt.Errorf("%w: statement names summary %x, this site computes %x", ErrApprovalOtherSummary, st.SummaryHash[:8], plan.SummaryHash[:8])
	case st.KeyID != plan.Key.ID:
		return ak.approver, fmt.Errorf("%w: statement names key %s, this request is for key %s", ErrApprovalOtherKey, st.KeyID, plan.Key.ID)
	case !slices.Equal(st.Committee, plan.Key.Committee):
		return ak.approver, fmt.Errorf("%w: statement names committee %s, key %s has %s", ErrApprovalOtherCommittee,
			strings.Join(st.Committee, ","), plan.Key.ID, strings.Join(plan.Key.Committee, ","))
	case !now.Before(st.Expires):
		return ak.approver, fmt.Errorf("%w: expired at %s, site clock %s", ErrApprovalExpired, st.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case st.Expires.Sub(now) > p.maxValidity:
		return ak.approver, fmt.Errorf("%w: expires %s, more than %s after the site clock %s", ErrApprovalTooLong,
			st.Expires.Format(time.RFC3339), p.maxValidity, now.UTC().Format(time.RFC3339))
	}
	return ak.approver, nil
}

// checkUserPresence requires the FIDO user-presence flag in a signature of
// an sk key (PROTOCOL.u2f: the signature's trailing data is a flags byte
// and a 32-bit counter). x/crypto/ssh checks it too; this check does not
// depend on how the key was parsed.
func checkUserPresence(key ssh.PublicKey, s *ssh.Signature) error {
	switch key.Type() {
	case ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
	default:
		return nil
	}
	var tail struct {
		Flags   byte
		Counter uint32
	}
	if err := ssh.Unmarshal(s.Rest, &tail); err != nil {
		return fmt.Errorf("%w: security key signature of %s has no flags and counter", ErrApprovalSignature, ssh.FingerprintSHA256(key))
	}
	if tail.Flags&0x01 == 0 {
		return fmt.Errorf("%w: security key signature of %s lacks the user-presence flag (the key was not touched)", ErrApprovalSignature, ssh.FingerprintSHA256(key))
	}
	return nil
}
