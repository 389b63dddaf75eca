package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxProofLen is the most consistency-proof lines a request may carry
// (C2SP tlog-witness).
const maxProofLen = 63

// CosignRequest asks a witness to cosign a checkpoint: the signed
// checkpoint and a consistency proof from the size of the last checkpoint
// the witness cosigned for the origin. Its wire form (Marshal,
// [ParseCosignRequest]) is the body of C2SP tlog-witness add-checkpoint.
type CosignRequest struct {
	// OldSize is the size of the last checkpoint the witness cosigned for
	// the origin, as the origin believes it (0 if none).
	OldSize uint64
	// Proof is the RFC 6962 consistency proof from OldSize to the
	// checkpoint's size (empty if OldSize is 0 or equals the size).
	Proof []Hash
	// Checkpoint is the signed checkpoint.
	Checkpoint []byte
}

// Marshal encodes r as a tlog-witness add-checkpoint body: "old N", the
// proof hashes one per line, an empty line, the signed checkpoint.
func (r *CosignRequest) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(h.String())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseCosignRequest decodes a request made by Marshal. It fails with
// [ErrMalformed] on anything else; it does not verify the checkpoint.
func ParseCosignRequest(b []byte) (*CosignRequest, error) {
	if len(b) > maxNoteSize+(maxProofLen+1)*64 {
		return nil, fmt.Errorf("%w: cosign request is %d bytes", ErrMalformed, len(b))
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: cosign request has no empty line before the checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	oldText, found := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseUint(oldText, 10, 64)
	if !found || err != nil || strconv.FormatUint(old, 10) != oldText {
		return nil, fmt.Errorf("%w: cosign request must start with \"old N\"", ErrMalformed)
	}
	if len(lines)-1 > maxProofLen {
		return nil, fmt.Errorf("%w: cosign request has %d proof lines, more than %d", ErrMalformed, len(lines)-1, maxProofLen)
	}
	r := &CosignRequest{OldSize: old, Checkpoint: bytes.Clone(cp)}
	for _, l := range lines[1:] {
		var h Hash
		if err := h.UnmarshalText([]byte(l)); err != nil {
			return nil, fmt.Errorf("cosign request proof: %w", err)
		}
		r.Proof = append(r.Proof, h)
	}
	return r, nil
}

// CosignRequest builds the request that asks a witness to cosign cp, a
// checkpoint of this log, given the size of the last checkpoint the
// witness cosigned for it (0 if none, or the Size of a *ConflictError the
// witness returned).
func (l *Log) CosignRequest(cp *Checkpoint, oldSize uint64) (*CosignRequest, error) {
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint", ErrInvalidConfig)
	}
	if cp.Origin != l.cfg.Origin || cp.Size > l.Size() {
		return nil, fmt.Errorf("%w: checkpoint of %s at size %d is not from this log (%s, size %d)", ErrNotFound, cp.Origin, cp.Size, l.cfg.Origin, l.Size())
	}
	if oldSize > cp.Size {
		return nil, fmt.Errorf("%w: the witness has seen size %d of %s, more than the checkpoint's %d: the witness has a newer checkpoint", ErrInconsistent, oldSize, l.cfg.Origin, cp.Size)
	}
	r := &CosignRequest{OldSize: oldSize, Checkpoint: cp.Note()}
	if oldSize > 0 && oldSize < cp.Size {
		p, err := tlog.ProveTree(int64(cp.Size), int64(oldSize), &hashReader{f: l.hashes})
		if err != nil {
			return nil, fmt.Errorf("audit: consistency proof %d..%d of %s: %w", oldSize, cp.Size, l.cfg.Origin, err)
		}
		r.Proof = hashesFromTlog(p)
	}
	return r, nil
}

// WitnessFunc delivers a cosigning request to one witness and returns
// the signature lines it answers with. Over a network it sends
// req.Marshal(), has the witness run [ParseCosignRequest] and
// [Witness.Cosign], and turns the witness's errors back into a
// *ConflictError (so RequestCosignature can retry) or a *RewriteError.
type WitnessFunc func(ctx context.Context, req *CosignRequest) ([]byte, error)

// RequestCosignature has the witness named witness cosign cp, the log's
// newest checkpoint, through ask, and stores the cosignature. The request
// starts from the size of the newest checkpoint that witness cosigned
// before (as far as this log remembers); if the witness answers with a
// *ConflictError, it is rebuilt from the witness's size and sent once
// more. It returns the checkpoint with its cosignatures, or the witness's
// error.
func (l *Log) RequestCosignature(ctx context.Context, cp *Checkpoint, witness string, ask WitnessFunc) (*Checkpoint, error) {
	var old uint64
	for _, c := range l.Checkpoints() {
		if c.CosignedBy(witness) && c.Size <= cp.Size {
			old = c.Size
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := l.CosignRequest(cp, old)
		if err != nil {
			return nil, err
		}
		sigs, err := ask(ctx, req)
		var conflict *ConflictError
		if errors.As(err, &conflict) && attempt == 0 && conflict.Size != old {
			old = conflict.Size
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: witness %s on %s at size %d: %w", witness, l.cfg.Origin, cp.Size, err)
		}
		return l.AddCosignatures(ctx, cp, sigs)
	}
}

// WitnessStore keeps, for each log origin a [Witness] cosigns, the last
// checkpoint it cosigned. SetLastSeen must be durable when it returns.
// A Witness serializes its calls per origin; one store serves one Witness.
type WitnessStore interface {
	// LastSeen returns the signed checkpoint last stored for origin, or
	// nil and no error if there is none.
	LastSeen(ctx context.Context, origin string) ([]byte, error)
	// SetLastSeen durably replaces origin's checkpoint.
	SetLastSeen(ctx context.Context, origin string, checkpoint []byte) error
}

// WitnessConfig configures a [Witness].
type WitnessConfig struct {
	// Name is the witness's cosigner name (a signed-note key name: no
	// spaces, no '+'), for example "keyquorum.example/site-b/witness".
	// Use one name per key.
	Name string
	// Signer cosigns; its public key must be ECDSA P-256 (in keyquorum,
	// the site's HSM identity or audit key).
	Signer crypto.Signer
	// Logs are the checkpoint verifiers (NewVerifier) of the logs this
	// witness cosigns; each verifier's name is its log's origin.
	Logs []note.Verifier
	// Store keeps the last checkpoint seen per origin.
	Store WitnessStore
	// Now is the clock for cosignature timestamps; nil means time.Now.
	Now func() time.Time
}

// Witness checks other sites' checkpoints for consistency with what it
// saw before and cosigns them (C2SP tlog-witness and tlog-cosignature
// semantics, with this package's ECDSA P-256 cosignature type). It is
// safe for concurrent use.
type Witness struct {
	cosigner *cosigner
	verifier note.Verifier
	logs     map[string]note.Verifier
	store    WitnessStore

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// NewWitness returns a [Witness] for cfg.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: witness %s has no Store", ErrInvalidConfig, cfg.Name)
	}
	cs, err := newCosigner(cfg.Name, cfg.Signer, cfg.Now)
	if err != nil {
		return nil, err
	}
	v, err := NewCosignatureVerifier(cfg.Name, cfg.Signer.Public())
	if err != nil {
		return nil, err
	}
	w := &Witness{cosigner: cs, verifier: v, logs: make(map[string]note.Verifier), store: cfg.Store, locks: make(map[string]*sync.Mutex)}
	for i, lv := range cfg.Logs {
		if lv == nil {
			return nil, fmt.Errorf("%w: witness %s: Logs[%d] is nil", ErrInvalidConfig, cfg.Name, i)
		}
		if err := ValidOrigin(lv.Name()); err != nil {
			return nil, err
		}
		if _, dup := w.logs[lv.Name()]; dup {
			return nil, fmt.Errorf("%w: witness %s: two keys for origin %s", ErrInvalidConfig, cfg.Name, lv.Name())
		}
		w.logs[lv.Name()] = lv
	}
	return w, nil
}

// Verifier returns the verifier of this witness's cosignatures, for the
// [Config.Witnesses] of the logs it cosigns.
func (w *Witness) Verifier() note.Verifier { return w.verifier }

func (w *Witness) lock(origin string) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.locks[origin]
	if m == nil {
		m = new(sync.Mutex)
		w.locks[origin] = m
	}
	return m
}

// Cosign checks req and returns this witness's cosignature line on its
// checkpoint. In order:
//
//   - an origin the witness is not configured for: ErrUnknownOrigin;
//   - a checkpoint without a valid signature of the origin's key:
//     ErrBadSignature;
//   - a checkpoint smaller than the last one cosigned for the origin, or of
//     the same size with another root: *RewriteError (ErrRewritten),
//     whatever the request's old size;
//   - an old size larger than the checkpoint's, a proof where none belongs
//     or a malformed request: ErrMalformed;
//   - an old size that is not the size last cosigned: *ConflictError with
//     that size (retry with a proof from it);
//   - a consistency proof that does not verify: *RewriteError.
//
// Otherwise the checkpoint is durably stored as the origin's last seen and
// then cosigned, so the witness never cosigns two inconsistent
// checkpoints, even across a crash. A *RewriteError is evidence to keep
// and to raise an alert about; the witness keeps the old checkpoint.
func (w *Witness) Cosign(ctx context.Context, req *CosignRequest) ([]byte, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil cosign request", ErrMalformed)
	}
	origin, _, _ := strings.Cut(noteText(string(req.Checkpoint)), "\n")
	lv, ok := w.logs[origin]
	if !ok {
		return nil, fmt.Errorf("%w: witness %s does not witness %q", ErrUnknownOrigin, w.cosigner.name, truncate(origin))
	}
	cp, err := openCheckpoint(req.Checkpoint, lv, note.VerifierList(lv))
	if err != nil {
		return nil, fmt.Errorf("audit: witness %s: checkpoint of %s: %w", w.cosigner.name, origin, err)
	}
	m := w.lock(origin)
	m.Lock()
	defer m.Unlock()

	seenNote, err := w.store.LastSeen(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("audit: witness %s: last checkpoint of %s: %w", w.cosigner.name, origin, err)
	}
	var seen *Checkpoint
	if seenNote != nil {
		if seen, err = openCheckpoint(seenNote, lv, note.VerifierList(lv)); err != nil {
			return nil, fmt.Errorf("%w: witness %s: the stored checkpoint of %s does not verify (%v); the witness store is damaged", ErrCorrupted, w.cosigner.name, origin, err)
		}
	}
	evidence := func(kind string) error {
		return &RewriteError{Origin: origin, Kind: kind, Seen: string(seen.note), Got: string(req.Checkpoint), OldSize: req.OldSize, Proof: req.Proof}
	}
	var seenSize uint64
	if seen != nil {
		seenSize = seen.Size
		switch {
		case cp.Size < seen.Size:
			return nil, evidence(RewriteTruncated)
		case cp.Size == seen.Size && cp.Root != seen.Root:
			return nil, evidence(RewriteForked)
		}
	}
	if req.OldSize > cp.Size {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint's %d", ErrMalformed, req.OldSize, cp.Size)
	}
	if req.OldSize != seenSize {
		return nil, &ConflictError{Origin: origin, Size: seenSize}
	}
	if seenSize == 0 || seenSize == cp.Size {
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("%w: a consistency proof from size %d to %d must be empty", ErrMalformed, seenSize, cp.Size)
		}
	} else if err := tlog.CheckTree(hashesToTlog(req.Proof), int64(cp.Size), tlog.Hash(cp.Root), int64(seenSize), tlog.Hash(seen.Root)); err != nil {
		return nil, evidence(RewriteInconsistent)
	}
	if seen == nil || cp.Size > seen.Size {
		// Keep only the origin's signature: cosignatures of others are
		// not this witness's business.
		own, err := note.Sign(&note.Note{Text: cp.Text(), Sigs: []note.Signature{logSignature(cp, lv)}})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if err := w.store.SetLastSeen(ctx, origin, own); err != nil {
			return nil, fmt.Errorf("audit: witness %s: store checkpoint of %s at size %d: %w", w.cosigner.name, origin, cp.Size, err)
		}
	}
	signed, err := note.Sign(&note.Note{Text: cp.Text()}, w.cosigner)
	if err != nil {
		return nil, fmt.Errorf("audit: witness %s: cosign %s at size %d: %w", w.cosigner.name, origin, cp.Size, err)
	}
	return signed[len(cp.Text())+1:], nil
}

// logSignature returns the log's signature from cp's note.
func logSignature(cp *Checkpoint, lv note.Verifier) note.Signature {
	for _, line := range strings.Split(string(cp.note[len(cp.Text())+1:]), "\n") {
		name, b64, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && name == lv.Name() && len(raw) >= 4 && binary.BigEndian.Uint32(raw) == lv.KeyHash() {
			return note.Signature{Name: name, Hash: lv.KeyHash(), Base64: b64}
		}
	}
	return note.Signature{}
}

// CheckEvidence re-checks a *RewriteError with the origin's checkpoint
// verifier, for an operator or auditor who received it from a witness:
// both checkpoints must be signed by the origin and show what Kind says
// (for [RewriteInconsistent]: the proof the origin sent fails). It returns
// nil if the evidence holds.
func CheckEvidence(e *RewriteError, log note.Verifier) error {
	if e == nil || log == nil {
		return fmt.Errorf("%w: no evidence or no verifier", ErrInvalidConfig)
	}
	known := note.VerifierList(log)
	seen, err := openCheckpoint([]byte(e.Seen), log, known)
	if err != nil {
		return fmt.Errorf("evidence: seen checkpoint: %w", err)
	}
	got, err := openCheckpoint([]byte(e.Got), log, known)
	if err != nil {
		return fmt.Errorf("evidence: new checkpoint: %w", err)
	}
	if e.Origin != log.Name() {
		return fmt.Errorf("%w: evidence names origin %q, the key is for %q", ErrMalformed, truncate(e.Origin), log.Name())
	}
	switch e.Kind {
	case RewriteTruncated:
		if got.Size < seen.Size {
			return nil
		}
	case RewriteForked:
		if got.Size == seen.Size && got.Root != seen.Root {
			return nil
		}
	case RewriteInconsistent:
		if len(e.Proof) <= maxProofLen && e.OldSize == seen.Size && seen.Size > 0 && seen.Size < got.Size &&
			tlog.CheckTree(hashesToTlog(e.Proof), int64(got.Size), tlog.Hash(got.Root), int64(seen.Size), tlog.Hash(seen.Root)) != nil {
			return nil
		}
	}
	return fmt.Errorf("%w: the two checkpoints do not show a %q rewrite", ErrMalformed, e.Kind)
}

// FileWitnessStore is a [WitnessStore] in a private directory: one file per
// origin, replaced atomically (temp file, fsync, rename, fsync of the
// directory). An open store holds the directory's lock.
type FileWitnessStore struct {
	dir   string
	lockF *os.File
}

// OpenWitnessStore opens (creating it with mode 0700 if needed) the
// witness store in dir. It fails with [ErrLocked] if another store has it
// open.
func OpenWitnessStore(dir string) (*FileWitnessStore, error) {
	if err := prepareDir(dir, true); err != nil {
		return nil, err
	}
	lockF, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return &FileWitnessStore{dir: dir, lockF: lockF}, nil
}

// Close releases the store's lock.
func (s *FileWitnessStore) Close() error { return unlockDir(s.lockF) }

func (s *FileWitnessStore) fileName(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return "origin-" + hex.EncodeToString(h[:16])
}

// LastSeen implements [WitnessStore].
func (s *FileWitnessStore) LastSeen(ctx context.Context, origin string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := openFile(s.dir, s.fileName(origin), openRead)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNoteSize+1))
	if err != nil {
		return nil, fmt.Errorf("audit: read witness store %s: %w", s.dir, err)
	}
	if len(b) > maxNoteSize {
		return nil, fmt.Errorf("%w: witness store %s: checkpoint of %s is too large", ErrCorrupted, s.dir, origin)
	}
	return b, nil
}

// SetLastSeen implements [WitnessStore].
func (s *FileWitnessStore) SetLastSeen(ctx context.Context, origin string, checkpoint []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("audit: witness store %s: %w", s.dir, err)
	}
	tmp := f.Name()
	_, err = f.Write(checkpoint)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, s.fileName(origin)))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("audit: witness store %s: write checkpoint of %s: %w", s.dir, origin, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("audit: witness store %s: %w", s.dir, err)
	}
	return nil
}
