package hsmshare

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// The sealed blob format is specified in FORMAT.md; keep the two in step.

// FormatVersion is the sealed blob format version this package writes.
const FormatVersion = 1

// MaxPlaintextSize is the largest plaintext Seal accepts (64 MiB).
const MaxPlaintextSize = 64 << 20

// MaxNameLen is the longest kind or key ID, in bytes.
const MaxNameLen = 128

// MaxPartyIDLen is the longest party ID, in bytes.
const MaxPartyIDLen = 255

// maxSealKeyIDLen bounds a seal key's CKA_ID as stored in a blob.
const maxSealKeyIDLen = 64

const (
	gcmIVLen  = 12 // NIST SP 800-38D §8.2: 96-bit IVs
	gcmTagLen = 16 // 128-bit tags only
	cbcIVLen  = 16
	macLen    = 32 // HMAC-SHA256
)

var blobMagic = [4]byte{'K', 'Q', 'S', 'B'}

// Scheme is the authenticated-encryption construction that seals a blob.
// Its number is stored in every blob.
type Scheme uint8

const (
	// SchemeAuto is a Config value only: AES-GCM when the token offers it,
	// else the CBC+HMAC fallback.
	SchemeAuto Scheme = 0
	// SchemeGCM is AES-256-GCM (CKM_AES_GCM) with a 96-bit random IV and a
	// 128-bit tag; the blob header is the additional authenticated data.
	SchemeGCM Scheme = 1
	// SchemeCBCHMAC is encrypt-then-MAC for tokens without CKM_AES_GCM:
	// AES-256-CBC with PKCS#7 padding (CKM_AES_CBC_PAD) under the seal key,
	// then HMAC-SHA256 (CKM_SHA256_HMAC) under a second non-extractable key
	// over every blob byte before the MAC (header, IV, ciphertext).
	SchemeCBCHMAC Scheme = 2
)

// String names the scheme.
func (s Scheme) String() string {
	switch s {
	case SchemeAuto:
		return "auto"
	case SchemeGCM:
		return "aes-256-gcm"
	case SchemeCBCHMAC:
		return "aes-256-cbc-hmac-sha256"
	default:
		return fmt.Sprintf("scheme(%d)", uint8(s))
	}
}

// Header is what a sealed blob is bound to: it is stored in clear in the
// blob and authenticated together with the ciphertext, so a blob opens only
// for the same kind, key ID, party and version it was sealed for (and only
// under the same seal key, whose ID the blob also carries).
type Header struct {
	// Kind says what the secret is ("keyshare", "presignature", ...).
	// It follows ValidName.
	Kind string
	// KeyID names the record (for example a threshold key's ID). It
	// follows ValidName.
	KeyID string
	// PartyID is the owning party, 1..MaxPartyIDLen printable ASCII bytes.
	PartyID string
	// Version is the record's version number.
	Version uint64
}

// validate checks h's fields.
func (h Header) validate() error {
	if err := ValidName(h.Kind); err != nil {
		return fmt.Errorf("kind: %w", err)
	}
	if err := ValidName(h.KeyID); err != nil {
		return fmt.Errorf("key ID: %w", err)
	}
	return ValidPartyID(h.PartyID)
}

// ValidName reports whether s may be used as a kind or key ID: 1 to
// [MaxNameLen] bytes of lowercase letters, digits, '.', '_' and '-', and not
// "." or "..". The error wraps [ErrInvalidName].
func ValidName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %q must be 1 to %d bytes long", ErrInvalidName, truncateName(s), MaxNameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has byte %#x at offset %d; use only a-z, 0-9, '.', '_', '-'", ErrInvalidName, truncateName(s), c, i)
		}
	}
	return nil
}

// ValidPartyID reports whether s may be used as a party ID: 1 to
// [MaxPartyIDLen] bytes of printable ASCII without spaces (libp2p peer IDs
// qualify). The error wraps [ErrInvalidName].
func ValidPartyID(s string) error {
	if len(s) == 0 || len(s) > MaxPartyIDLen {
		return fmt.Errorf("%w: party ID must be 1 to %d bytes long", ErrInvalidName, MaxPartyIDLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: party ID has byte %#x at offset %d; use printable ASCII without spaces", ErrInvalidName, c, i)
		}
	}
	return nil
}

func truncateName(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// appendHeader appends the header (the authenticated data) of a blob.
func appendHeader(b []byte, scheme Scheme, sealKeyID []byte, h Header) []byte {
	b = append(b, blobMagic[:]...)
	b = append(b, FormatVersion, byte(scheme))
	b = append(b, byte(len(sealKeyID)))
	b = append(b, sealKeyID...)
	for _, f := range []string{h.Kind, h.KeyID, h.PartyID} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return binary.BigEndian.AppendUint64(b, h.Version)
}

// appendBody appends the length-prefixed IV and ciphertext. For
// SchemeCBCHMAC the caller then appends the MAC over everything so far.
func appendBody(b, iv, ct []byte) []byte {
	b = append(b, byte(len(iv)))
	b = append(b, iv...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ct)))
	return append(b, ct...)
}

// parsedBlob is a syntactically valid blob. Its slices alias the input.
type parsedBlob struct {
	format    byte
	scheme    Scheme
	sealKeyID []byte
	hdr       Header
	header    []byte // the authenticated header bytes
	iv        []byte
	ct        []byte
	macInput  []byte // SchemeCBCHMAC: everything before the MAC
	mac       []byte
}

// BlobInfo describes a sealed blob without opening it. None of it is
// authenticated until [SealKey.Open] succeeds.
type BlobInfo struct {
	// Format is the blob format version.
	Format int
	// Scheme is the construction that sealed the blob.
	Scheme Scheme
	// SealKeyID is the hex CKA_ID of the seal key that sealed it.
	SealKeyID string
	// Header is what the blob claims to be bound to.
	Header Header
	// Size is the blob length in bytes.
	Size int
}

// InspectBlob parses blob and reports what it claims to be, without any
// cryptographic check. It fails with [ErrCorrupted] for anything that is not
// a well-formed blob and with [ErrUnsupportedFormat] for a format version or
// scheme this build does not know.
func InspectBlob(blob []byte) (BlobInfo, error) {
	p, err := parseBlob(blob)
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{
		Format:    int(p.format),
		Scheme:    p.scheme,
		SealKeyID: hex.EncodeToString(p.sealKeyID),
		Header:    p.hdr,
		Size:      len(blob),
	}, nil
}

// reader walks a blob, remembering the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupted}, args...)...)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("truncated in %s at offset %d (%d bytes total)", what, r.off, len(r.b))
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8(what string) int {
	b := r.take(1, what)
	if b == nil {
		return 0
	}
	return int(b[0])
}

// field reads a u8 length and that many bytes; lengths outside [lo, hi]
// are corruption.
func (r *reader) field(what string, lo, hi int) []byte {
	n := r.u8(what + " length")
	if r.err == nil && (n < lo || n > hi) {
		r.fail("%s length %d outside %d..%d", what, n, lo, hi)
	}
	return r.take(n, what)
}

func parseBlob(b []byte) (*parsedBlob, error) {
	r := &reader{b: b}
	magic := r.take(len(blobMagic), "magic")
	if r.err == nil && string(magic) != string(blobMagic[:]) {
		return nil, fmt.Errorf("%w: not a sealed blob (bad magic)", ErrCorrupted)
	}
	p := &parsedBlob{}
	p.format = byte(r.u8("format version"))
	if r.err == nil && p.format != FormatVersion {
		return nil, fmt.Errorf("%w: blob format version %d; this build reads version %d (upgrade keyquorum)", ErrUnsupportedFormat, p.format, FormatVersion)
	}
	p.scheme = Scheme(r.u8("scheme"))
	if r.err == nil && p.scheme != SchemeGCM && p.scheme != SchemeCBCHMAC {
		return nil, fmt.Errorf("%w: unknown sealing scheme %d", ErrUnsupportedFormat, p.scheme)
	}
	p.sealKeyID = r.field("seal key ID", 1, maxSealKeyIDLen)
	kind := r.field("kind", 1, MaxNameLen)
	keyID := r.field("key ID", 1, MaxNameLen)
	party := r.field("party ID", 1, MaxPartyIDLen)
	ver := r.take(8, "version")
	if r.err != nil {
		return nil, r.err
	}
	p.hdr = Header{Kind: string(kind), KeyID: string(keyID), PartyID: string(party), Version: binary.BigEndian.Uint64(ver)}
	if err := p.hdr.validate(); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupted, err)
	}
	p.header = b[:r.off:r.off]

	wantIV := gcmIVLen
	if p.scheme == SchemeCBCHMAC {
		wantIV = cbcIVLen
	}
	p.iv = r.field("IV", wantIV, wantIV)
	ctLenB := r.take(4, "ciphertext length")
	if r.err != nil {
		return nil, r.err
	}
	ctLen := binary.BigEndian.Uint32(ctLenB)
	switch p.scheme {
	case SchemeGCM:
		if ctLen < gcmTagLen || ctLen > MaxPlaintextSize+gcmTagLen {
			return nil, fmt.Errorf("%w: GCM ciphertext length %d outside %d..%d", ErrCorrupted, ctLen, gcmTagLen, MaxPlaintextSize+gcmTagLen)
		}
	case SchemeCBCHMAC:
		if ctLen < cbcIVLen || ctLen%16 != 0 || ctLen > MaxPlaintextSize+16 {
			return nil, fmt.Errorf("%w: CBC ciphertext length %d is not a multiple of 16 in 16..%d", ErrCorrupted, ctLen, MaxPlaintextSize+16)
		}
	}
	p.ct = r.take(int(ctLen), "ciphertext")
	if p.scheme == SchemeCBCHMAC {
		p.macInput = b[:r.off:r.off]
		p.mac = r.take(macLen, "MAC")
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the blob", ErrCorrupted, len(b)-r.off)
	}
	return p, nil
}
