package keyquorum

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/tss"
)

// MaxKeyLabel is the longest key label, in bytes.
const MaxKeyLabel = 64

// kindKeyLabel holds each labelled key's label, by key ID, sealed like
// every record.
const kindKeyLabel = "keylabel"

// ValidKeyLabel reports whether label can name a key: 1 to MaxKeyLabel
// bytes of UTF-8 with no control characters and no space at either end.
func ValidKeyLabel(label string) error {
	switch {
	case label == "":
		return errors.New("a key label is empty")
	case len(label) > MaxKeyLabel:
		return fmt.Errorf("a key label is at most %d bytes, this one has %d", MaxKeyLabel, len(label))
	case !utf8.ValidString(label):
		return errors.New("a key label is UTF-8 text")
	case strings.TrimSpace(label) != label:
		return errors.New("a key label neither starts nor ends with a space")
	case strings.ContainsFunc(label, unicode.IsControl):
		return errors.New("a key label has no control characters (newlines, tabs, escapes)")
	}
	return nil
}

// SetKeyLabel gives the key keyID a label on this site, or removes it
// when label is "". A label is this site's own name for the key, for the
// people who read its status and audit log ("treasury-cold-2027"): each
// site labels its keys itself, the other sites are not told, and nothing
// is signed differently because of it. It survives restarts and
// reshares (it follows the key ID), and every change is in the audit log.
func (n *Node) SetKeyLabel(ctx context.Context, keyID, label string) error {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	if label != "" {
		if err := ValidKeyLabel(label); err != nil {
			return fmt.Errorf("keyquorum: label key %q: %w: %w", keyID, tss.ErrBadRequest, err)
		}
	}
	if _, err := n.eng.Key(ctx, keyID); err != nil {
		return fmt.Errorf("keyquorum: label key %q on %s: %w", keyID, n.party, err)
	}
	n.labelMu.Lock()
	defer n.labelMu.Unlock()
	old, err := n.keyLabelLocked(ctx, keyID)
	if err != nil {
		return fmt.Errorf("keyquorum: label key %s on %s: %w", keyID, n.party, err)
	}
	if old == label {
		return nil
	}
	if err := n.record(ctx, "key.label", map[string]string{"key_id": keyID, "label": label, "previous": old}); err != nil {
		return fmt.Errorf("keyquorum: label key %s on %s: %w", keyID, n.party, err)
	}
	if label == "" {
		err = n.store.Delete(ctx, kindKeyLabel, keyID)
	} else {
		err = n.store.Put(ctx, kindKeyLabel, keyID, 1, []byte(label))
	}
	if err != nil {
		delete(n.labels, keyID) // read it again next time
		return fmt.Errorf("keyquorum: label key %s on %s: store the label: %w", keyID, n.party, err)
	}
	n.labels[keyID] = label
	return nil
}

// keyLabel returns the label of keyID, "" when it has none.
func (n *Node) keyLabel(ctx context.Context, keyID string) (string, error) {
	n.labelMu.Lock()
	defer n.labelMu.Unlock()
	return n.keyLabelLocked(ctx, keyID)
}

// keyLabelLocked is keyLabel with labelMu held: from the cache, else from
// the store (and then cached).
func (n *Node) keyLabelLocked(ctx context.Context, keyID string) (string, error) {
	if l, ok := n.labels[keyID]; ok {
		return l, nil
	}
	b, _, err := n.store.Get(ctx, kindKeyLabel, keyID)
	if errors.Is(err, hsmshare.ErrNotFound) {
		b, err = nil, nil
	}
	if err != nil {
		return "", fmt.Errorf("read the label of key %s: %w", keyID, err)
	}
	if n.labels == nil {
		n.labels = make(map[string]string)
	}
	n.labels[keyID] = string(b)
	return string(b), nil
}
