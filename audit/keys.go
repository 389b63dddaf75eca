package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Signature types (FORMAT.md).
const (
	// sigTypeECDSA is C2SP signed-note type 0x02 as transparency-dev
	// implements it: ECDSA over SHA-256 of the note text, key ID
	// SHA-256(SPKI)[:4].
	sigTypeECDSA = 0x02
	// sigTypeUnassigned introduces a longer type identifier.
	sigTypeUnassigned = 0xff
	// cosignatureHeader is the cosigned message's first line
	// (C2SP tlog-cosignature, cosignature/v1).
	cosignatureHeader = "cosignature/v1\n"
	// maxTimestamp bounds a cosignature's timestamp (2^63-1).
	maxTimestamp = 1<<63 - 1
)

// CosignatureType is the identifier that follows signature type byte 0xff
// for this package's ECDSA P-256 cosignatures (FORMAT.md); in the type
// bytes it ends with a newline.
const CosignatureType = "keyquorum/audit/cosignature-ecdsa-p256/v1"

// cosigTypeBytes is 0xff || CosignatureType || 0x0a.
var cosigTypeBytes = append(append([]byte{sigTypeUnassigned}, CosignatureType...), '\n')

// p256Key checks that pub is an ECDSA P-256 public key and returns its
// SPKI DER encoding.
func p256Key(pub crypto.PublicKey) (*ecdsa.PublicKey, []byte, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k == nil {
		return nil, nil, fmt.Errorf("%w: key is %T; the audit log signs with ECDSA P-256 keys", ErrInvalidConfig, pub)
	}
	if k.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: key is on %s; the audit log signs with ECDSA P-256 keys", ErrInvalidConfig, k.Curve.Params().Name)
	}
	spki, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encode public key: %v", ErrInvalidConfig, err)
	}
	return k, spki, nil
}

// validKeyName reports whether name may be a signed-note key name: not
// empty, valid UTF-8, no Unicode space, no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// ValidOrigin reports whether origin may name a log (FORMAT.md): 1 to 255
// bytes of printable ASCII without '+' or ':'.
func ValidOrigin(origin string) error {
	if !printable(origin, 255) || strings.ContainsAny(origin, "+:") {
		return fmt.Errorf("%w: origin %q must be 1 to 255 bytes of printable ASCII without '+' or ':' (for example keyquorum.example/site-a)", ErrInvalidConfig, truncate(origin))
	}
	return nil
}

func ecdsaKeyHash(spki []byte) uint32 {
	h := sha256.Sum256(spki)
	return binary.BigEndian.Uint32(h[:4])
}

func cosigKeyHash(name string, spki []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n'})
	h.Write(cosigTypeBytes)
	h.Write(spki)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

// signDigest signs SHA-256(msg) with s and checks the signature with pub,
// so a token that signs with another key or returns garbage is caught
// before the signature is stored or sent.
func signDigest(s crypto.Signer, pub *ecdsa.PublicKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return nil, fmt.Errorf("%w: the signer's signature does not verify with its public key", ErrBadSignature)
	}
	return sig, nil
}

// checkpointSigner signs checkpoints with type 0x02.
type checkpointSigner struct {
	name string
	hash uint32
	s    crypto.Signer
	pub  *ecdsa.PublicKey
}

func newCheckpointSigner(origin string, s crypto.Signer) (*checkpointSigner, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no signer", ErrInvalidConfig)
	}
	pub, spki, err := p256Key(s.Public())
	if err != nil {
		return nil, err
	}
	return &checkpointSigner{name: origin, hash: ecdsaKeyHash(spki), s: s, pub: pub}, nil
}

func (c *checkpointSigner) Name() string                    { return c.name }
func (c *checkpointSigner) KeyHash() uint32                 { return c.hash }
func (c *checkpointSigner) Sign(msg []byte) ([]byte, error) { return signDigest(c.s, c.pub, msg) }

// cosigner signs cosignatures with this package's 0xff type.
type cosigner struct {
	name string
	hash uint32
	s    crypto.Signer
	pub  *ecdsa.PublicKey
	now  func() time.Time
}

func newCosigner(name string, s crypto.Signer, now func() time.Time) (*cosigner, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: cosigner name %q must be non-empty without spaces or '+'", ErrInvalidConfig, truncate(name))
	}
	if s == nil {
		return nil, fmt.Errorf("%w: no signer", ErrInvalidConfig)
	}
	pub, spki, err := p256Key(s.Public())
	if err != nil {
		return nil, err
	}
	return &cosigner{name: name, hash: cosigKeyHash(name, spki), s: s, pub: pub, now: now}, nil
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }

// Sign returns u64 timestamp || DER signature over the cosigned message.
func (c *cosigner) Sign(msg []byte) ([]byte, error) {
	ts := c.now().Unix()
	if ts < 0 {
		return nil, fmt.Errorf("audit: cosign: clock is before 1970")
	}
	sig, err := signDigest(c.s, c.pub, cosignedMessage(uint64(ts), msg))
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(ts)), sig...), nil
}

func cosignedMessage(ts uint64, text []byte) []byte {
	m := make([]byte, 0, len(cosignatureHeader)+32+len(text))
	m = append(m, cosignatureHeader...)
	m = append(m, "time "...)
	m = strconv.AppendUint(m, ts, 10)
	m = append(m, '\n')
	return append(m, text...)
}

// verifier implements note.Verifier for both signature types.
type verifier struct {
	name   string
	hash   uint32
	pub    *ecdsa.PublicKey
	cosign bool
	vkey   string
}

func (v *verifier) Name() string    { return v.name }
func (v *verifier) KeyHash() uint32 { return v.hash }

// Verify checks sig over the note text msg.
func (v *verifier) Verify(msg, sig []byte) bool {
	if !v.cosign {
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(v.pub, d[:], sig)
	}
	ts, ok := cosignatureTime(sig)
	if !ok {
		return false
	}
	d := sha256.Sum256(cosignedMessage(ts, msg))
	return ecdsa.VerifyASN1(v.pub, d[:], sig[8:])
}

// String returns the verifier key.
func (v *verifier) String() string { return v.vkey }

// cosignatureTime returns the timestamp of a cosignature's signature bytes.
func cosignatureTime(sig []byte) (uint64, bool) {
	if len(sig) < 8+8 {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	return ts, ts <= maxTimestamp
}

// NewVerifier returns the note.Verifier of a log's checkpoints: origin is
// the log's origin (the key name) and pub its P-256 signing key. It checks
// signature type 0x02 (FORMAT.md).
func NewVerifier(origin string, pub crypto.PublicKey) (note.Verifier, error) {
	if err := ValidOrigin(origin); err != nil {
		return nil, err
	}
	k, spki, err := p256Key(pub)
	if err != nil {
		return nil, err
	}
	h := ecdsaKeyHash(spki)
	return &verifier{name: origin, hash: h, pub: k, vkey: formatVKey(origin, h, append([]byte{sigTypeECDSA}, spki...))}, nil
}

// NewCosignatureVerifier returns the note.Verifier of a witness's
// cosignatures: name is the witness's cosigner name and pub its P-256 key.
// It checks this package's 0xff cosignature type (FORMAT.md).
func NewCosignatureVerifier(name string, pub crypto.PublicKey) (note.Verifier, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: cosigner name %q must be non-empty without spaces or '+'", ErrInvalidConfig, truncate(name))
	}
	k, spki, err := p256Key(pub)
	if err != nil {
		return nil, err
	}
	h := cosigKeyHash(name, spki)
	return &verifier{name: name, hash: h, pub: k, cosign: true, vkey: formatVKey(name, h, append(bytes.Clone(cosigTypeBytes), spki...))}, nil
}

func formatVKey(name string, hash uint32, key []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(key))
}

// VerifierKey returns the signed-note verifier key ("vkey") text of v, a
// verifier made by [NewVerifier], [NewCosignatureVerifier] or
// [ParseVerifierKey], for configuration files and for [Verify] on another
// machine.
func VerifierKey(v note.Verifier) (string, error) {
	ours, ok := v.(*verifier)
	if !ok {
		return "", fmt.Errorf("%w: %T is not a verifier of this package", ErrInvalidConfig, v)
	}
	return ours.vkey, nil
}

// ParseVerifierKey parses a verifier key made by [VerifierKey]: a log's
// checkpoint key (type 0x02) or a witness's cosignature key (type 0xff with
// this package's identifier). Any other type is [ErrMalformed].
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexHash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) || len(hexHash) != 8 {
		return nil, fmt.Errorf("%w: verifier key %q is not name+hash+key", ErrMalformed, truncate(vkey))
	}
	hash, err := strconv.ParseUint(hexHash, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key %q: key hash: %v", ErrMalformed, truncate(vkey), err)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 2 {
		return nil, fmt.Errorf("%w: verifier key %q: key is not base64", ErrMalformed, truncate(vkey))
	}
	var v note.Verifier
	switch {
	case key[0] == sigTypeECDSA:
		v, err = parsedVerifier(name, key[1:], NewVerifier)
	case bytes.HasPrefix(key, cosigTypeBytes):
		v, err = parsedVerifier(name, key[len(cosigTypeBytes):], NewCosignatureVerifier)
	default:
		return nil, fmt.Errorf("%w: verifier key %q: unsupported signature type %#02x", ErrMalformed, truncate(vkey), key[0])
	}
	if err != nil {
		return nil, err
	}
	if v.KeyHash() != uint32(hash) {
		return nil, fmt.Errorf("%w: verifier key %q: key hash %s does not match the key (%08x)", ErrMalformed, truncate(vkey), hexHash, v.KeyHash())
	}
	return v, nil
}

func parsedVerifier(name string, spki []byte, mk func(string, crypto.PublicKey) (note.Verifier, error)) (note.Verifier, error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key for %s: public key: %v", ErrMalformed, name, err)
	}
	v, err := mk(name, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key for %s: %v", ErrMalformed, name, err)
	}
	return v, nil
}
