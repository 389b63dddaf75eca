package tss

import "context"

// PresignatureChange says what happened to presignatures (see
// PresignatureEvent).
type PresignatureChange string

// Changes to presignatures reported to Config.Presignatures.
const (
	// PresignaturesMade: a presigning session stored a new batch here.
	PresignaturesMade PresignatureChange = "made"
	// PresignaturesUsed: an online signing session consumed them (their
	// slots are marked in the HSM ledger); the signature shares made with
	// them have not left this party yet.
	PresignaturesUsed PresignatureChange = "used"
	// PresignaturesBurned: this party, the initiator, consumed them for an
	// online signing that then failed; no signature came of them.
	PresignaturesBurned PresignatureChange = "burned"
	// PresignaturesDiscarded: reconciliation used them up because another
	// signer does not hold them, or they were found unusable (their
	// batch's ledger is gone from the HSM).
	PresignaturesDiscarded PresignatureChange = "discarded"
	// PresignaturesRetired: deleted because a reshare of their key
	// committed, so the old committee's shares they were made with are
	// gone.
	PresignaturesRetired PresignatureChange = "retired"
)

// PresignatureEvent tells Config.Presignatures what happened to some of
// this party's presignatures. Nothing in it is secret: a presignature ID
// is a hash of public values (session, signers, key, tweak and the
// commitment R), and the same on every signer.
type PresignatureEvent struct {
	// Change is what happened.
	Change PresignatureChange
	// Session is the session that made, used, burned or discarded them;
	// zero for presignatures found unusable and for retired ones.
	Session SessionID
	// Pool names their pool alike on every signer: 16 hex digits, a hash
	// of key, epoch, signers, path and initiator.
	Pool string
	// Spec is the pool's key, signers, path and initiator. When the event
	// does not know them (found unusable, retired) only KeyID is set.
	Spec PoolSpec
	// Epoch is the epoch of the key share they were made with.
	Epoch uint64
	// IDs are the presignature IDs, hex.
	IDs []string
	// Digests are, for PresignaturesUsed and PresignaturesBurned, the
	// digest each presignature signs (or was to sign), in the order of IDs.
	Digests [][32]byte
	// Reason says why they were burned, discarded or retired.
	Reason string
}

// presigEvent reports ev to Config.Presignatures. Its error matters for
// PresignaturesUsed only (the caller fails closed); the others are logged.
func (e *Engine) presigEvent(ctx context.Context, ev PresignatureEvent) error {
	if e.cfg.Presignatures == nil {
		return nil
	}
	err := e.cfg.Presignatures(ctx, ev)
	if err != nil && ev.Change != PresignaturesUsed {
		e.log.Warn("presignature change not recorded", "change", string(ev.Change), "pool", ev.Pool, "count", len(ev.IDs), "err", err.Error())
	}
	return err
}

// poolSpec is the pool a presigning or online signing proposal draws on.
func (p *Proposal) poolSpec() PoolSpec {
	return PoolSpec{KeyID: p.KeyID, Signers: p.Parties, Path: p.Path, Initiator: p.Initiator}
}
