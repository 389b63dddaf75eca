package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions are the public keys and outside knowledge [Verify] checks a
// log against.
type VerifyOptions struct {
	// Log verifies the log's checkpoints (NewVerifier or
	// ParseVerifierKey). Required.
	Log note.Verifier
	// Witnesses verify cosignatures. A cosignature from one of them that
	// does not verify is an error; cosignatures from other keys are
	// ignored.
	Witnesses []note.Verifier
	// Trusted are signed checkpoints of this log kept outside it: the last
	// checkpoint each witness cosigned, or one exported earlier. Each must
	// be signed by Log and match the entries; this is what detects a log
	// that was truncated or rewritten together with its checkpoints file.
	Trusted [][]byte
	// RequireWitnesses makes a witness of Witnesses that cosigned no
	// checkpoint of the log an error ([ErrNotCosigned], naming it): the
	// auditor expects every one of them to have witnessed the log.
	RequireWitnesses bool
}

// Report summarizes a log that [Verify] accepted.
type Report struct {
	// Entries is the number of entries checked.
	Entries uint64
	// CheckpointRecords is the number of checkpoint records checked.
	CheckpointRecords int
	// Latest is the newest checkpoint, or nil if the log has none.
	Latest *Checkpoint
	// LatestCosigned is the newest checkpoint with at least one valid
	// cosignature, or nil.
	LatestCosigned *Checkpoint
	// CosignedBy maps the name of each witness of VerifyOptions.Witnesses
	// that cosigned a checkpoint to the largest size it cosigned.
	CosignedBy map[string]uint64
	// Unsigned is the number of entries after the newest checkpoint,
	// which no signature covers yet.
	Unsigned uint64
	// TornBytes is the length of an incomplete record at the end of the
	// entries file that was ignored: what a crash during an append leaves
	// until the writer opens the log again.
	TornBytes int64
}

// target is a checkpoint the entries must match at its size.
type target struct {
	cp   *Checkpoint
	what string // "checkpoint 3" or "trusted checkpoint 0"
	rec  int    // checkpoint record number, or -1 for a trusted one
}

// Verify checks, offline, the log in dir (the log's directory or a copy of
// it): every entry record (CRC, canonical JSON, sequence number, time
// order, sealed detail hash), the caches against the entries, every
// checkpoint's signature and cosignatures, that checkpoint sizes never
// shrink and that the tree recomputed from the entries has each
// checkpoint's root hash (which proves the checkpoints consistent with
// each other), and the same for opts.Trusted. It reads only public data
// and needs no secret.
//
// The error is a *VerifyError naming the first bad entry or checkpoint
// (errors.Is: [ErrCorrupted], [ErrInconsistent], [ErrBadSignature],
// [ErrMalformed]). Entries after the newest checkpoint are covered by no
// signature: Verify checks their form, but only Trusted checkpoints or the
// next checkpoint can show they were not changed.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (*Report, error) {
	if opts.Log == nil {
		return nil, fmt.Errorf("%w: Verify %s: no verifier for the log's checkpoints", ErrInvalidConfig, dir)
	}
	if err := prepareDir(dir, false); err != nil && !errors.Is(err, ErrInsecurePath) {
		return nil, err
	}
	known := note.VerifierList(append([]note.Verifier{opts.Log}, opts.Witnesses...)...)
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, name := range []string{entriesName, checkpointsName, indexName, hashesName} {
		f, err := openFile(dir, name, openVerify)
		if err != nil {
			if name == indexName || name == hashesName {
				continue // caches are optional for Verify
			}
			return nil, err
		}
		files[name] = f
	}

	// Every checkpoint record is verified; of those of one size, the
	// last (which carries the most cosignatures) is the target.
	rep := &Report{CosignedBy: map[string]uint64{}}
	var targets []target
	_, records, err := scanCheckpoints(files[checkpointsName], 0, 0, opts.Log.Name(), nil, false, func(k int, _ *Checkpoint, signed []byte) error {
		c, err := openCheckpoint(signed, opts.Log, known)
		if err != nil {
			return &VerifyError{Entry: -1, Checkpoint: k, Reason: err.Error(), Err: sentinelOf(err)}
		}
		c.rec = k
		// Keep only what the entry scan needs: one target per size, for
		// however many checkpoints the log has.
		t := target{cp: &Checkpoint{Origin: c.Origin, Size: c.Size, Root: c.Root, rec: k}, what: fmt.Sprintf("checkpoint %d", k), rec: k}
		if n := len(targets); n > 0 && targets[n-1].cp.Size == c.Size {
			targets[n-1] = t
		} else {
			targets = append(targets, t)
		}
		rep.Latest = c
		if len(c.Cosignatures) > 0 {
			rep.LatestCosigned = c
		}
		for _, cs := range c.Cosignatures {
			if c.Size >= rep.CosignedBy[cs.Name] {
				rep.CosignedBy[cs.Name] = c.Size
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.RequireWitnesses {
		for _, w := range opts.Witnesses {
			if _, ok := rep.CosignedBy[w.Name()]; !ok {
				return nil, &VerifyError{Entry: -1, Checkpoint: -1, Reason: fmt.Sprintf("witness %s+%08x cosigned none of the log's %d checkpoint records: it never witnessed this log, or its cosignatures were removed", w.Name(), w.KeyHash(), records), Err: ErrNotCosigned}
			}
		}
	}
	rep.CheckpointRecords = records
	for i, t := range opts.Trusted {
		c, err := openCheckpoint(t, opts.Log, known)
		if err != nil {
			return nil, &VerifyError{Entry: -1, Checkpoint: -1, Reason: fmt.Sprintf("trusted checkpoint %d: %v", i, err), Err: sentinelOf(err)}
		}
		targets = append(targets, target{cp: c, what: fmt.Sprintf("trusted checkpoint %d", i), rec: -1})
	}
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].cp.Size < targets[j].cp.Size })

	v := &logCheck{files: files, targets: targets}
	if err := v.run(ctx, rep); err != nil {
		return nil, err
	}
	if rep.Latest != nil {
		rep.Unsigned = rep.Entries - rep.Latest.Size
	}
	return rep, nil
}

type logCheck struct {
	files   map[string]*os.File
	targets []target
}

// run scans the entries, recomputing the tree with only the frontier in
// memory, and checks each target when the tree reaches its size.
func (v *logCheck) run(ctx context.Context, rep *Report) error {
	ef := v.files[entriesName]
	size, err := fileSize(ef)
	if err != nil {
		return err
	}
	var hashes, index *bufio.Reader
	var hashesCount, indexCount int64
	if f := v.files[hashesName]; f != nil {
		n, err := fileSize(f)
		if err != nil {
			return err
		}
		hashes, hashesCount = bufio.NewReaderSize(f, 1<<20), n/tlog.HashSize
	}
	if f := v.files[indexName]; f != nil {
		n, err := fileSize(f)
		if err != nil {
			return err
		}
		index, indexCount = bufio.NewReaderSize(f, 1<<20), n/8
	}

	front := &frontier{}
	rd := &hashReader{front: front}
	ti := 0
	check := func(n uint64) error {
		for ti < len(v.targets) && v.targets[ti].cp.Size == n {
			t := v.targets[ti]
			root, err := tlog.TreeHash(int64(n), rd)
			if err != nil {
				return err
			}
			if Hash(root) != t.cp.Root {
				return &VerifyError{Entry: -1, Checkpoint: t.rec, Reason: fmt.Sprintf("%s (size %d) does not match entries 0..%d: an entry before %d was changed, removed, inserted or reordered, or the checkpoint was signed over another history", t.what, n, int64(n)-1, n), Err: ErrInconsistent}
			}
			ti++
		}
		return nil
	}
	if err := check(0); err != nil {
		return err
	}

	sc := newScanner(ef, 0, size)
	var seq uint64
	var prev Entry
	var hbuf [tlog.HashSize]byte
	var ibuf [8]byte
	for {
		if seq%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := sc.next()
		if err != nil {
			var re *recordError
			if errors.As(err, &re) {
				if re.Torn && (ti == len(v.targets) || v.targets[ti].cp.Size <= seq) {
					rep.TornBytes = size - re.Off
					break
				}
				return &VerifyError{Entry: int64(seq), Checkpoint: -1, Reason: fmt.Sprintf("%s of %s", re, entriesName), Err: ErrCorrupted}
			}
			return fmt.Errorf("audit: read %s: %w", entriesName, err)
		}
		if !ok {
			break
		}
		e, err := checkEntryRecord(sc, seq, prev.Time)
		if err != nil {
			return &VerifyError{Entry: int64(seq), Checkpoint: -1, Reason: err.Error(), Err: sentinelOf(err)}
		}
		hs, err := tlog.StoredHashes(int64(seq), sc.a, rd)
		if err != nil {
			return err
		}
		base := tlog.StoredHashIndex(0, int64(seq))
		for j, h := range hs {
			front.add(base+int64(j), h)
			if hashes != nil && base+int64(j) < hashesCount {
				if _, err := io.ReadFull(hashes, hbuf[:]); err != nil {
					return fmt.Errorf("audit: read %s: %w", hashesName, err)
				}
				if hbuf != h {
					return &VerifyError{Entry: int64(seq), Checkpoint: -1, Reason: fmt.Sprintf("the tree hash recorded when the entry was appended (%s) differs from the entry's: the entry was changed, replaced or moved", hashesName), Err: ErrCorrupted}
				}
			}
		}
		if index != nil && int64(seq) < indexCount {
			if _, err := io.ReadFull(index, ibuf[:]); err != nil {
				return fmt.Errorf("audit: read %s: %w", indexName, err)
			}
			if int64(binary.BigEndian.Uint64(ibuf[:])) != sc.end {
				return &VerifyError{Entry: int64(seq), Checkpoint: -1, Reason: fmt.Sprintf("the record's end (byte %d) differs from the one recorded when it was appended (%s): entries before it were changed, removed or inserted", sc.end, indexName), Err: ErrCorrupted}
			}
		}
		prev = e
		seq++
		if err := check(seq); err != nil {
			return err
		}
	}
	rep.Entries = seq
	if ti < len(v.targets) {
		t := v.targets[ti]
		return &VerifyError{Entry: -1, Checkpoint: t.rec, Reason: fmt.Sprintf("%s covers %d entries but the log holds %d: entries %d..%d were removed (the log was truncated)", t.what, t.cp.Size, seq, seq, t.cp.Size-1), Err: ErrInconsistent}
	}
	return nil
}
