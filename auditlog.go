package keyquorum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/tss"
)

// DefaultAuditCheckpointInterval is how often a site signs a checkpoint of
// its audit log when Config.AuditCheckpointInterval is zero.
const DefaultAuditCheckpointInterval = time.Minute

// ErrAudit means this site could not record an action in its audit log
// (disk full, I/O error): it refuses to sign until it can, because an
// action must be in the log before it takes effect.
var ErrAudit = errors.New("keyquorum: audit log cannot record")

// Audit entry types this site writes (audit/FORMAT.md has the entry form;
// the README lists every type and its fields).
const (
	auditSiteStart     = "site.start"
	auditSiteStop      = "site.stop"
	auditSignAuthorize = "sign.authorize"
	auditSignRefuse    = "sign.refuse"
	auditSignResult    = "sign.result"
	auditSessionDone   = "session.done"
	auditKeygen        = "key.generated"
	auditOpFailed      = "op.failed"
	auditBundleExport  = "bundle.exported"
	auditBundleImport  = "bundle.imported"
	auditBundleRefuse  = "bundle.refused"
	auditBundleSkip    = "bundle.skip"
)

// Presignature entries: "presig." followed by the tss.PresignatureChange
// (made, used, burned, discarded, retired), one entry per batch.
const auditPresig = "presig."

// AuditOrigin is the origin (the name in its checkpoints) of the audit log
// of the site with party ID party.
func AuditOrigin(party tss.PartyID) string { return "keyquorum/" + string(party) }

// openAudit opens (or creates) the site's audit log: entries are written
// by this site, checkpoints signed by its HSM identity key.
func (n *Node) openAudit(ctx context.Context) error {
	if n.cfg.DisableAudit {
		n.log.Warn("audit log disabled (Config.DisableAudit): this site keeps no tamper-evident record of what it signs")
		return nil
	}
	dir := n.cfg.AuditDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(filepath.Clean(n.cfg.StoreDir)), "audit")
	}
	// One data key per start seals the detail parts (auditdetail.go).
	sealer, err := newDetailSealer(ctx, n.store, n.rand)
	if err != nil {
		return err
	}
	n.details = sealer
	l, err := audit.Open(dir, audit.Config{Origin: AuditOrigin(n.party), Site: string(n.party), Signer: n.identity, Sealer: sealer})
	if err != nil {
		return fmt.Errorf("keyquorum: open audit log %s: %w", dir, err)
	}
	n.audit = l
	return nil
}

// AuditVerifier returns the verifier of this site's audit checkpoints (its
// origin and HSM identity key), what an auditor needs besides a copy of
// the log directory.
func (n *Node) AuditVerifier() (note.Verifier, error) {
	return audit.NewVerifier(AuditOrigin(n.party), n.identity.PublicKey())
}

// AuditLog returns the site's audit log (nil when DisableAudit is set), for
// reading it (Tail, Follow, Export, Prove) and for shipping its entries
// elsewhere. The Node writes to it; callers should not append.
func (n *Node) AuditLog() *audit.Log { return n.audit }

// record appends an audit entry and returns only once it is durable. With
// the audit log disabled it does nothing.
func (n *Node) record(ctx context.Context, typ string, fields map[string]string) error {
	return n.recordDetail(ctx, typ, fields, nil)
}

// recordDetail is record with a detail part, sealed with the site's audit
// data key (auditdetail.go); nil means none.
func (n *Node) recordDetail(ctx context.Context, typ string, fields map[string]string, detail []byte) error {
	if n.audit == nil {
		return nil
	}
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	if _, err := n.audit.Append(ctx, audit.Record{Type: typ, Fields: fields, Detail: detail}); err != nil {
		n.log.Error("audit log append failed: this site refuses to sign until it can record", "type", typ, "err", err.Error())
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}

// recordQuiet appends an entry whose failure cannot stop the action (it
// happened already); the failure is logged and makes the log unhealthy,
// so the next signing request is refused.
func (n *Node) recordQuiet(typ string, fields map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = n.record(ctx, typ, fields)
}

// auditHealthy reports whether the log can take entries (nil when it is
// disabled or healthy).
func (n *Node) auditHealthy() error {
	if n.audit == nil {
		return nil
	}
	if err := n.audit.Healthy(); err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}

func parties(ps []tss.PartyID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// hexList lists digests in hex; a batch too long for one field is named
// by its count and the SHA-256 of the digests in order.
func hexList(ds [][32]byte) string {
	if len(ds) > 60 {
		h := sha256.New()
		for _, d := range ds {
			h.Write(d[:])
		}
		return fmt.Sprintf("%d digests, sha256 %x", len(ds), h.Sum(nil))
	}
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = hex.EncodeToString(d[:])
	}
	return strings.Join(s, ",")
}

// runAuditCheckpoints signs a checkpoint every interval and at shutdown.
func (n *Node) runAuditCheckpoints(ctx context.Context) {
	if n.audit == nil {
		return
	}
	every := n.cfg.AuditCheckpointInterval
	if every == 0 {
		every = DefaultAuditCheckpointInterval
	}
	_ = n.audit.RunCheckpoints(ctx, every, func(cp *audit.Checkpoint, err error) {
		if err != nil {
			n.log.Error("audit checkpoint failed", "err", err.Error())
			return
		}
		n.log.Debug("audit checkpoint signed", "size", strconv.FormatUint(cp.Size, 10))
		if n.net == nil {
			return
		}
		// Have the other sites cosign it (bounded: this runs at shutdown too).
		wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := n.cosign(wctx, cp); err != nil {
			n.log.Warn("audit checkpoint not cosigned by every site", "size", strconv.FormatUint(cp.Size, 10), "err", err.Error())
		}
	})
}

// RecordAudit appends an entry of the embedding service to this site's
// audit log and returns once it is durable: for example the control-API
// calls of kqnode, or a service's own approvals workflow. typ must start
// with "api." or "app." (the node's own types are reserved for it); the
// fields follow audit.Record's rules and must never hold secrets. With the
// audit log disabled it does nothing. A failure wraps ErrAudit.
func (n *Node) RecordAudit(ctx context.Context, typ string, fields map[string]string) error {
	if !strings.HasPrefix(typ, "api.") && !strings.HasPrefix(typ, "app.") {
		return fmt.Errorf("%w: audit entry type %q: an embedding service's types start with api. or app.", tss.ErrBadRequest, typ)
	}
	f := make(map[string]string, len(fields))
	for k, v := range fields {
		f[k] = v
	}
	return n.record(ctx, typ, f)
}

// presignatures is the engine's Config.Presignatures hook: every change to
// this site's presignatures becomes an entry naming the session, pool, key,
// signers, initiator and the presignature IDs (hashes of public values,
// never secret). The use of presignatures is recorded durably before this
// site's signature shares made with them leave it: an error stops the
// session. The other changes have happened already; a failure to record
// them makes the log unhealthy, so the next signing is refused.
func (n *Node) presignatures(ctx context.Context, ev tss.PresignatureEvent) error {
	fields := map[string]string{"pool": ev.Pool, "key_id": ev.Spec.KeyID, "signers": parties(ev.Spec.Signers),
		"path": ev.Spec.Path, "initiator": string(ev.Spec.Initiator), "epoch": strconv.FormatUint(ev.Epoch, 10),
		"count": strconv.Itoa(len(ev.IDs)), "presignatures": idList(ev.IDs), "reason": truncateField(ev.Reason)}
	if ev.Session != (tss.SessionID{}) {
		fields["session"] = hex.EncodeToString(ev.Session[:])
	}
	if len(ev.Digests) > 0 {
		fields["digests"] = hexList(ev.Digests)
	}
	typ := auditPresig + string(ev.Change)
	if ev.Change == tss.PresignaturesUsed {
		return n.record(ctx, typ, fields)
	}
	n.recordQuiet(typ, fields)
	return nil
}

// idList lists hex IDs; a list too long for one field is named by its
// count and the SHA-256 of the IDs in order, as hexList does.
func idList(ids []string) string {
	if len(ids) > 60 {
		h := sha256.New()
		for _, id := range ids {
			b, _ := hex.DecodeString(id)
			h.Write(b)
		}
		return fmt.Sprintf("%d ids, sha256 %x", len(ids), h.Sum(nil))
	}
	return strings.Join(ids, ",")
}

// operationFailed records an operation started here whose session with
// the other sites failed, with who is to blame: the culprits of an abort,
// the parties a timeout waited for or that could not be reached, the site
// that refused. Requests refused before any session (bad input, unknown
// key) are not session outcomes and are left to the caller's own record
// (kqnode records every API call).
func (n *Node) operationFailed(o Operation, err error) {
	fields := map[string]string{"op": o.Kind, "op_id": strconv.FormatUint(o.ID, 10), "key_id": o.KeyID,
		"parties": parties(o.Parties), "error": truncateField(err.Error())}
	if o.Parent != 0 {
		fields["parent"] = strconv.FormatUint(o.Parent, 10)
	}
	var culprit *tss.CulpritError
	var timeout *tss.RoundTimeoutError
	var refused *tss.RefusedError
	var unreachable *tss.UnreachableError
	switch {
	case errors.As(err, &culprit):
		fields["culprits"] = parties(culprit.Parties)
		fields["round"] = strconv.FormatUint(uint64(culprit.Round), 10)
	case errors.As(err, &timeout):
		fields["missing"] = parties(timeout.Parties)
		fields["session"] = hex.EncodeToString(timeout.Session[:])
		fields["round"] = strconv.FormatUint(uint64(timeout.Round), 10)
	case errors.As(err, &unreachable):
		fields["missing"] = parties(unreachable.Parties)
	case errors.As(err, &refused):
		fields["refused_by"] = string(refused.Party)
	default:
		return
	}
	n.recordQuiet(auditOpFailed, fields)
}
