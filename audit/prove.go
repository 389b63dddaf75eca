package audit

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProof shows that an entry is in a log whose checkpoint was
// signed by the log and cosigned by witnesses. It is self-contained:
// [VerifyInclusion] checks it with the public keys alone. It marshals to
// JSON (FORMAT.md).
type InclusionProof struct {
	// Index is the entry's sequence number (its leaf index).
	Index uint64 `json:"index"`
	// Entry is the entry's canonical JSON.
	Entry string `json:"entry"`
	// Hashes is the RFC 6962 audit path from the entry's leaf to the
	// checkpoint's root.
	Hashes []Hash `json:"hashes"`
	// Checkpoint is the signed, cosigned checkpoint the path leads to.
	Checkpoint string `json:"checkpoint"`
}

// Prove returns an inclusion proof of entry seq against the newest
// checkpoint that covers it and carries at least minCosignatures
// cosignatures. It fails with [ErrNotCosigned] if there is none yet (have
// the latest checkpoint cosigned, or pass 0 to prove against the log's
// own signature alone).
func (l *Log) Prove(ctx context.Context, seq uint64, minCosignatures int) (*InclusionProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, _, err := l.readEntry(seq)
	if err != nil {
		return nil, err
	}
	cps := l.Checkpoints()
	var cp *Checkpoint
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i].Size > seq && len(cps[i].Cosignatures) >= minCosignatures {
			cp = cps[i]
			break
		}
	}
	if cp == nil {
		return nil, fmt.Errorf("%w: entry %d of %s: no checkpoint with %d cosignatures covers it yet", ErrNotCosigned, seq, l.cfg.Origin, minCosignatures)
	}
	p, err := tlog.ProveRecord(int64(cp.Size), int64(seq), &hashReader{f: l.hashes})
	if err != nil {
		return nil, fmt.Errorf("audit: prove entry %d of %s: %w", seq, l.cfg.Origin, err)
	}
	return &InclusionProof{Index: seq, Entry: string(e.raw), Hashes: hashesFromTlog(p), Checkpoint: string(cp.note)}, nil
}

// VerifyInclusion checks p: its checkpoint must be signed by log and carry
// at least minCosignatures valid cosignatures from distinct witnesses, and
// the audit path must lead from the entry to the checkpoint's root. It
// returns the proven entry and the checkpoint.
func VerifyInclusion(p *InclusionProof, log note.Verifier, witnesses []note.Verifier, minCosignatures int) (Entry, *Checkpoint, error) {
	if p == nil {
		return Entry{}, nil, fmt.Errorf("%w: no proof", ErrMalformed)
	}
	cp, err := OpenCheckpoint([]byte(p.Checkpoint), log, witnesses...)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("audit: inclusion proof of entry %d: %w", p.Index, err)
	}
	if len(cp.Cosignatures) < minCosignatures {
		return Entry{}, nil, fmt.Errorf("%w: inclusion proof of entry %d: the checkpoint has %d valid cosignatures, %d required", ErrNotCosigned, p.Index, len(cp.Cosignatures), minCosignatures)
	}
	e, err := ParseEntry([]byte(p.Entry))
	if err != nil {
		return Entry{}, nil, fmt.Errorf("audit: inclusion proof of entry %d: %w", p.Index, err)
	}
	if e.Seq != p.Index || p.Index >= cp.Size {
		return Entry{}, nil, fmt.Errorf("%w: inclusion proof: entry %d at index %d of a checkpoint of size %d", ErrInconsistent, e.Seq, p.Index, cp.Size)
	}
	if len(p.Hashes) > 64 {
		return Entry{}, nil, fmt.Errorf("%w: inclusion proof of entry %d has %d hashes", ErrMalformed, p.Index, len(p.Hashes))
	}
	if err := tlog.CheckRecord(hashesToTlog(p.Hashes), int64(cp.Size), tlog.Hash(cp.Root), int64(p.Index), tlog.RecordHash([]byte(p.Entry))); err != nil {
		return Entry{}, nil, fmt.Errorf("%w: entry %d is not in %s's tree of size %d: %v", ErrInconsistent, p.Index, cp.Origin, cp.Size, err)
	}
	return e, cp, nil
}
