package keyquorum

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/tss"
)

// auditStoreBackup is the audit entry of a backup taken by a running Node.
const auditStoreBackup = "store.backup"

// BackupRequest asks for a backup of a site's store.
type BackupRequest struct {
	// SiteFiles are files of the embedding service carried in the backup
	// beside the store, by name ([hsmshare.ValidName] rules), so that a
	// site can be rebuilt from the backup and its HSM token: for kqnode
	// its config.json and operators.json. They are kept in the clear:
	// never put a secret (a PIN) in them.
	SiteFiles map[string][]byte
}

// BackupResult describes a backup. It holds nothing secret.
type BackupResult struct {
	// Party is the site the backup belongs to.
	Party string `json:"party"`
	// SealKeyLabel and SealKeyID name the HSM seal key every record is
	// sealed under; only a token holding that key can restore it.
	SealKeyLabel string `json:"seal_key_label"`
	SealKeyID    string `json:"seal_key_id"`
	// Created is when the backup was taken.
	Created time.Time `json:"created"`
	// Keys are the IDs of the keys whose shares the backup holds, sorted.
	Keys []string `json:"keys"`
	// Records counts the record versions, Kinds the versions per kind.
	Records int            `json:"records"`
	Kinds   map[string]int `json:"kinds"`
	// Excluded are the kinds left out: single-use material
	// ([tss.SingleUseKinds]).
	Excluded []string `json:"excluded_kinds"`
	// SiteFiles are the names of the site files carried.
	SiteFiles []string `json:"site_files"`
}

// DescribeBackup summarizes a backup from its description.
func DescribeBackup(info hsmshare.BackupInfo) *BackupResult {
	r := &BackupResult{Party: info.Party, SealKeyLabel: info.SealKeyLabel, SealKeyID: info.SealKeyID, Created: info.Created,
		Keys: []string{}, Records: len(info.Records), Kinds: map[string]int{}, Excluded: info.Excluded, SiteFiles: info.Files}
	for _, rec := range info.Records {
		r.Kinds[rec.Kind]++
		if rec.Kind == tss.ShareKind && !slices.Contains(r.Keys, rec.ID) {
			r.Keys = append(r.Keys, rec.ID)
		}
	}
	slices.Sort(r.Keys)
	return r
}

// Backup writes a point-in-time backup of the site's store to w
// ([hsmshare.Store.Backup]): every record still sealed by the site's HSM,
// with req.SiteFiles, and without single-use material — presignatures and
// pre-parameters ([tss.SingleUseKinds]), which must never be used twice
// and so are never restored. The store waits while the backup is written,
// so give it a fast writer (a buffer or a local file). The backup is
// recorded in the audit log (store.backup) once it is written; if that
// fails, Backup returns the error and the caller should discard what w
// received.
//
// Restore it with [RestoreStore] onto the same HSM token, the site
// stopped. The audit log is not in it: see the README's "Backups".
func (n *Node) Backup(ctx context.Context, w io.Writer, req BackupRequest) (*BackupResult, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	n.sealMu.Lock() // no seal-key rotation starts meanwhile
	res, err := BackupStore(ctx, n.store, w, req)
	n.sealMu.Unlock()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{"records": strconv.Itoa(res.Records), "keys": strconv.Itoa(len(res.Keys)),
		"seal_key_label": res.SealKeyLabel, "seal_key_id": res.SealKeyID, "created": res.Created.Format(time.RFC3339)}
	if err := n.record(ctx, auditStoreBackup, fields); err != nil {
		return nil, err
	}
	return res, nil
}

// BackupStore writes a backup of st to w as [Node.Backup] does, for a
// site that is not running: open its store with [hsmshare.OpenStore]
// (its seal key labelled as [SealKeyLabel] says). Nothing is recorded in
// the audit log, which only a running Node writes.
func BackupStore(ctx context.Context, st *hsmshare.Store, w io.Writer, req BackupRequest) (*BackupResult, error) {
	info, err := st.Backup(ctx, w, hsmshare.BackupOptions{Exclude: tss.SingleUseKinds(), Files: req.SiteFiles})
	if err != nil {
		return nil, fmt.Errorf("keyquorum: backup: %w", err)
	}
	return DescribeBackup(*info), nil
}

// RestoreStore restores backup b, read with [hsmshare.ReadBackup], into
// the store directory dir of the site party, whose seal key on the site's
// HSM token is key, while the site is stopped ([hsmshare.RestoreStore]
// takes the store's lock and fails with [hsmshare.ErrStoreLocked] while
// it runs). Every blob must open under key before anything is written;
// records of single-use kinds are refused. Without replace the store must
// hold no records; with it, the backup's versions replace the same
// versions and every other version stays (a newer key epoch is never
// dropped).
//
// Restored key shares sign again as before. Presignatures are not
// restored: the pools refill. A site restored from an older backup may
// have missed reshares since; its share of an older epoch cannot sign
// with the committee's newer one.
func RestoreStore(ctx context.Context, dir string, key *hsmshare.SealKey, party string, b *hsmshare.Backup, replace bool) (*hsmshare.RestoreResult, error) {
	res, err := hsmshare.RestoreStore(ctx, dir, key, party, b, hsmshare.RestoreOptions{Refuse: tss.SingleUseKinds(), Replace: replace})
	if err != nil {
		return res, fmt.Errorf("keyquorum: restore store %s: %w", dir, err)
	}
	return res, nil
}
