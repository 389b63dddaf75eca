// Package audit is a site's tamper-evident audit trail: an append-only
// log whose entries are the leaves of an RFC 6962 Merkle tree, checkpoints
// of that tree signed by a key in the site's HSM, cosignatures from the
// other sites acting as witnesses, and offline verification. The formats
// are specified in FORMAT.md.
//
// # Appending
//
// [Open] opens (or creates) a log in a private directory. [Log.Append] adds
// an entry — type, fields, and optionally a detail part sealed by a
// [Sealer] — and returns only once it is durable (written and
// fdatasync'ed), so a site records an action before the action takes
// effect. Concurrent appends share one fdatasync (group commit). An append
// that cannot be made durable fails with [ErrAppendFailed], on which a
// site fails closed. A crash at any point leaves at most a torn last
// record, which Open cuts; it never accepts half a record.
//
// # Checkpoints and witnessing
//
// [Log.Checkpoint] signs the tree's size and root hash as a C2SP
// tlog-checkpoint with a crypto.Signer holding an ECDSA P-256 key
// (signed-note type 0x02). [Log.RunCheckpoints] does so periodically and
// at shutdown. Another site's [Witness] checks each new checkpoint against
// the last one it saw of that log with a consistency proof
// ([Log.CosignRequest]), stores it, and returns a cosignature that the
// log keeps ([Log.AddCosignatures]). A log that was truncated or
// rewritten — even one re-signed with the site's own key — is caught at
// the next exchange: the witness returns a [*RewriteError] carrying both
// signed checkpoints as evidence.
//
// # Tools
//
// [Verify] recomputes the tree from a copy of the log directory and
// checks every record, checkpoint signature, cosignature and the
// consistency of the checkpoints, naming the first bad entry or
// checkpoint in a [*VerifyError]. [Log.Tail], [Log.Follow] and
// [Log.Export] (JSON Lines) read entries; [Log.Prove] makes an inclusion
// proof against a cosigned checkpoint and [VerifyInclusion] checks it.
//
// # Trust
//
// Entries are public to whoever holds a copy of the log; they never carry
// secrets. [Verify] needs only public keys. The site's own signature shows
// what the site claimed; the witnesses' cosignatures and the checkpoints
// they keep show that it did not change its claim later. Entries appended
// after the newest checkpoint are protected by the next one.
package audit
