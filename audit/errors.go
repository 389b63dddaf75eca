package audit

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns that a caller may
// branch on wraps one of these; test with errors.Is.
var (
	// ErrAppendFailed means an entry could not be made durable: the disk is
	// full, a write or fdatasync failed, the sealer failed, or the log is
	// broken by an earlier failure. The action the entry records must not
	// take effect (fail closed). After a failed write the log stays usable
	// and a later Append may succeed; after a failed fdatasync every
	// further Append fails until the log is closed and opened again.
	ErrAppendFailed = errors.New("audit: entry not appended")
	// ErrInvalidEntry means a Record breaks the entry schema (see
	// FORMAT.md); nothing was written.
	ErrInvalidEntry = errors.New("audit: invalid entry")
	// ErrInvalidConfig means a Config or WitnessConfig is incomplete or
	// contradictory.
	ErrInvalidConfig = errors.New("audit: invalid configuration")
	// ErrClosed means the Log was used after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrReadOnly means a write was attempted on a Log opened with
	// OpenReadOnly.
	ErrReadOnly = errors.New("audit: log opened read-only")
	// ErrLocked means another writer (in this or another process) has the
	// log open.
	ErrLocked = errors.New("audit: log locked by another writer")
	// ErrInsecurePath means a log or witness directory or file is a
	// symbolic link, is not owned by the current user, or is open to other
	// users.
	ErrInsecurePath = errors.New("audit: path is not private to its owner")
	// ErrNotFound means an entry or checkpoint does not exist (yet).
	ErrNotFound = errors.New("audit: not found")
	// ErrMalformed means a checkpoint, signed note, cosigning request,
	// proof or verifier key could not be parsed.
	ErrMalformed = errors.New("audit: malformed input")
	// ErrCorrupted means stored data is damaged or was edited: a record
	// fails its CRC, an entry is not canonical JSON, a sequence number is
	// out of place, a sealed detail does not match its hash, or a cache
	// disagrees with the entries.
	ErrCorrupted = errors.New("audit: log corrupted")
	// ErrInconsistent means the entries do not match a signed checkpoint,
	// or two checkpoints of one log cannot both be true (the log was
	// truncated, forked or rewritten).
	ErrInconsistent = errors.New("audit: log inconsistent with its checkpoints")
	// ErrBadSignature means a checkpoint or cosignature is not signed by
	// the expected key, or a signature from a known key does not verify.
	ErrBadSignature = errors.New("audit: bad signature")
	// ErrUnknownOrigin means a witness was asked to cosign a checkpoint of
	// a log it is not configured to witness.
	ErrUnknownOrigin = errors.New("audit: unknown log origin")
	// ErrRewritten means a witness found a log's new checkpoint
	// inconsistent with the one it saw before. The concrete error is a
	// *RewriteError carrying both checkpoints as evidence.
	ErrRewritten = errors.New("audit: log truncated or rewritten")
	// ErrNotCosigned means no checkpoint with enough cosignatures covers an
	// entry yet.
	ErrNotCosigned = errors.New("audit: no cosigned checkpoint covers the entry")
)

// VerifyError names the first problem [Verify] found: the entry (by sequence
// number) or the checkpoint (by its position in the checkpoints file) at
// fault. errors.Is sees the sentinel in Err ([ErrCorrupted],
// [ErrInconsistent], [ErrBadSignature] or [ErrMalformed]).
type VerifyError struct {
	// Entry is the sequence number of the entry at fault, or -1.
	Entry int64
	// Checkpoint is the 0-based number of the checkpoint record at fault,
	// or -1.
	Checkpoint int
	// Reason says what is wrong and what it means.
	Reason string
	// Err is the sentinel the problem falls under.
	Err error
}

// Error describes the problem, naming the entry and/or checkpoint.
func (e *VerifyError) Error() string {
	var where string
	switch {
	case e.Entry >= 0 && e.Checkpoint >= 0:
		where = fmt.Sprintf("entry %d, checkpoint %d", e.Entry, e.Checkpoint)
	case e.Entry >= 0:
		where = fmt.Sprintf("entry %d", e.Entry)
	case e.Checkpoint >= 0:
		where = fmt.Sprintf("checkpoint %d", e.Checkpoint)
	default:
		where = "log"
	}
	return fmt.Sprintf("audit: %s: %s (%v)", where, e.Reason, e.Err)
}

// Unwrap returns the sentinel.
func (e *VerifyError) Unwrap() error { return e.Err }

// ConflictError is a witness's answer when the old size in a cosigning
// request is not the size of the last checkpoint it cosigned for the
// origin (C2SP tlog-witness "409 Conflict"). It is not an attack: the
// origin should build a new request from Size and send it again.
type ConflictError struct {
	// Origin is the log the request was for.
	Origin string
	// Size is the size of the last checkpoint the witness cosigned for
	// Origin (0 if none).
	Size uint64
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("audit: witness last saw %s at size %d; send a consistency proof from size %d", e.Origin, e.Size, e.Size)
}

// Rewrite kinds, the Kind of a [RewriteError].
const (
	// RewriteTruncated: the new checkpoint is smaller than the one seen.
	RewriteTruncated = "truncated"
	// RewriteForked: the new checkpoint has the size of the one seen but
	// another root hash.
	RewriteForked = "forked"
	// RewriteInconsistent: the consistency proof from the seen checkpoint
	// to the new one does not verify, so the new tree does not extend the
	// old one.
	RewriteInconsistent = "inconsistent"
)

// RewriteError is the evidence a witness keeps when a log's new checkpoint
// contradicts the one it cosigned before: the origin truncated or rewrote
// its log, possibly re-signing the new history with its own key. Both
// checkpoints carry the origin's signature, so the evidence stands on its
// own; [CheckEvidence] re-checks it. It marshals to and from JSON.
// errors.Is(err, [ErrRewritten]) holds for it.
type RewriteError struct {
	// Origin is the log that misbehaved.
	Origin string `json:"origin"`
	// Kind is RewriteTruncated, RewriteForked or RewriteInconsistent.
	Kind string `json:"kind"`
	// Seen is the signed checkpoint the witness cosigned before.
	Seen string `json:"seen"`
	// Got is the signed checkpoint the origin presented now.
	Got string `json:"got"`
	// OldSize is the old size the request claimed (RewriteInconsistent).
	OldSize uint64 `json:"old_size"`
	// Proof is the consistency proof that failed (RewriteInconsistent).
	Proof []Hash `json:"proof,omitempty"`
}

// Error names the origin and what the two checkpoints show.
func (e *RewriteError) Error() string {
	var seen, got Checkpoint // zero sizes if the evidence does not parse
	if c, err := parseCheckpointText(noteText(e.Seen)); err == nil {
		seen = *c
	}
	if c, err := parseCheckpointText(noteText(e.Got)); err == nil {
		got = *c
	}
	switch e.Kind {
	case RewriteTruncated:
		return fmt.Sprintf("audit: log %s was truncated: it signed size %d after size %d; keep this evidence and alert the operators", e.Origin, got.Size, seen.Size)
	case RewriteForked:
		return fmt.Sprintf("audit: log %s was rewritten: it signed two different trees of size %d; keep this evidence and alert the operators", e.Origin, got.Size)
	default:
		return fmt.Sprintf("audit: log %s was rewritten: its tree of size %d does not extend the one of size %d it signed before (consistency proof fails); keep this evidence and alert the operators", e.Origin, got.Size, seen.Size)
	}
}

// Is reports whether target is [ErrRewritten].
func (e *RewriteError) Is(target error) bool { return target == ErrRewritten }
