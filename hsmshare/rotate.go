package hsmshare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// rotationJournal records an unfinished seal-key rotation in
// <dir>/rotation.json. It holds key labels and IDs only, nothing secret.
type rotationJournal struct {
	Format    int    `json:"format"`
	FromLabel string `json:"from_label"`
	FromID    string `json:"from_id"`
	ToLabel   string `json:"to_label"`
	ToID      string `json:"to_id"`
}

const journalFormat = 1

// keyInfo names the seal key a store's records are sealed under, in
// <dir>/sealkey.json. It is not authenticated (the blobs are): it only turns
// "every record fails to open" into a clear error when the store is opened
// with the wrong key.
type keyInfo struct {
	Format int    `json:"format"`
	Label  string `json:"label"`
	ID     string `json:"id"`
}

// checkKeyInfo compares key with sealkey.json, writing the file for a new
// store.
func (s *Store) checkKeyInfo(key *SealKey) error {
	path := filepath.Join(s.dir, keyInfoName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.writeKeyInfo(key)
	}
	if err != nil {
		return fmt.Errorf("hsmshare: store %s: read %s: %w", s.dir, keyInfoName, err)
	}
	var ki keyInfo
	if err := json.Unmarshal(b, &ki); err != nil || ki.Format != journalFormat || ki.ID == "" {
		return fmt.Errorf("%w: store %s: %s is not valid", ErrCorrupted, s.dir, path)
	}
	if ki.ID != key.ID() {
		return fmt.Errorf("%w: store %s is sealed under seal key %q (ID %s), not %q (ID %s); open it with that key, or Rotate to change keys",
			ErrWrongSealKey, s.dir, ki.Label, ki.ID, key.label, key.ID())
	}
	return nil
}

// StoreSealKeyLabel returns the label of the seal key the store in dir is
// sealed under, as its last finished rotation (or its creation) recorded
// it, so that a site whose seal key was rotated loads the new key at its
// next start. It returns "" and no error for a directory that holds no
// store yet. The label is not authenticated: the store checks the key it
// is opened with against every blob.
func StoreSealKeyLabel(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyInfoName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hsmshare: store %s: read %s: %w", dir, keyInfoName, err)
	}
	var ki keyInfo
	if err := json.Unmarshal(b, &ki); err != nil || ki.Format != journalFormat || ki.Label == "" {
		return "", fmt.Errorf("%w: store %s: %s is not valid", ErrCorrupted, dir, keyInfoName)
	}
	return ki.Label, nil
}

// readKeyInfo returns the seal key label and ID that sealkey.json in dir
// names, or two empty strings when there is none.
func readKeyInfo(dir string) (label, id string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, keyInfoName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("hsmshare: store %s: read %s: %w", dir, keyInfoName, err)
	}
	var ki keyInfo
	if err := json.Unmarshal(b, &ki); err != nil || ki.Format != journalFormat || ki.ID == "" {
		return "", "", fmt.Errorf("%w: store %s: %s is not valid", ErrCorrupted, dir, keyInfoName)
	}
	return ki.Label, ki.ID, nil
}

func (s *Store) writeKeyInfo(key *SealKey) error {
	b, err := json.MarshalIndent(keyInfo{Format: journalFormat, Label: key.label, ID: key.ID()}, "", "  ")
	if err == nil {
		err = s.writeFileAtomic(s.dir, keyInfoName, append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("hsmshare: store %s: write %s: %w", s.dir, keyInfoName, err)
	}
	return nil
}

// Steps of Rotate at which the test hook can stop it.
const (
	stepJournal     = "journal"      // journal written, nothing re-sealed yet
	stepResealed    = "resealed"     // after each re-sealed blob (n = count)
	stepResealedAll = "resealed-all" // every blob re-sealed, not yet verified
	stepVerified    = "verified"     // every blob read back under the new key
	stepDone        = "done"         // journal removed
)

func (s *Store) readJournal() (*rotationJournal, error) {
	path := filepath.Join(s.dir, journalName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: read rotation journal: %w", s.dir, err)
	}
	var j rotationJournal
	if err := json.Unmarshal(b, &j); err != nil || j.Format != journalFormat || j.FromID == "" || j.ToID == "" || j.FromLabel == "" || j.ToLabel == "" {
		return nil, fmt.Errorf("%w: store %s: rotation journal %s is not valid; it names the seal keys of an unfinished rotation and must be repaired by hand", ErrCorrupted, s.dir, path)
	}
	return &j, nil
}

// Rotate re-seals every version of every record under newKey. It works in
// steps, each safe to interrupt:
//
//  1. write rotation.json naming the old and the new key; from here on new
//     records are sealed under newKey and both keys open records;
//  2. re-seal each blob still under the old key (atomic replace per file);
//  3. read every blob back and check it opens under newKey;
//  4. record newKey in sealkey.json, remove rotation.json and stop using
//     the old key.
//
// If Rotate is interrupted (error, cancellation or crash), every record
// stays readable: reopen the store with either key and call Rotate with
// newKey again to continue. Only after Rotate returns nil may the old key be
// destroyed ([SealKey.Destroy] refuses earlier while this store is open).
// Rotating to a key on another token is not supported. Other operations on
// the store wait while Rotate runs.
func (s *Store) Rotate(ctx context.Context, newKey *SealKey) error {
	if newKey == nil {
		return errors.New("hsmshare: Rotate: nil seal key")
	}
	if err := newKey.usable(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: store %s", ErrClosed, s.dir)
	}
	if newKey.tok.mod != s.key.tok.mod || newKey.tok.serial != s.key.tok.serial || newKey.tok.label != s.key.tok.label {
		return fmt.Errorf("hsmshare: store %s: rotation to seal key %q on another token (%s) is not supported; its keys must be on %s", s.dir, newKey.label, newKey.tok.describe(), s.key.tok.describe())
	}
	switch {
	case s.journal != nil && newKey.ID() != s.journal.ToID:
		return fmt.Errorf("hsmshare: store %s: an unfinished rotation to seal key %q (%s) must be finished first; call Rotate with that key", s.dir, s.journal.ToLabel, s.journal.ToID)
	case s.journal == nil && newKey.ID() == s.key.ID():
		return nil // already sealed under newKey
	case s.journal == nil:
		if err := newKey.acquire(); err != nil {
			return err
		}
		j := &rotationJournal{Format: journalFormat, FromLabel: s.key.label, FromID: s.key.ID(), ToLabel: newKey.label, ToID: newKey.ID()}
		b, err := json.MarshalIndent(j, "", "  ")
		if err == nil {
			err = s.writeFileAtomic(s.dir, journalName, append(b, '\n'))
		}
		if err != nil {
			newKey.release()
			return fmt.Errorf("hsmshare: store %s: write rotation journal: %w", s.dir, err)
		}
		s.journal = j
		s.old, s.key = s.key, newKey
	}
	if err := s.hook(stepJournal, 0); err != nil {
		return err
	}

	// Step 2: re-seal what is still under the old key.
	n := 0
	err := s.eachVersion(func(kind, id string, v uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		keyID, err := s.blobSealKeyID(kind, id, v)
		if err != nil {
			return err
		}
		if keyID == s.key.ID() {
			return nil // done by an earlier, interrupted Rotate
		}
		pt, err := s.read(ctx, kind, id, v)
		if err != nil {
			return fmt.Errorf("hsmshare: rotate store %s: %w (delete the record or restore it, then call Rotate again)", s.dir, err)
		}
		blob, err := s.key.Seal(ctx, Header{Kind: kind, KeyID: id, PartyID: s.party, Version: v}, pt)
		wipe(pt)
		if err != nil {
			return fmt.Errorf("hsmshare: rotate store %s: %w", s.dir, err)
		}
		if err := s.writeFileAtomic(s.recordDir(kind, id), versionFile(v), blob); err != nil {
			return fmt.Errorf("hsmshare: rotate store %s: write %s/%s version %d: %w", s.dir, kind, id, v, err)
		}
		n++
		return s.hook(stepResealed, n)
	})
	if err != nil {
		return err
	}
	if err := s.hook(stepResealedAll, n); err != nil {
		return err
	}

	// Step 3: everything must open under the new key before the old one
	// may go.
	err = s.eachVersion(func(kind, id string, v uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		keyID, err := s.blobSealKeyID(kind, id, v)
		if err != nil {
			return err
		}
		if keyID != s.key.ID() {
			return fmt.Errorf("hsmshare: rotate store %s: %s/%s version %d is still sealed under seal key %s", s.dir, kind, id, v, keyID)
		}
		pt, err := s.read(ctx, kind, id, v)
		if err != nil {
			return fmt.Errorf("hsmshare: rotate store %s: read-back: %w", s.dir, err)
		}
		wipe(pt)
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.hook(stepVerified, n); err != nil {
		return err
	}

	// Step 4.
	if err := s.writeKeyInfo(s.key); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, journalName)); err != nil {
		return fmt.Errorf("hsmshare: store %s: remove rotation journal: %w", s.dir, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("hsmshare: store %s: %w", s.dir, err)
	}
	s.journal = nil
	if s.old != nil {
		s.old.release()
		s.old = nil
	}
	return s.hook(stepDone, n)
}

func (s *Store) hook(step string, n int) error {
	if s.hooks.rotate == nil {
		return nil
	}
	return s.hooks.rotate(step, n)
}
