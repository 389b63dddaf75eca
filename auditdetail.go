package keyquorum

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/hsmshare"
)

// Sealed detail parts of audit entries (audit.Record.Detail) use envelope
// encryption, so that they outlive seal-key rotation: the audit log's tree
// covers the hash of the sealed bytes, so they can never be re-sealed, but
// the data key they are sealed under is a store record, which
// [Node.RotateSealKey] re-seals with every other record.
//
// At every start (with the audit log on) the site draws a 32-byte data key
// from its generator and stores it sealed by the HSM seal key as store
// record kind "auditkey", ID the hex of a random 16-byte data-key ID,
// version 1: one sealed-store write per start, none per entry. A sealed
// detail, version 1, is
//
//	0x01 || data-key ID (16) || nonce (12) || AES-256-GCM(data key, nonce, plaintext, AAD) (len(plaintext)+16)
//
// with AAD = "keyquorum/audit-detail/v1" || 0x00 || the entry's detail ID
// (32 hex digits, ASCII) || data-key ID, so that a sealed part moved to
// another entry, or relabelled with another data key, fails to open.
// Nonces are random; a data key seals only what one start of the site
// appends, far below GCM's limit for random nonces.
const (
	kindAuditKey          = "auditkey"
	auditDetailVersion    = 0x01
	auditDataKeyIDLen     = 16
	auditDataKeyLen       = 32
	auditDetailNonceLen   = 12
	auditDetailHeaderLen  = 1 + auditDataKeyIDLen + auditDetailNonceLen
	auditDetailOverhead   = auditDetailHeaderLen + 16
	auditDetailAADTag     = "keyquorum/audit-detail/v1\x00"
	maxAuditDetailPayload = audit.MaxDetailSize - auditDetailOverhead
)

// ErrAuditDetail means the sealed detail part of an audit entry does not
// open: it was altered, it belongs to another entry, it is not in a
// format this version reads, or its data key is not in this site's store
// (the log was copied from another site, or the store was restored from
// an older backup). Verify the log (kqnode audit verify) to tell damage
// from a missing key.
var ErrAuditDetail = errors.New("keyquorum: sealed audit detail does not open")

// detailSealer is the audit log's [audit.Sealer]: AES-256-GCM under data
// keys kept sealed in the store (see the format above). It is safe for
// concurrent use.
type detailSealer struct {
	store *hsmshare.Store

	mu     sync.Mutex
	id     [auditDataKeyIDLen]byte            // this start's data key
	keys   map[[auditDataKeyIDLen]byte][]byte // data keys by ID, opened from the store; wiped by Close
	closed bool
}

var _ audit.Sealer = (*detailSealer)(nil)

// newDetailSealer makes this start's data key from random and stores it
// sealed in store.
func newDetailSealer(ctx context.Context, store *hsmshare.Store, random io.Reader) (*detailSealer, error) {
	s := &detailSealer{store: store, keys: make(map[[auditDataKeyIDLen]byte][]byte)}
	if _, err := io.ReadFull(random, s.id[:]); err != nil {
		return nil, fmt.Errorf("keyquorum: audit data key ID: read randomness: %w", err)
	}
	key := make([]byte, auditDataKeyLen)
	if _, err := io.ReadFull(random, key); err != nil {
		clear(key)
		return nil, fmt.Errorf("keyquorum: audit data key: read randomness: %w", err)
	}
	if err := store.Put(ctx, kindAuditKey, hex.EncodeToString(s.id[:]), 1, key); err != nil {
		clear(key)
		return nil, fmt.Errorf("keyquorum: store the audit data key (the site cannot seal audit details; check the token and the store directory, then start again): %w", err)
	}
	s.keys[s.id] = key
	return s, nil
}

// String redacts the data keys.
func (s *detailSealer) String() string { return "keyquorum.detailSealer{keys: redacted}" }

// Close wipes the data keys held in memory. Seal and Open fail afterwards.
func (s *detailSealer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, k := range s.keys {
		clear(k)
		delete(s.keys, id)
	}
	s.closed = true
}

// aead returns the AEAD of data key id, opening the key from the store
// the first time. The AEAD holds its own expanded copy of the key, so
// Close may wipe the map's copy while a caller still uses it.
func (s *detailSealer) aead(ctx context.Context, id [auditDataKeyIDLen]byte) (cipher.AEAD, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("keyquorum: audit detail: %w", ErrClosed)
	}
	key, ok := s.keys[id]
	if ok {
		defer s.mu.Unlock()
		return newDetailAEAD(key)
	}
	s.mu.Unlock()

	key, _, err := s.store.Get(ctx, kindAuditKey, hex.EncodeToString(id[:]))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: its data key %x is not in store %s (was the log copied from another site, or the store restored from an older backup?)", ErrAuditDetail, id, s.store.Dir())
	}
	if err != nil {
		return nil, fmt.Errorf("keyquorum: audit detail: open data key %x: %w", id, err)
	}
	if len(key) != auditDataKeyLen {
		clear(key)
		return nil, fmt.Errorf("%w: data key %x in store %s is %d bytes, not %d", ErrAuditDetail, id, s.store.Dir(), len(key), auditDataKeyLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		clear(key)
		return nil, fmt.Errorf("keyquorum: audit detail: %w", ErrClosed)
	}
	if old, ok := s.keys[id]; ok { // a concurrent Open cached it first
		clear(key)
		key = old
	} else {
		s.keys[id] = key
	}
	return newDetailAEAD(key)
}

func newDetailAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: audit detail: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: audit detail: %w", err)
	}
	return g, nil
}

// detailAAD is the additional data of a sealed detail.
func detailAAD(detailID string, keyID []byte) []byte {
	aad := make([]byte, 0, len(auditDetailAADTag)+len(detailID)+len(keyID))
	aad = append(aad, auditDetailAADTag...)
	aad = append(aad, detailID...)
	return append(aad, keyID...)
}

// Seal encrypts plaintext for the entry detail id under this start's
// data key. It neither keeps nor modifies plaintext.
func (s *detailSealer) Seal(ctx context.Context, id string, plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxAuditDetailPayload {
		return nil, fmt.Errorf("keyquorum: audit detail of %d bytes is larger than the %d a sealed detail can hold", len(plaintext), maxAuditDetailPayload)
	}
	g, err := s.aead(ctx, s.id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, auditDetailHeaderLen, auditDetailOverhead+len(plaintext))
	out[0] = auditDetailVersion
	copy(out[1:], s.id[:])
	// Nonces need only be unique, not secret.
	if _, err := rand.Read(out[1+auditDataKeyIDLen : auditDetailHeaderLen]); err != nil {
		return nil, fmt.Errorf("keyquorum: audit detail nonce: %w", err)
	}
	return g.Seal(out, out[1+auditDataKeyIDLen:auditDetailHeaderLen], plaintext, detailAAD(id, s.id[:])), nil
}

// Open returns the plaintext of sealed if it was sealed for the entry
// detail id by this site. A sealed part that does not open fails with
// [ErrAuditDetail]; the caller owns the plaintext and should wipe it.
func (s *detailSealer) Open(ctx context.Context, id string, sealed []byte) ([]byte, error) {
	if len(sealed) < auditDetailOverhead {
		return nil, fmt.Errorf("%w: %d bytes are too short for a sealed detail", ErrAuditDetail, len(sealed))
	}
	if sealed[0] != auditDetailVersion {
		return nil, fmt.Errorf("%w: sealed detail version %#02x (this version reads %#02x)", ErrAuditDetail, sealed[0], auditDetailVersion)
	}
	var keyID [auditDataKeyIDLen]byte
	copy(keyID[:], sealed[1:])
	g, err := s.aead(ctx, keyID)
	if err != nil {
		return nil, err
	}
	nonce := sealed[1+auditDataKeyIDLen : auditDetailHeaderLen]
	pt, err := g.Open(nil, nonce, sealed[auditDetailHeaderLen:], detailAAD(id, keyID[:]))
	if err != nil {
		return nil, fmt.Errorf("%w: detail %s fails its authentication: it was altered or belongs to another entry", ErrAuditDetail, id)
	}
	return pt, nil
}

// SignDetail is the sealed detail part of a sign.authorize audit entry:
// the whole intent the site authorized to sign, which the entry's fields
// name only by hashes. Its JSON form is the detail's plaintext, which
// [Node.AuditEntry] returns.
type SignDetail struct {
	// Format is "keyquorum/sign-detail/v1".
	Format string `json:"format"`
	// Kind is the intent's kind (policy.Kind).
	Kind string `json:"kind"`
	// Intent is the intent's canonical encoding (policy.Intent.Bytes,
	// base64 in JSON); policy.ParseIntent reads it back.
	Intent []byte `json:"intent"`
	// IntentHash is the intent hash in hex, as the entry's intent field.
	IntentHash string `json:"intent_hash"`
	// Summary is the summary's canonical JSON (wallet.Summary.JSON),
	// whose hash is the entry's summary field.
	Summary json.RawMessage `json:"summary,omitempty"`
	// SummaryText is the summary as people read it (wallet.Summary.Text).
	SummaryText string `json:"summary_text,omitempty"`
	// SummaryOmitted reports that the summary was left out because the
	// detail would exceed the largest sealed detail; it can be derived
	// again from Intent.
	SummaryOmitted bool `json:"summary_omitted,omitempty"`
}

// signDetailFormat is SignDetail.Format.
const signDetailFormat = "keyquorum/sign-detail/v1"

// encodeSignDetail returns the plaintext detail of a sign.authorize entry
// for plan.
func encodeSignDetail(a *authorization) ([]byte, error) {
	p := a.plan
	d := SignDetail{Format: signDetailFormat, Kind: string(p.Intent.Kind()), Intent: p.Intent.Bytes(),
		IntentHash: hex.EncodeToString(p.IntentHash[:]), Summary: json.RawMessage(p.SummaryJSON)}
	if p.Summary != nil {
		d.SummaryText = p.Summary.Text()
	}
	b, err := json.Marshal(d)
	if err == nil && len(b) > maxAuditDetailPayload {
		clear(b)
		d.Summary, d.SummaryText, d.SummaryOmitted = nil, "", true
		b, err = json.Marshal(d)
	}
	clear(d.Intent)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: encode the audit detail of a signing authorization: %w", err)
	}
	return b, nil
}

// AuditEntry returns entry seq of this site's audit log and, when the
// entry has a sealed detail part (a sign.authorize entry carries the
// whole intent, see [SignDetail]), the detail opened with the site's
// HSM-sealed data key. Only the running site can open a detail; the
// caller owns it and should wipe it when done. A missing entry fails
// wrapping [audit.ErrNotFound]; a detail whose sealed bytes do not match
// the entry's hash fails wrapping [audit.ErrCorrupted], one that does not
// decrypt wrapping [ErrAuditDetail].
func (n *Node) AuditEntry(ctx context.Context, seq uint64) (audit.Entry, []byte, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return audit.Entry{}, nil, err
	}
	defer done()
	if n.audit == nil {
		if n.cfg.Offline {
			return audit.Entry{}, nil, fmt.Errorf("keyquorum: audit entry %d: %w; start the site to read its audit log", seq, ErrOffline)
		}
		return audit.Entry{}, nil, fmt.Errorf("keyquorum: audit entry %d: %w: this site keeps no audit log (Config.DisableAudit)", seq, ErrInvalidConfig)
	}
	e, err := n.audit.Entry(ctx, seq)
	if err != nil {
		return audit.Entry{}, nil, fmt.Errorf("keyquorum: audit entry %d: %w", seq, err)
	}
	if e.Detail == nil {
		return e, nil, nil
	}
	d, err := n.audit.OpenDetail(ctx, seq)
	if err != nil {
		return e, nil, fmt.Errorf("keyquorum: audit entry %d: %w", seq, err)
	}
	return e, d, nil
}
