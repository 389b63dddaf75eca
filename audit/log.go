package audit

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultMaxBatch is [Config.MaxBatch] when it is zero.
const DefaultMaxBatch = 1024

// maxBatchBytes bounds a batch's size (roughly: sealed details plus 1 KiB
// per entry) so that large detail parts do not make one huge write.
const maxBatchBytes = 4 << 20

// Sealer seals and opens the detail parts of entries. keyquorum passes
// one that encrypts under a data key kept sealed by its HSM seal key
// (hsmshare), so a detail can be read only with the site's HSM, and the
// sealed bytes, which the tree covers, outlive seal-key rotation. id (32 hex digits, random per entry) must be bound into the
// sealed bytes, so that a sealed part moved to another entry fails to
// open. Both methods must return errors rather than panic when the token
// fails.
type Sealer interface {
	// Seal encrypts plaintext for the entry detail id. It must not keep
	// or modify plaintext.
	Seal(ctx context.Context, id string, plaintext []byte) ([]byte, error)
	// Open returns the plaintext of sealed if it was sealed for id.
	Open(ctx context.Context, id string, sealed []byte) ([]byte, error)
}

// Config configures a [Log] that is opened for writing.
type Config struct {
	// Origin names the log in its checkpoints (FORMAT.md), for example
	// "keyquorum.example/site-a". It must never change for a log.
	Origin string
	// Site is written into every entry: 1 to MaxSiteLen bytes of printable
	// ASCII, for example the site's peer ID.
	Site string
	// Signer signs checkpoints. Its public key must be ECDSA P-256; in
	// keyquorum it is an HSM-resident key (the identity key or a
	// dedicated audit key).
	Signer crypto.Signer
	// Witnesses verify the cosignatures AddCosignatures accepts (made with
	// NewCosignatureVerifier or ParseVerifierKey).
	Witnesses []note.Verifier
	// Sealer seals detail parts. Without one, Append refuses records
	// that have a Detail.
	Sealer Sealer
	// MaxBatch bounds how many concurrent appends share one fdatasync
	// (group commit). 0 means DefaultMaxBatch; 1 turns group commit off.
	MaxBatch int
	// Now is the clock for entry times; nil means time.Now.
	Now func() time.Time
}

func (c *Config) validate() error {
	if err := ValidOrigin(c.Origin); err != nil {
		return err
	}
	if !printable(c.Site, MaxSiteLen) {
		return fmt.Errorf("%w: site %q must be 1 to %d bytes of printable ASCII", ErrInvalidConfig, truncate(c.Site), MaxSiteLen)
	}
	if c.Signer == nil {
		return fmt.Errorf("%w: no Signer for checkpoints of %s", ErrInvalidConfig, c.Origin)
	}
	if c.MaxBatch < 0 {
		return fmt.Errorf("%w: MaxBatch %d is negative", ErrInvalidConfig, c.MaxBatch)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for i, w := range c.Witnesses {
		if w == nil {
			return fmt.Errorf("%w: Witnesses[%d] is nil", ErrInvalidConfig, i)
		}
	}
	return nil
}

// Stats counts a log's work since it was opened.
type Stats struct {
	// Appends is the number of entries appended.
	Appends uint64
	// Commits is the number of group commits, each one write and one
	// fdatasync of the entries file. Appends/Commits is the mean batch.
	Commits uint64
	// Failures is the number of commits that failed.
	Failures uint64
}

// Log is an append-only, tamper-evident audit log in a directory
// (FORMAT.md). A Log opened with [Open] is the directory's only writer;
// one opened with [OpenReadOnly] reads a log that another process may be
// writing. All methods are safe for concurrent use.
type Log struct {
	dir      string
	cfg      Config
	readOnly bool
	signer   *checkpointSigner // nil when read-only
	verifier note.Verifier     // the log's checkpoint key
	known    note.Verifiers    // verifier and witnesses
	// witnesses are the witness verifiers (known less the log's own);
	// AddWitness extends both under cpMu.
	witnesses []note.Verifier

	lockF                           *os.File
	entries, index, hashes, cpsFile *os.File

	// flushTok is held by the one goroutine that commits (or recovers);
	// it owns the fields below it.
	flushTok chan struct{}
	end      int64 // end of the last committed entry record
	front    frontier
	lastTime time.Time
	wbuf     []byte
	ibuf     []byte
	hbuf     []byte

	size atomic.Uint64 // committed entries; readers may use [0, size)

	mu      sync.Mutex
	pending []*appendReq
	closed  bool
	broken  error
	changed chan struct{} // closed and replaced after each commit
	stats   Stats
	cps     []*Checkpoint // the newest (maxRecent) checkpoints, one per size, ascending

	cpMu    sync.Mutex // serializes writers of the checkpoints file
	cpEnd   int64      // end of the last checkpoint record
	cpCount int        // number of checkpoint records

	hooks logHooks
}

// logHooks let tests stop a commit at chosen points; nil in production.
type logHooks struct {
	// commit runs at each step of a commit: "caches" (index and hashes
	// written), "torn" (half of the entry records written), "written" (all
	// written, not yet synced) and "synced".
	commit func(step string)
}

func (l *Log) hook(step string) {
	if l.hooks.commit != nil {
		l.hooks.commit(step)
	}
}

type appendReq struct {
	typ    string
	fields map[string]string
	sealed []byte
	detail *Detail
	done   chan struct{}
	entry  Entry
	err    error
}

// Open opens the log in dir for writing, creating it (mode 0700) if it
// does not exist. It takes the directory's lock ([ErrLocked] if another
// writer has it), checks the newest checkpoints' signatures, cuts a record
// torn by a crash, rebuilds the caches and checks them against the last
// checkpoint (FORMAT.md, Recovery). A log whose durable entries are
// damaged ([ErrCorrupted]) or do not match its last checkpoint
// ([ErrInconsistent]) does not open; run [Verify] on it to find out why.
func Open(dir string, cfg Config) (*Log, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	signer, err := newCheckpointSigner(cfg.Origin, cfg.Signer)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(cfg.Origin, cfg.Signer.Public())
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, true); err != nil {
		return nil, err
	}
	lockF, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := newLog(dir, cfg, v, cfg.Witnesses)
	l.signer = signer
	l.lockF = lockF
	if err := l.openFiles(true); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	return l, nil
}

// OpenReadOnly opens the log in dir for reading: [Log.Entry], [Log.Tail],
// [Log.Follow], [Log.Export], [Log.Checkpoints] and [Log.Prove] work, writes
// fail with [ErrReadOnly]. It
// takes no lock, so it can read a log that its writer has open (it sees
// the entries committed so far; Follow polls for more) or a copy of one.
// log is the log's checkpoint verifier and witnesses the cosigners whose
// cosignatures count; checkpoints that log did not sign are refused. It
// trusts the caches as the writer left them; for an authoritative check,
// use [Verify] (which also reads copies that are not private, unlike
// OpenReadOnly).
func OpenReadOnly(dir string, log note.Verifier, witnesses ...note.Verifier) (*Log, error) {
	if log == nil {
		return nil, fmt.Errorf("%w: OpenReadOnly %s: no verifier for the log's checkpoints", ErrInvalidConfig, dir)
	}
	if err := prepareDir(dir, false); err != nil {
		return nil, err
	}
	l := newLog(dir, Config{Origin: log.Name(), MaxBatch: 1, Now: time.Now}, log, witnesses)
	l.readOnly = true
	if err := l.openFiles(false); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := l.refresh(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("audit: open %s read-only: %w", dir, err)
	}
	return l, nil
}

func newLog(dir string, cfg Config, v note.Verifier, witnesses []note.Verifier) *Log {
	return &Log{
		dir:       dir,
		cfg:       cfg,
		verifier:  v,
		known:     note.VerifierList(append([]note.Verifier{v}, witnesses...)...),
		witnesses: append([]note.Verifier(nil), witnesses...),
		flushTok:  make(chan struct{}, 1),
		changed:   make(chan struct{}),
	}
}

func (l *Log) openFiles(write bool) error {
	mode := openRead
	if write {
		mode = openWrite
	}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = openFile(l.dir, name, mode)
		return f
	}
	l.entries = open(entriesName)
	l.index = open(indexName)
	l.hashes = open(hashesName)
	l.cpsFile = open(checkpointsName)
	if err == nil && write {
		err = syncDir(l.dir) // new files survive a crash
	}
	return err
}

func (l *Log) closeFiles() error {
	var first error
	for _, f := range []*os.File{l.entries, l.index, l.hashes, l.cpsFile} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	if l.lockF != nil {
		if err := unlockDir(l.lockF); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Origin returns the log's origin.
func (l *Log) Origin() string { return l.cfg.Origin }

// Verifier returns the note.Verifier of the log's checkpoints.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Size returns the number of committed entries.
func (l *Log) Size() uint64 { return l.size.Load() }

// Healthy returns nil if the log can append, and otherwise the error
// every Append would fail with (wrapping [ErrAppendFailed]): a site checks
// it before it agrees to take part in signing.
func (l *Log) Healthy() error {
	if l.readOnly {
		return fmt.Errorf("%w: %s", ErrReadOnly, l.dir)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usable()
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close waits for a commit in progress, fails appends still waiting with
// [ErrClosed], and closes the log. It does not sign a checkpoint: sign one
// with [Log.Checkpoint] first ([Log.RunCheckpoints] signs one when its
// context ends).
func (l *Log) Close() error {
	l.flushTok <- struct{}{}
	defer func() { <-l.flushTok }()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	pending := l.pending
	l.pending = nil
	close(l.changed)
	l.mu.Unlock()
	for _, r := range pending {
		r.err = fmt.Errorf("%w: %s: %w", ErrAppendFailed, l.dir, ErrClosed)
		close(r.done)
	}
	var err error
	if !l.readOnly {
		for _, f := range []*os.File{l.index, l.hashes} {
			if serr := f.Sync(); serr != nil && err == nil {
				err = serr
			}
		}
	}
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: close %s: %w", l.dir, err)
	}
	return nil
}

// Append adds an entry and returns once it is durable (written and
// fdatasync'ed). Record the action before it takes effect, and let it take
// effect only if Append returns nil. Concurrent appends share one
// fdatasync (group commit, see [Config.MaxBatch]). A record that breaks the
// schema fails with [ErrInvalidEntry]; an entry that cannot be made durable
// fails with [ErrAppendFailed] (disk full, I/O error, sealer failure), and
// the caller must then fail closed. If ctx ends before the entry is
// committed, Append returns ctx's error and the entry is not written; if
// it ends while the entry's commit is in progress, Append waits for the
// commit.
func (l *Log) Append(ctx context.Context, rec Record) (Entry, error) {
	if l.readOnly {
		return Entry{}, fmt.Errorf("%w: append to %s", ErrReadOnly, l.dir)
	}
	if err := validateFields(rec.Type, rec.Fields); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("audit: append %s to %s: %w", rec.Type, l.dir, err)
	}
	r := &appendReq{typ: rec.Type, fields: cloneFields(rec.Fields), done: make(chan struct{})}
	if rec.Detail != nil {
		if l.cfg.Sealer == nil {
			return Entry{}, fmt.Errorf("%w: %s entry has a detail part but the log has no Sealer", ErrInvalidEntry, rec.Type)
		}
		var idb [16]byte
		if _, err := rand.Read(idb[:]); err != nil {
			return Entry{}, fmt.Errorf("%w: detail id: %v", ErrAppendFailed, err)
		}
		id := hex.EncodeToString(idb[:])
		sealed, err := l.cfg.Sealer.Seal(ctx, id, rec.Detail)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: seal the detail of a %s entry: %w", ErrAppendFailed, rec.Type, err)
		}
		if len(sealed) == 0 || len(sealed) > MaxDetailSize {
			return Entry{}, fmt.Errorf("%w: sealed detail of a %s entry is %d bytes, not 1..%d", ErrInvalidEntry, rec.Type, len(sealed), MaxDetailSize)
		}
		r.sealed = sealed
		r.detail = detailRef(id, sealed)
	}
	if err := checkRecordSize(l.cfg.Site, rec, r.detail); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}

	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return Entry{}, err
	}
	l.pending = append(l.pending, r)
	l.mu.Unlock()

	for {
		select {
		case <-r.done:
			return r.entry, r.err
		case l.flushTok <- struct{}{}:
			l.flush()
			<-l.flushTok
		case <-ctx.Done():
			l.mu.Lock()
			if i := slices.Index(l.pending, r); i >= 0 {
				l.pending = slices.Delete(l.pending, i, i+1)
				l.mu.Unlock()
				return Entry{}, fmt.Errorf("audit: append %s to %s: not written: %w", rec.Type, l.dir, ctx.Err())
			}
			l.mu.Unlock()
			<-r.done // its commit is in progress and bounded
			return r.entry, r.err
		}
	}
}

// usable reports why the log cannot append. Needs l.mu.
func (l *Log) usable() error {
	if l.closed {
		return fmt.Errorf("%w: %s: %w", ErrAppendFailed, l.dir, ErrClosed)
	}
	return l.broken
}

// flush commits up to MaxBatch pending appends. Needs flushTok.
func (l *Log) flush() {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		pending := l.pending
		l.pending = nil
		l.mu.Unlock()
		for _, r := range pending {
			r.err = err
			close(r.done)
		}
		return
	}
	n, batchBytes := 0, 0
	for n < len(l.pending) && n < l.cfg.MaxBatch && (n == 0 || batchBytes < maxBatchBytes) {
		batchBytes += len(l.pending[n].sealed) + 1024
		n++
	}
	batch := slices.Clone(l.pending[:n])
	l.pending = slices.Delete(l.pending, 0, n)
	l.mu.Unlock()
	if n == 0 {
		return
	}

	err := l.commit(batch)

	l.mu.Lock()
	if err != nil {
		l.stats.Failures++
	} else {
		l.stats.Commits++
		l.stats.Appends += uint64(n)
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	for _, r := range batch {
		if err != nil {
			r.err = err
			r.entry = Entry{}
		}
		close(r.done)
	}
}

// commit writes batch durably. Needs flushTok. On failure nothing of the
// batch is visible to readers, and the files are cut back where possible.
func (l *Log) commit(batch []*appendReq) error {
	seq0 := l.size.Load()
	now := l.cfg.Now().UTC()
	if now.Before(l.lastTime) {
		now = l.lastTime // entry times never go backwards
	}
	savedFront := l.front
	w, ib, hb := l.wbuf[:0], l.ibuf[:0], l.hbuf[:0]
	end := l.end
	rd := &hashReader{f: l.hashes, front: &l.front}
	for i, r := range batch {
		e := Entry{Seq: seq0 + uint64(i), Time: now, Site: l.cfg.Site, Type: r.typ, Fields: r.fields, Detail: r.detail}
		js, err := encodeEntry(e)
		if err == nil && len(js) > MaxEntrySize {
			err = fmt.Errorf("entry is %d bytes", len(js))
		}
		if err != nil {
			l.front = savedFront
			return fmt.Errorf("%w: encode %s entry %d: %v", ErrAppendFailed, r.typ, e.Seq, err)
		}
		e.raw = js
		r.entry = e
		w = appendRecord(w, recEntry, js, r.sealed)
		end += recordLen(len(js), len(r.sealed))
		ib = binary.BigEndian.AppendUint64(ib, uint64(end))
		hs, err := tlog.StoredHashes(int64(e.Seq), js, rd)
		if err != nil {
			l.front = savedFront
			return fmt.Errorf("%w: tree hashes for entry %d: %v", ErrAppendFailed, e.Seq, err)
		}
		base := tlog.StoredHashIndex(0, int64(e.Seq))
		for j, h := range hs {
			l.front.add(base+int64(j), h)
			hb = append(hb, h[:]...)
		}
	}
	if cap(w) <= maxBatchBytes {
		l.wbuf, l.ibuf, l.hbuf = w, ib, hb // reuse; drop buffers grown by large details
	}

	// Caches first, then the entries, then one fdatasync: a crash at any
	// point leaves at most a torn tail, which Open cuts, and caches that
	// Open rebuilds.
	idxOff := int64(seq0) * 8
	hOff := tlog.StoredHashIndex(0, int64(seq0)) * tlog.HashSize
	var werr error
	if _, err := l.index.WriteAt(ib, idxOff); err != nil {
		werr = fmt.Errorf("write %s: %w", indexName, err)
	} else if _, err := l.hashes.WriteAt(hb, hOff); err != nil {
		werr = fmt.Errorf("write %s: %w", hashesName, err)
	} else if err := l.writeEntries(w); err != nil {
		werr = fmt.Errorf("write %s: %w", entriesName, err)
	}
	if werr != nil {
		l.front = savedFront
		// Cut back so the next commit starts clean; if even that fails,
		// stop appending until the log is reopened.
		terr := errors.Join(l.entries.Truncate(l.end), l.index.Truncate(idxOff), l.hashes.Truncate(hOff))
		if terr != nil {
			l.setBroken(fmt.Errorf("%w: %s: cannot undo a failed write (%v); close and reopen the log", ErrAppendFailed, l.dir, terr))
		}
		return fmt.Errorf("%w: %s: %w; free disk space or fix the device, then retry", ErrAppendFailed, l.dir, werr)
	}
	l.hook("written")
	if err := datasync(l.entries); err != nil {
		// After a failed fdatasync the kernel may have dropped the dirty
		// pages, so what is on disk is unknown: stop appending.
		l.front = savedFront
		err = fmt.Errorf("%w: %s: fdatasync %s: %w; close and reopen the log once the device is fixed", ErrAppendFailed, l.dir, entriesName, err)
		l.setBroken(err)
		return err
	}
	l.hook("synced")
	l.end = end
	l.lastTime = now
	l.size.Store(seq0 + uint64(len(batch)))
	return nil
}

// writeEntries writes a batch of entry records at the end of the entries
// file in one write. With a test hook it writes them in two halves, to
// stop in between as a crash inside write(2) would.
func (l *Log) writeEntries(w []byte) error {
	if l.hooks.commit == nil {
		_, err := l.entries.WriteAt(w, l.end)
		return err
	}
	l.hook("caches")
	half := len(w) / 2
	if _, err := l.entries.WriteAt(w[:half], l.end); err != nil {
		return err
	}
	l.hook("torn")
	_, err := l.entries.WriteAt(w[half:], l.end+int64(half))
	return err
}

func (l *Log) setBroken(err error) {
	l.mu.Lock()
	if l.broken == nil {
		l.broken = err
	}
	l.mu.Unlock()
}

// frontier caches, for each tree level, the last stored hash written at
// that level: exactly the hashes tlog.StoredHashes and tlog.TreeHash read
// at the current size, so appends need no disk reads.
type frontier struct {
	idx [64]int64
	h   [64]tlog.Hash
	ok  [64]bool
}

func (f *frontier) add(index int64, h tlog.Hash) {
	level, _ := tlog.SplitStoredHashIndex(index)
	f.idx[level], f.h[level], f.ok[level] = index, h, true
}

func (f *frontier) get(index int64) (tlog.Hash, bool) {
	level, _ := tlog.SplitStoredHashIndex(index)
	if f.ok[level] && f.idx[level] == index {
		return f.h[level], true
	}
	return tlog.Hash{}, false
}

// hashReader reads stored hashes from the frontier (if set) and else from
// the hashes file.
type hashReader struct {
	f     *os.File
	front *frontier
}

func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if r.front != nil {
			if h, ok := r.front.get(idx); ok {
				out[i] = h
				continue
			}
		}
		if r.f == nil {
			return nil, fmt.Errorf("%w: tree hash %d is not available", ErrCorrupted, idx)
		}
		if _, err := r.f.ReadAt(out[i][:], idx*tlog.HashSize); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %s ends before tree hash %d", ErrCorrupted, hashesName, idx)
			}
			return nil, fmt.Errorf("audit: read %s: %w", hashesName, err)
		}
	}
	return out, nil
}

// recover brings a writer's files to a consistent state (FORMAT.md,
// Recovery). Needs to run before the Log is shared.
func (l *Log) recover() error {
	cps, cpEnd, n, err := recentCheckpoints(l.cpsFile, 0, 0, l.verifier, l.known, nil, true)
	if err != nil {
		return err
	}
	l.cps, l.cpEnd, l.cpCount = cps, cpEnd, n
	var c uint64
	var last *Checkpoint
	if len(cps) > 0 {
		last = cps[len(cps)-1]
		c = last.Size
	}

	entriesSize, err := fileSize(l.entries)
	if err != nil {
		return err
	}
	indexSize, err := fileSize(l.index)
	if err != nil {
		return err
	}
	hashesSize, err := fileSize(l.hashes)
	if err != nil {
		return err
	}
	// Trust the caches up to the last checkpoint (synced before it was
	// signed) when they reach that far; else rebuild them from scratch.
	s := c
	if uint64(indexSize/8) < s || hashesSize/tlog.HashSize < tlog.StoredHashIndex(0, int64(s)) {
		s = 0
	}
	var start int64
	if s > 0 {
		start, err = readIndex(l.index, s-1)
		if err != nil {
			return err
		}
		if start > entriesSize {
			s, start = 0, 0
		}
	}
	if err := l.index.Truncate(int64(s) * 8); err != nil {
		return fmt.Errorf("audit: truncate %s: %w", indexName, err)
	}
	if err := l.hashes.Truncate(tlog.StoredHashIndex(0, int64(s)) * tlog.HashSize); err != nil {
		return fmt.Errorf("audit: truncate %s: %w", hashesName, err)
	}
	if s > 0 {
		prevStart := int64(0)
		if s > 1 {
			if prevStart, err = readIndex(l.index, s-2); err != nil {
				return err
			}
		}
		a, _, err := readRecordAt(l.entries, recEntry, prevStart, start)
		if err != nil {
			return fmt.Errorf("entry %d: %w", s-1, err)
		}
		e, err := ParseEntry(a)
		if err != nil {
			return fmt.Errorf("entry %d: %w", s-1, err)
		}
		l.lastTime = e.Time
	}

	seq := s
	rd := &hashReader{f: l.hashes, front: &l.front}
	sc := newScanner(l.entries, start, entriesSize)
	ib, hb := l.ibuf[:0], l.hbuf[:0]
	flushCaches := func() error {
		if len(ib) > 0 {
			if _, err := l.index.Write(ib); err != nil {
				return fmt.Errorf("audit: rebuild %s: %w", indexName, err)
			}
		}
		if len(hb) > 0 {
			if _, err := l.hashes.Write(hb); err != nil {
				return fmt.Errorf("audit: rebuild %s: %w", hashesName, err)
			}
		}
		ib, hb = ib[:0], hb[:0]
		return nil
	}
	if _, err := l.index.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if _, err := l.hashes.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	end := start
	for {
		ok, err := sc.next()
		if err != nil {
			var re *recordError
			if errors.As(err, &re) && re.Torn && seq >= c {
				// A crash during an append: the record was never reported
				// durable. Cut it off.
				if err := l.entries.Truncate(re.Off); err != nil {
					return fmt.Errorf("audit: cut torn record at byte %d of %s: %w", re.Off, entriesName, err)
				}
				if err := datasync(l.entries); err != nil {
					return fmt.Errorf("audit: sync %s: %w", entriesName, err)
				}
				break
			}
			if errors.As(err, &re) {
				return fmt.Errorf("%w: entry %d (%s of %s)", ErrCorrupted, seq, re, entriesName)
			}
			return fmt.Errorf("audit: read %s: %w", entriesName, err)
		}
		if !ok {
			break
		}
		e, err := checkEntryRecord(sc, seq, l.lastTime)
		if err != nil {
			return err
		}
		hs, err := tlog.StoredHashes(int64(seq), sc.a, rd)
		if err != nil {
			return fmt.Errorf("entry %d: tree hashes: %w", seq, err)
		}
		base := tlog.StoredHashIndex(0, int64(seq))
		for j, h := range hs {
			l.front.add(base+int64(j), h)
			hb = append(hb, h[:]...)
		}
		end = sc.end
		ib = binary.BigEndian.AppendUint64(ib, uint64(end))
		l.lastTime = e.Time
		seq++
		if len(hb) >= 1<<20 {
			if err := flushCaches(); err != nil {
				return err
			}
		}
	}
	if err := flushCaches(); err != nil {
		return err
	}
	l.ibuf, l.hbuf = ib, hb
	if seq < c {
		return fmt.Errorf("%w: the log holds %d entries but its last checkpoint (record %d) covers %d: entries %d..%d are missing", ErrInconsistent, seq, last.rec, c, seq, c-1)
	}
	if last != nil {
		root, err := tlog.TreeHash(int64(c), &hashReader{f: l.hashes})
		if err != nil {
			return err
		}
		if Hash(root) != last.Root {
			return fmt.Errorf("%w: the first %d entries do not have the root hash of the last checkpoint (record %d); an entry was changed", ErrInconsistent, c, last.rec)
		}
	}
	for _, f := range []*os.File{l.index, l.hashes} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("audit: sync caches: %w", err)
		}
	}
	l.end = end
	l.size.Store(seq)
	return nil
}

// checkEntryRecord checks the entry record sc holds: canonical JSON, the
// expected sequence number, time order, and the sealed part against its
// hash.
func checkEntryRecord(sc *scanner, seq uint64, prev time.Time) (Entry, error) {
	if sc.typ != recEntry {
		return Entry{}, fmt.Errorf("%w: entry %d: record at byte %d has type %#02x, not an entry", ErrCorrupted, seq, sc.end-recordLen(len(sc.a), len(sc.b)), sc.typ)
	}
	e, err := ParseEntry(sc.a)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", seq, err)
	}
	if e.Seq != seq {
		return Entry{}, fmt.Errorf("%w: the entry at position %d has sequence number %d: entries were removed, inserted or reordered", ErrCorrupted, seq, e.Seq)
	}
	if e.Time.Before(prev) {
		return Entry{}, fmt.Errorf("%w: entry %d is dated %s, before the previous entry (%s): entries were reordered or edited", ErrCorrupted, seq, e.Time.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano))
	}
	if err := checkDetail(e, sc.b); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// checkDetail checks sealed against the entry's detail reference.
func checkDetail(e Entry, sealed []byte) error {
	if e.Detail == nil {
		if len(sealed) != 0 {
			return fmt.Errorf("%w: entry %d has no detail part but its record carries %d detail bytes", ErrCorrupted, e.Seq, len(sealed))
		}
		return nil
	}
	sum := sha256.Sum256(sealed)
	if len(sealed) != e.Detail.Size || hex.EncodeToString(sum[:]) != e.Detail.SHA256 {
		return fmt.Errorf("%w: entry %d: the sealed detail part does not match the hash in the entry", ErrCorrupted, e.Seq)
	}
	return nil
}

func fileSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: stat %s: %w", f.Name(), err)
	}
	return st.Size(), nil
}

// readIndex returns the end offset of entry i's record.
func readIndex(f *os.File, i uint64) (int64, error) {
	var b [8]byte
	if _, err := f.ReadAt(b[:], int64(i)*8); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: %s ends before entry %d", ErrCorrupted, indexName, i)
		}
		return 0, fmt.Errorf("audit: read %s: %w", indexName, err)
	}
	v := binary.BigEndian.Uint64(b[:])
	if v > 1<<62 {
		return 0, fmt.Errorf("%w: %s: impossible offset for entry %d", ErrCorrupted, indexName, i)
	}
	return int64(v), nil
}

// refresh updates a read-only log's view: the committed size from the
// caches the writer keeps, and the checkpoints.
func (l *Log) refresh() error {
	entriesSize, err := fileSize(l.entries)
	if err != nil {
		return err
	}
	indexSize, err := fileSize(l.index)
	if err != nil {
		return err
	}
	hashesSize, err := fileSize(l.hashes)
	if err != nil {
		return err
	}
	n := uint64(indexSize / 8)
	// The writer writes the caches before the entries; count only entries
	// whose record and hashes are both there.
	for n > 0 {
		end, err := readIndex(l.index, n-1)
		if err != nil {
			return err
		}
		if end <= entriesSize && tlog.StoredHashIndex(0, int64(n))*tlog.HashSize <= hashesSize {
			break
		}
		n--
	}
	l.mu.Lock()
	have := l.cps
	l.mu.Unlock()
	cps, cpEnd, records, err := recentCheckpoints(l.cpsFile, l.cpEnd, l.cpCount, l.verifier, l.known, have, false)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.cps, l.cpEnd, l.cpCount = cps, cpEnd, l.cpCount+records
	l.mu.Unlock()
	if n > l.size.Load() {
		l.size.Store(n)
	}
	return nil
}
