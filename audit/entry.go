package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// Limits of the entry schema (FORMAT.md).
const (
	// FormatVersion is the entry format version this package writes and
	// reads (the "v" member).
	FormatVersion = 1
	// MaxEntrySize is the largest entry JSON, in bytes.
	MaxEntrySize = 64 << 10
	// MaxDetailSize is the largest sealed detail part, in bytes.
	MaxDetailSize = 1 << 20
	// MaxFields is the most fields an entry may carry.
	MaxFields = 64
	// MaxFieldValueLen is the longest field value, in bytes.
	MaxFieldValueLen = 4096
	// MaxNameLen is the longest entry type or field name, in bytes.
	MaxNameLen = 64
	// MaxSiteLen is the longest site name, in bytes.
	MaxSiteLen = 128
)

// Record is what a caller appends: the entry's type and fields, and
// optionally a detail part that is sealed before it is stored. The log
// adds the sequence number, time and site.
type Record struct {
	// Type says what happened: 1 to MaxNameLen bytes of [a-z0-9._-], for
	// example "sign.proposal".
	Type string
	// Fields are the entry's facts, never a secret: at most MaxFields,
	// names like Type, values valid UTF-8 of at most MaxFieldValueLen
	// bytes. Digests and keys are hex, amounts decimal, lists
	// comma-separated.
	Fields map[string]string
	// Detail, if not nil, is sealed with the log's Sealer; only the sealed
	// bytes are stored, and the entry carries their SHA-256. Append does
	// not keep or modify it.
	Detail []byte
}

// Entry is one committed log entry.
type Entry struct {
	// Seq is the entry's sequence number, its 0-based position in the log.
	Seq uint64
	// Time is when the entry was appended (UTC, never before the previous
	// entry's time).
	Time time.Time
	// Site is the site that wrote the entry.
	Site string
	// Type says what happened.
	Type string
	// Fields are the entry's facts (nil when it has none).
	Fields map[string]string
	// Detail refers to the sealed detail part, or is nil.
	Detail *Detail

	raw []byte // the canonical JSON, the tree leaf
}

// Detail refers to an entry's sealed detail part.
type Detail struct {
	// ID binds the sealed bytes to this entry: it is passed to
	// Sealer.Seal and Sealer.Open (32 hex digits, random).
	ID string
	// SHA256 is the hex SHA-256 of the sealed bytes.
	SHA256 string
	// Size is the length of the sealed bytes.
	Size int
}

// JSON returns the entry's canonical JSON (FORMAT.md), the bytes the tree
// covers. The caller may modify the returned slice.
func (e Entry) JSON() []byte { return bytes.Clone(e.raw) }

// Hash returns the entry's RFC 6962 leaf hash, SHA-256(0x00 || JSON).
func (e Entry) Hash() Hash { return Hash(tlog.RecordHash(e.raw)) }

// entryJSON is the wire form; field order is the canonical member order.
type entryJSON struct {
	V      int               `json:"v"`
	Seq    uint64            `json:"seq"`
	Time   string            `json:"time"`
	Site   string            `json:"site"`
	Type   string            `json:"type"`
	Fields map[string]string `json:"fields,omitempty"`
	Detail *detailJSON       `json:"detail,omitempty"`
}

type detailJSON struct {
	ID     string `json:"id"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// validName reports whether s is 1..MaxNameLen bytes of [a-z0-9._-].
func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printable reports whether s is 1..maxLen bytes of printable ASCII
// (0x21..0x7e).
func printable(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validateFields checks type and fields against the schema.
func validateFields(typ string, fields map[string]string) error {
	if !validName(typ) {
		return fmt.Errorf("type %q must be 1 to %d bytes of a-z, 0-9, '.', '_', '-'", truncate(typ), MaxNameLen)
	}
	if len(fields) > MaxFields {
		return fmt.Errorf("%d fields, more than the %d allowed", len(fields), MaxFields)
	}
	for k, v := range fields {
		if !validName(k) {
			return fmt.Errorf("field name %q must be 1 to %d bytes of a-z, 0-9, '.', '_', '-'", truncate(k), MaxNameLen)
		}
		if len(v) > MaxFieldValueLen {
			return fmt.Errorf("field %s is %d bytes, more than the %d allowed", k, len(v), MaxFieldValueLen)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("field %s is not valid UTF-8", k)
		}
	}
	return nil
}

func (d *Detail) validate() error {
	if !isHex(d.ID, 32) {
		return fmt.Errorf("detail id %q is not 32 hex digits", truncate(d.ID))
	}
	if !isHex(d.SHA256, 64) {
		return fmt.Errorf("detail sha256 %q is not 64 hex digits", truncate(d.SHA256))
	}
	if d.Size < 1 || d.Size > MaxDetailSize {
		return fmt.Errorf("detail size %d is not in 1..%d", d.Size, MaxDetailSize)
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// worstTime is the longest time string a log writes, for size checks.
var worstTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// checkRecordSize reports an error if rec, with the largest sequence
// number and time the log can give it, would exceed MaxEntrySize.
func checkRecordSize(site string, rec Record, d *Detail) error {
	b, err := encodeEntry(Entry{Seq: math.MaxUint64, Time: worstTime, Site: site, Type: rec.Type, Fields: rec.Fields, Detail: d})
	if err != nil {
		return err
	}
	if len(b) > MaxEntrySize {
		return fmt.Errorf("entry would be %d bytes, more than the %d allowed", len(b), MaxEntrySize)
	}
	return nil
}

// encodeEntry returns e's canonical JSON. It does not check MaxEntrySize.
func encodeEntry(e Entry) ([]byte, error) {
	w := entryJSON{
		V:    FormatVersion,
		Seq:  e.Seq,
		Time: e.Time.UTC().Format(time.RFC3339Nano),
		Site: e.Site,
		Type: e.Type,
	}
	if len(e.Fields) > 0 {
		w.Fields = e.Fields
	}
	if e.Detail != nil {
		w.Detail = &detailJSON{ID: e.Detail.ID, SHA256: e.Detail.SHA256, Size: e.Detail.Size}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseEntry parses and checks one entry in canonical JSON (FORMAT.md),
// such as a line of Export's output or the entry of an [InclusionProof]. It
// fails with [ErrCorrupted] if b is not an entry in canonical form.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) == 0 || len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("%w: entry is %d bytes, not 1..%d", ErrCorrupted, len(b), MaxEntrySize)
	}
	var w entryJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Entry{}, fmt.Errorf("%w: entry is not valid JSON of the entry schema: %v", ErrCorrupted, err)
	}
	if dec.More() {
		return Entry{}, fmt.Errorf("%w: data after the entry's JSON object", ErrCorrupted)
	}
	if w.V != FormatVersion {
		return Entry{}, fmt.Errorf("%w: entry format version %d; this build reads version %d", ErrCorrupted, w.V, FormatVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: entry time %q: %v", ErrCorrupted, truncate(w.Time), err)
	}
	e := Entry{Seq: w.Seq, Time: t.UTC(), Site: w.Site, Type: w.Type, Fields: w.Fields}
	if !printable(e.Site, MaxSiteLen) {
		return Entry{}, fmt.Errorf("%w: entry site %q is not 1 to %d bytes of printable ASCII", ErrCorrupted, truncate(e.Site), MaxSiteLen)
	}
	if err := validateFields(e.Type, e.Fields); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrCorrupted, err)
	}
	if w.Detail != nil {
		e.Detail = &Detail{ID: w.Detail.ID, SHA256: w.Detail.SHA256, Size: w.Detail.Size}
		if err := e.Detail.validate(); err != nil {
			return Entry{}, fmt.Errorf("%w: %v", ErrCorrupted, err)
		}
	}
	// Reject every other encoding of the same content (whitespace, member
	// order, escapes, duplicate names, "fields":{}, time zones): a stored
	// entry is exactly the bytes the log wrote.
	canon, err := encodeEntry(e)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrCorrupted, err)
	}
	if !bytes.Equal(canon, b) {
		return Entry{}, fmt.Errorf("%w: entry %d is not in canonical form", ErrCorrupted, e.Seq)
	}
	e.raw = bytes.Clone(b)
	return e, nil
}

// detailRef describes sealed bytes for an entry.
func detailRef(id string, sealed []byte) *Detail {
	sum := sha256.Sum256(sealed)
	return &Detail{ID: id, SHA256: hex.EncodeToString(sum[:]), Size: len(sealed)}
}

// cloneFields copies a caller's map so later changes to it cannot reach
// the log.
func cloneFields(f map[string]string) map[string]string {
	if len(f) == 0 {
		return nil
	}
	return maps.Clone(f)
}
