package keyquorum

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/hsmshare"
)

// Audit entry types of seal-key rotation.
const (
	auditSealKeyRotate  = "seal_key.rotate"
	auditSealKeyRotated = "seal_key.rotated"
)

// SealKeyRotation describes a finished seal-key rotation.
type SealKeyRotation struct {
	// OldLabel and OldID name the key the store was sealed under; it is
	// destroyed when OldDestroyed is true.
	OldLabel string `json:"old_label"`
	OldID    string `json:"old_id"`
	// NewLabel and NewID name the key that seals the store now.
	NewLabel string `json:"new_label"`
	NewID    string `json:"new_id"`
	// OldDestroyed reports whether the old key was deleted from the token.
	OldDestroyed bool `json:"old_destroyed"`
}

// SealKeyLabel returns the label of the seal key that seals the store in
// dir, for a site whose configured label is base: the generation its last
// rotation recorded ("base.N", see [Node.RotateSealKey]), else base. Open
// loads the key by this label; setup tools that load the seal key
// themselves should too.
func SealKeyLabel(dir, base string) string {
	rec, err := hsmshare.StoreSealKeyLabel(dir)
	if err != nil || rec == "" {
		return base // a bad record is OpenStore's to report
	}
	if n, ok := strings.CutPrefix(rec, base+"."); ok {
		if g, err := strconv.Atoi(n); err == nil && g >= 2 {
			return rec
		}
	}
	return base
}

// nextSealKeyLabel is the label of the generation after label: base.2
// after base, base.N+1 after base.N.
func nextSealKeyLabel(label, base string) string {
	if n, ok := strings.CutPrefix(label, base+"."); ok {
		if g, err := strconv.Atoi(n); err == nil && g >= 2 {
			return base + "." + strconv.Itoa(g+1)
		}
	}
	return base + ".2"
}

// RotateSealKey generates a new seal key in the site's token (labelled
// Config.SealKeyLabel with a generation number, "keyquorum-seal.2",
// ".3", ...), re-seals every record of the store under it
// ([hsmshare.Store.Rotate]: every blob is read back under the new key
// before the old key is given up), then destroys the old key. The store
// records the new key's label, so later starts load it. An audit entry
// is written before and after.
//
// An interrupted rotation leaves every record readable; calling
// RotateSealKey again finishes it with the same new key. If the old key
// could not be destroyed, the error says so and the store is already
// sealed under the new key.
func (n *Node) RotateSealKey(ctx context.Context) (*SealKeyRotation, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	old := n.store.SealKey()
	base := n.cfg.SealKeyLabel
	label := nextSealKeyLabel(old.Label(), base)
	next, err := n.token.SealKey(ctx, label)
	if err == nil && !n.store.RotationPending() {
		// Left over by a rotation that failed before it started: a key
		// that seals nothing.
		return nil, fmt.Errorf("keyquorum: rotate seal key: token %q already holds a key labelled %q that the store does not use; delete it with the token's tools, then retry", n.token.Label(), label)
	}
	if err != nil {
		if !errors.Is(err, hsmshare.ErrKeyNotFound) {
			return nil, fmt.Errorf("keyquorum: rotate seal key: look for %q on token %q: %w", label, n.token.Label(), err)
		}
		if next, err = n.token.CreateSealKey(ctx, label); err != nil {
			return nil, fmt.Errorf("keyquorum: rotate seal key: create %q on token %q: %w", label, n.token.Label(), err)
		}
	}
	res := &SealKeyRotation{OldLabel: old.Label(), OldID: old.ID(), NewLabel: next.Label(), NewID: next.ID()}
	fields := map[string]string{"old_label": res.OldLabel, "old_id": res.OldID, "new_label": res.NewLabel, "new_id": res.NewID}
	if err := n.record(ctx, auditSealKeyRotate, fields); err != nil {
		return nil, err
	}
	if err := n.store.Rotate(ctx, next); err != nil {
		return nil, fmt.Errorf("keyquorum: rotate seal key from %q to %q: %w (every record stays readable; run the rotation again to finish it)", res.OldLabel, res.NewLabel, err)
	}
	n.log.Info("store re-sealed under a new seal key", "old", res.OldLabel, "new", res.NewLabel)
	derr := old.Destroy(ctx)
	res.OldDestroyed = derr == nil
	fields["old_destroyed"] = strconv.FormatBool(res.OldDestroyed)
	n.recordQuiet(auditSealKeyRotated, fields)
	if derr != nil {
		return res, fmt.Errorf("keyquorum: the store is sealed under %q now, but the old seal key %q (ID %s) could not be destroyed: %w; delete it with the token's tools", res.NewLabel, res.OldLabel, res.OldID, derr)
	}
	return res, nil
}
