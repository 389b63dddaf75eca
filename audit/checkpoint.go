package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a SHA-256 tree hash. Its text form is base64, as in checkpoints.
type Hash [32]byte

// String returns h in base64.
func (h Hash) String() string { return base64.StdEncoding.EncodeToString(h[:]) }

// MarshalText encodes h in base64.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a base64 hash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := base64.StdEncoding.Strict().DecodeString(string(b))
	if err != nil || len(v) != len(h) {
		return fmt.Errorf("%w: %q is not a base64 SHA-256 hash", ErrMalformed, truncate(string(b)))
	}
	copy(h[:], v)
	return nil
}

// Checkpoint is a signed statement of a log's size and root hash (C2SP
// tlog-checkpoint; FORMAT.md). Values returned by this package have been
// verified: the log's signature and every listed cosignature.
type Checkpoint struct {
	// Origin names the log.
	Origin string
	// Size is the number of entries the checkpoint covers.
	Size uint64
	// Root is the Merkle tree hash of those entries.
	Root Hash
	// Cosignatures are the verified witness cosignatures on it.
	Cosignatures []Cosignature

	note []byte // the signed note
	rec  int    // number of the checkpoints-file record it was read from, or -1
}

// Cosignature is one witness's verified cosignature on a checkpoint.
type Cosignature struct {
	// Name is the witness's cosigner name.
	Name string
	// KeyHash is the cosigner key's signed-note key ID.
	KeyHash uint32
	// Time is when the witness cosigned.
	Time time.Time
}

// Note returns the signed note: the checkpoint text, the log's signature
// and the cosignatures.
func (c *Checkpoint) Note() []byte { return bytes.Clone(c.note) }

// Text returns the checkpoint's note text (the three lines the signatures
// cover).
func (c *Checkpoint) Text() string { return formatCheckpointText(c.Origin, c.Size, c.Root) }

// CosignedBy reports whether the witness name has cosigned c.
func (c *Checkpoint) CosignedBy(name string) bool {
	for _, s := range c.Cosignatures {
		if s.Name == name {
			return true
		}
	}
	return false
}

func (c *Checkpoint) clone() *Checkpoint {
	d := *c
	d.Cosignatures = append([]Cosignature(nil), c.Cosignatures...)
	d.note = bytes.Clone(c.note)
	return &d
}

func formatCheckpointText(origin string, size uint64, root Hash) string {
	return origin + "\n" + strconv.FormatUint(size, 10) + "\n" + root.String() + "\n"
}

// parseCheckpointText parses the three checkpoint lines. Extension lines
// are refused: this package never writes them.
func parseCheckpointText(text string) (*Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return nil, fmt.Errorf("%w: checkpoint text must be exactly origin, size and root hash lines", ErrMalformed)
	}
	origin, sizeText, rootText := lines[0], lines[1], lines[2]
	if err := ValidOrigin(origin); err != nil {
		return nil, fmt.Errorf("%w: checkpoint origin %q is not valid", ErrMalformed, truncate(origin))
	}
	size, err := strconv.ParseUint(sizeText, 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != sizeText || size > 1<<62 {
		return nil, fmt.Errorf("%w: checkpoint size %q is not a decimal number without leading zeros", ErrMalformed, truncate(sizeText))
	}
	c := &Checkpoint{Origin: origin, Size: size}
	if err := c.Root.UnmarshalText([]byte(rootText)); err != nil {
		return nil, fmt.Errorf("checkpoint root hash: %w", err)
	}
	if c.Root.String() != rootText {
		return nil, fmt.Errorf("%w: checkpoint root hash %q is not canonical base64", ErrMalformed, truncate(rootText))
	}
	return c, nil
}

// noteText returns the text part of a signed note (everything up to and
// including the newline before the last blank line), or "" if there is no
// signature block.
func noteText(signed string) string {
	i := strings.LastIndex(signed, "\n\n")
	if i < 0 {
		return ""
	}
	return signed[:i+1]
}

// OpenCheckpoint parses a signed checkpoint and verifies it: it must carry
// a valid signature of log (whose name is the origin) and every signature
// from one of witnesses must verify. Signatures of unknown keys are
// ignored, as C2SP signed-note requires. The result lists the verified
// cosignatures.
func OpenCheckpoint(signed []byte, log note.Verifier, witnesses ...note.Verifier) (*Checkpoint, error) {
	if log == nil {
		return nil, fmt.Errorf("%w: no verifier for the log's checkpoints", ErrInvalidConfig)
	}
	return openCheckpoint(signed, log, note.VerifierList(append([]note.Verifier{log}, witnesses...)...))
}

func openCheckpoint(signed []byte, log note.Verifier, known note.Verifiers) (*Checkpoint, error) {
	if len(signed) > maxNoteSize {
		return nil, fmt.Errorf("%w: signed checkpoint is %d bytes, more than %d", ErrMalformed, len(signed), maxNoteSize)
	}
	n, err := note.Open(signed, known)
	if err != nil {
		var inv *note.InvalidSignatureError
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &inv):
			return nil, fmt.Errorf("%w: checkpoint signature by %s+%08x does not verify", ErrBadSignature, inv.Name, inv.Hash)
		case errors.As(err, &unv):
			return nil, fmt.Errorf("%w: checkpoint is not signed by %s+%08x", ErrBadSignature, log.Name(), log.KeyHash())
		default:
			return nil, fmt.Errorf("%w: signed checkpoint: %v", ErrMalformed, err)
		}
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return nil, err
	}
	if c.Origin != log.Name() {
		return nil, fmt.Errorf("%w: checkpoint is for origin %q, not %q", ErrBadSignature, truncate(c.Origin), log.Name())
	}
	signedByLog := false
	for _, s := range n.Sigs {
		if s.Name == log.Name() && s.Hash == log.KeyHash() {
			signedByLog = true
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 4 {
			return nil, fmt.Errorf("%w: signature of %s", ErrMalformed, s.Name)
		}
		ts, ok := cosignatureTime(raw[4:])
		if !ok {
			return nil, fmt.Errorf("%w: cosignature of %s has no valid timestamp", ErrMalformed, s.Name)
		}
		c.Cosignatures = append(c.Cosignatures, Cosignature{Name: s.Name, KeyHash: s.Hash, Time: time.Unix(int64(ts), 0).UTC()})
	}
	if !signedByLog {
		return nil, fmt.Errorf("%w: checkpoint is not signed by %s+%08x", ErrBadSignature, log.Name(), log.KeyHash())
	}
	c.note = bytes.Clone(signed)
	c.rec = -1
	return c, nil
}

// maxRecent is how many of the newest checkpoints a Log keeps in memory
// (Checkpoints, Prove). Older ones stay in the file, where Verify reads
// them; a newer cosigned checkpoint covers every entry an older one does.
const maxRecent = 64

// scanCheckpoints reads the checkpoint records of f from byte start
// (record number k0) to the end. Every record must be framed correctly,
// hold a well-formed checkpoint of origin, never shrink, and not give a
// second root for a size; prev is the checkpoint before start, if any.
// Signatures are not checked here: fn gets each record's number, its
// (unverified) checkpoint text and its note. A torn last record is cut
// when repair is set and otherwise ignored. Problems are *VerifyError
// naming the record. It returns the end of the last good record and the
// number of records read.
func scanCheckpoints(f *os.File, start int64, k0 int, origin string, prev *Checkpoint, repair bool, fn func(k int, c *Checkpoint, note []byte) error) (end int64, n int, err error) {
	size, err := fileSize(f)
	if err != nil {
		return 0, 0, err
	}
	sc := newScanner(f, start, size)
	for k := k0; ; k++ {
		ok, err := sc.next()
		if err != nil {
			var re *recordError
			if errors.As(err, &re) && re.Torn {
				if repair {
					if err := f.Truncate(re.Off); err != nil {
						return 0, 0, fmt.Errorf("audit: cut torn record at byte %d of %s: %w", re.Off, checkpointsName, err)
					}
					if err := datasync(f); err != nil {
						return 0, 0, fmt.Errorf("audit: sync %s: %w", checkpointsName, err)
					}
				}
				return re.Off, k - k0, nil
			}
			if errors.As(err, &re) {
				return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: re.Error() + " of " + checkpointsName, Err: ErrCorrupted}
			}
			return 0, 0, fmt.Errorf("audit: read %s: %w", checkpointsName, err)
		}
		if !ok {
			return sc.off, k - k0, nil
		}
		if sc.typ != recCheckpoint {
			return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: fmt.Sprintf("record type %#02x is not a checkpoint", sc.typ), Err: ErrCorrupted}
		}
		c, err := parseCheckpointText(noteText(string(sc.a)))
		if err != nil {
			return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: err.Error(), Err: sentinelOf(err)}
		}
		if c.Origin != origin {
			return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: fmt.Sprintf("checkpoint of origin %q in the log of %q", truncate(c.Origin), origin), Err: ErrBadSignature}
		}
		if err := fn(k, c, sc.a); err != nil {
			return 0, 0, err
		}
		if prev != nil {
			switch {
			case c.Size < prev.Size:
				return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: fmt.Sprintf("size %d is smaller than the %d of the checkpoint before it: the log was truncated", c.Size, prev.Size), Err: ErrInconsistent}
			case c.Size == prev.Size && c.Root != prev.Root:
				return 0, 0, &VerifyError{Entry: -1, Checkpoint: k, Reason: fmt.Sprintf("a second, different root hash for size %d: the log was forked", c.Size), Err: ErrInconsistent}
			}
		}
		prev = c
	}
}

// recentCheckpoints scans f from start and returns, verified, the newest
// checkpoints (at most maxRecent, one per size) after those in have.
func recentCheckpoints(f *os.File, start int64, k0 int, log note.Verifier, known note.Verifiers, have []*Checkpoint, repair bool) (cps []*Checkpoint, end int64, n int, err error) {
	type rec struct {
		k    int
		size uint64
		note []byte
	}
	var prev *Checkpoint
	if len(have) > 0 {
		prev = have[len(have)-1]
	}
	var ring []rec
	end, n, err = scanCheckpoints(f, start, k0, log.Name(), prev, repair, func(k int, c *Checkpoint, note []byte) error {
		if len(ring) > 0 && ring[len(ring)-1].size == c.Size {
			ring = ring[:len(ring)-1] // the later record carries more cosignatures
		}
		ring = append(ring, rec{k: k, size: c.Size, note: bytes.Clone(note)})
		if len(ring) > 2*maxRecent {
			ring = append(ring[:0], ring[len(ring)-maxRecent:]...)
		}
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	cps = append([]*Checkpoint(nil), have...)
	for _, r := range ring {
		c, err := openCheckpoint(r.note, log, known)
		if err != nil {
			return nil, 0, 0, &VerifyError{Entry: -1, Checkpoint: r.k, Reason: err.Error(), Err: sentinelOf(err)}
		}
		c.rec = r.k
		if k := len(cps); k > 0 && cps[k-1].Size == c.Size {
			cps[k-1] = c
		} else {
			cps = append(cps, c)
		}
	}
	if len(cps) > maxRecent {
		cps = append([]*Checkpoint(nil), cps[len(cps)-maxRecent:]...)
	}
	return cps, end, n, nil
}

// sentinelOf returns the package sentinel err wraps, for VerifyError.
func sentinelOf(err error) error {
	for _, s := range []error{ErrBadSignature, ErrMalformed, ErrCorrupted, ErrInconsistent} {
		if errors.Is(err, s) {
			return s
		}
	}
	return ErrCorrupted
}

// Checkpoints returns the log's newest checkpoints (up to 64), one per
// size, oldest first, each with the cosignatures stored for it. [Verify]
// reads all of them from the file.
func (l *Log) Checkpoints() []*Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Checkpoint, len(l.cps))
	for i, c := range l.cps {
		out[i] = c.clone()
	}
	return out
}

// LatestCheckpoint returns the log's newest checkpoint, or nil if it has
// none.
func (l *Log) LatestCheckpoint() *Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cps) == 0 {
		return nil
	}
	return l.cps[len(l.cps)-1].clone()
}

// Checkpoint signs a checkpoint of the log's current size with the
// configured Signer and stores it durably before returning it. If the
// newest checkpoint already has the current size, it is returned and
// nothing is signed. The caches are synced first, so [Open] never needs to
// rebuild what a checkpoint covers.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if l.readOnly {
		return nil, fmt.Errorf("%w: sign a checkpoint of %s", ErrReadOnly, l.dir)
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	n := l.size.Load()
	if last := l.LatestCheckpoint(); last != nil && last.Size == n {
		return last, nil
	}
	for _, f := range []*os.File{l.index, l.hashes} {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("audit: checkpoint of %s: sync caches: %w", l.dir, err)
		}
	}
	root, err := tlog.TreeHash(int64(n), &hashReader{f: l.hashes})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint of %s: %w", l.dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit: checkpoint of %s: %w", l.dir, err)
	}
	signed, err := note.Sign(&note.Note{Text: formatCheckpointText(l.cfg.Origin, n, Hash(root))}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint of %s at size %d: %w", l.cfg.Origin, n, err)
	}
	c, err := openCheckpoint(signed, l.verifier, l.known)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint of %s just signed does not verify: %w", l.cfg.Origin, err)
	}
	if err := l.storeCheckpoint(c); err != nil {
		return nil, err
	}
	return c.clone(), nil
}

func (l *Log) checkOpen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s: %w", l.dir, ErrClosed)
	}
	return nil
}

// storeCheckpoint appends c's note to the checkpoints file, syncs it and
// makes c the newest checkpoint of its size. Needs cpMu.
func (l *Log) storeCheckpoint(c *Checkpoint) error {
	rec := appendRecord(nil, recCheckpoint, c.note, nil)
	if _, err := l.cpsFile.WriteAt(rec, l.cpEnd); err != nil {
		_ = l.cpsFile.Truncate(l.cpEnd)
		return fmt.Errorf("audit: store checkpoint of %s at size %d: %w", l.cfg.Origin, c.Size, err)
	}
	if err := datasync(l.cpsFile); err != nil {
		return fmt.Errorf("audit: store checkpoint of %s at size %d: fdatasync: %w", l.cfg.Origin, c.Size, err)
	}
	l.cpEnd += int64(len(rec))
	c.rec = l.cpCount
	l.cpCount++
	l.mu.Lock()
	if k := len(l.cps); k > 0 && l.cps[k-1].Size == c.Size {
		l.cps[k-1] = c
	} else {
		l.cps = append(l.cps, c)
		if len(l.cps) > maxRecent {
			l.cps = append(l.cps[:0:0], l.cps[len(l.cps)-maxRecent:]...)
		}
	}
	l.mu.Unlock()
	return nil
}

// AddCosignatures stores the cosignatures in sigs (signature lines, as a
// [Witness.Cosign] returns them) on cp, the log's newest checkpoint (a response
// that arrives after a newer checkpoint was signed is refused with
// [ErrNotFound]; have the newer one cosigned). Lines from
// keys not in [Config.Witnesses] are dropped; a line from a known witness
// that does not verify fails with [ErrBadSignature]. It returns the
// checkpoint with every cosignature stored so far.
func (l *Log) AddCosignatures(ctx context.Context, cp *Checkpoint, sigs []byte) (*Checkpoint, error) {
	if l.readOnly {
		return nil, fmt.Errorf("%w: add cosignatures to %s", ErrReadOnly, l.dir)
	}
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint", ErrInvalidConfig)
	}
	if err := checkSignatureLines(sigs); err != nil {
		return nil, err
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit: add cosignatures: %w", err)
	}
	stored := l.LatestCheckpoint()
	if stored == nil || stored.Root != cp.Root || stored.Origin != cp.Origin || stored.Size != cp.Size {
		return nil, fmt.Errorf("%w: %s: cosignatures are stored on the newest checkpoint only, and this is not it (size %d); have the newest one cosigned", ErrNotFound, l.cfg.Origin, cp.Size)
	}
	n, err := note.Open(append(bytes.Clone(stored.note), sigs...), l.known)
	if err != nil {
		var inv *note.InvalidSignatureError
		if errors.As(err, &inv) {
			return nil, fmt.Errorf("%w: cosignature by %s+%08x on %s at size %d does not verify", ErrBadSignature, inv.Name, inv.Hash, l.cfg.Origin, cp.Size)
		}
		return nil, fmt.Errorf("%w: cosignatures: %v", ErrMalformed, err)
	}
	if len(n.Sigs) == len(stored.Cosignatures)+1 {
		return stored.clone(), nil // nothing new from a known witness
	}
	n.UnverifiedSigs = nil
	signed, err := note.Sign(n)
	if err != nil {
		return nil, fmt.Errorf("%w: cosignatures: %v", ErrMalformed, err)
	}
	c, err := openCheckpoint(signed, l.verifier, l.known)
	if err != nil {
		return nil, err
	}
	if err := l.storeCheckpoint(c); err != nil {
		return nil, err
	}
	return c.clone(), nil
}

// checkSignatureLines checks that b is one or more signed-note signature
// lines.
func checkSignatureLines(b []byte) error {
	if len(b) == 0 || len(b) > maxNoteSize || b[len(b)-1] != '\n' {
		return fmt.Errorf("%w: cosignatures must be signature lines ending in a newline", ErrMalformed)
	}
	for _, line := range strings.SplitAfter(string(b[:len(b)-1]), "\n") {
		if !strings.HasPrefix(line, "— ") {
			return fmt.Errorf("%w: %q is not a signature line", ErrMalformed, truncate(line))
		}
	}
	return nil
}

// RunCheckpoints signs a checkpoint every interval while the log grows and
// once more when ctx ends (a site's shutdown). After each attempt it calls
// report (if not nil) with the new checkpoint, for example to have it
// cosigned, or with the error, for example to raise an alert. It returns
// when ctx ends, with the error of the final checkpoint if it failed;
// close the log afterwards.
func (l *Log) RunCheckpoints(ctx context.Context, interval time.Duration, report func(*Checkpoint, error)) error {
	if interval <= 0 {
		return fmt.Errorf("%w: checkpoint interval %v is not positive", ErrInvalidConfig, interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	signedSize, signedAny := uint64(0), false
	if c := l.LatestCheckpoint(); c != nil {
		signedSize, signedAny = c.Size, true
	}
	sign := func(ctx context.Context) error {
		if signedAny && l.Size() == signedSize {
			return nil
		}
		c, err := l.Checkpoint(ctx)
		if err == nil {
			signedSize, signedAny = c.Size, true
		}
		if report != nil {
			report(c, err)
		}
		return err
	}
	// ctx says when to stop; a signing in progress is not cancelled by
	// it (the shutdown checkpoint least of all), only bounded.
	signNow := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return sign(sctx)
	}
	for {
		select {
		case <-ctx.Done():
			return signNow()
		case <-t.C:
			if ctx.Err() == nil {
				_ = signNow() // reported; retried at the next tick
			}
		}
	}
}

// hashesFromTlog and hashesToTlog convert proofs between tlog's hash type
// and this package's.
func hashesFromTlog(p []tlog.Hash) []Hash {
	out := make([]Hash, len(p))
	for i, h := range p {
		out[i] = Hash(h)
	}
	return out
}

func hashesToTlog(p []Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

// AddWitness makes cosignatures by witness v count in this log from now on
// (AddCosignatures keeps them, Checkpoints show them): for a witness whose
// key becomes known after Open, for example from an authenticated
// connection. A verifier of a name already known is ignored.
func (l *Log) AddWitness(v note.Verifier) error {
	if v == nil {
		return fmt.Errorf("%w: no witness verifier", ErrInvalidConfig)
	}
	if l.readOnly {
		return fmt.Errorf("%w: add a witness to %s", ErrReadOnly, l.dir)
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	for _, w := range l.witnesses {
		if w.Name() == v.Name() && w.KeyHash() == v.KeyHash() {
			return nil
		}
	}
	l.witnesses = append(l.witnesses, v)
	l.known = note.VerifierList(append([]note.Verifier{l.verifier}, l.witnesses...)...)
	return nil
}
