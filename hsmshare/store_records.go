package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Put seals data for (kind, id, version) and writes it atomically and
// durably, replacing that version if it exists. Other versions are kept
// until Prune. data is neither kept nor modified.
func (s *Store) Put(ctx context.Context, kind, id string, version uint64, data []byte) error {
	if err := validRecord(kind, id); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	m := s.stripe(kind, id)
	m.Lock()
	defer m.Unlock()
	blob, err := s.key.Seal(ctx, Header{Kind: kind, KeyID: id, PartyID: s.party, Version: version}, data)
	if err != nil {
		return err
	}
	if err := s.writeBlob(kind, id, version, blob); err != nil {
		return fmt.Errorf("hsmshare: store %s: write %s/%s version %d: %w", s.dir, kind, id, version, err)
	}
	return nil
}

func (s *Store) writeBlob(kind, id string, version uint64, blob []byte) error {
	if err := mkdirDurable(s.kindDir(kind)); err != nil {
		return err
	}
	rdir := s.recordDir(kind, id)
	if err := mkdirDurable(rdir); err != nil {
		return err
	}
	return s.writeFileAtomic(rdir, versionFile(version), blob)
}

// writeFileAtomic writes data to dir/name so that after a crash the file
// holds either its previous content or data, never a mix: temp file (mode
// 0600), fsync, rename, fsync of the directory.
func (s *Store) writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = removeSealed(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if s.hooks.afterTempSync != nil {
		s.hooks.afterTempSync(tmp)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// Get returns the newest version of (kind, id) and its number. The caller
// owns the returned slice and should wipe it when done. A missing record
// gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) Get(ctx context.Context, kind, id string) ([]byte, uint64, error) {
	if err := validRecord(kind, id); err != nil {
		return nil, 0, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, 0, err
	}
	defer s.end()
	vs, err := s.versions(kind, id)
	if err != nil {
		return nil, 0, err
	}
	v := vs[len(vs)-1]
	data, err := s.read(ctx, kind, id, v)
	if err != nil {
		return nil, 0, err
	}
	return data, v, nil
}

// GetVersion returns one version of (kind, id). The caller owns the
// returned slice and should wipe it when done.
func (s *Store) GetVersion(ctx context.Context, kind, id string, version uint64) ([]byte, error) {
	if err := validRecord(kind, id); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	return s.read(ctx, kind, id, version)
}

// read loads and opens one version. It needs the read lock.
func (s *Store) read(ctx context.Context, kind, id string, v uint64) ([]byte, error) {
	path := filepath.Join(s.recordDir(kind, id), versionFile(v))
	blob, err := readBlobFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s/%s version %d in store %s", ErrNotFound, kind, id, v, s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: read %s: %w", s.dir, path, err)
	}
	key, err := s.keyFor(blob)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: %s/%s version %d (file %s): %w", s.dir, kind, id, v, path, err)
	}
	pt, err := key.Open(ctx, blob, Header{Kind: kind, KeyID: id, PartyID: s.party, Version: v})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: file %s: %w", s.dir, path, err)
	}
	return pt, nil
}

func readBlobFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrCorrupted)
	}
	if st.Size() > maxBlobSize {
		return nil, fmt.Errorf("%w: %d bytes is larger than any sealed blob", ErrCorrupted, st.Size())
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && n != len(buf) {
		return nil, err
	}
	return buf, nil
}

// keyFor picks the seal key a blob names: the current key, or during an
// unfinished rotation the old one. Blobs naming any other key are opened
// with the current key, which reports ErrTampered.
func (s *Store) keyFor(blob []byte) (*SealKey, error) {
	info, err := InspectBlob(blob)
	if err != nil {
		return nil, err
	}
	switch {
	case info.SealKeyID == s.key.ID():
		return s.key, nil
	case s.old != nil && info.SealKeyID == s.old.ID():
		return s.old, nil
	case s.old == nil && s.journal != nil && info.SealKeyID == s.journal.FromID:
		return nil, fmt.Errorf("%w: sealed under seal key %q (%s) of the unfinished rotation, which is no longer on the token", ErrKeyNotFound, s.journal.FromLabel, s.journal.FromID)
	default:
		return s.key, nil
	}
}

// Versions lists the stored versions of (kind, id), ascending. A missing
// record gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) Versions(ctx context.Context, kind, id string) ([]uint64, error) {
	if err := validRecord(kind, id); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	return s.versions(kind, id)
}

func (s *Store) versions(kind, id string) ([]uint64, error) {
	entries, err := os.ReadDir(s.recordDir(kind, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("hsmshare: store %s: list %s/%s: %w", s.dir, kind, id, err)
	}
	var vs []uint64
	for _, e := range entries {
		if v, ok := parseVersionFile(e.Name()); ok && e.Type().IsRegular() {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: %s/%s in store %s", ErrNotFound, kind, id, s.dir)
	}
	slices.Sort(vs)
	return vs, nil
}

// Prune removes every version of (kind, id) older than keep. Version keep
// must exist and open successfully, so a bad newer version never costs the
// older good ones; otherwise nothing is removed.
func (s *Store) Prune(ctx context.Context, kind, id string, keep uint64) error {
	if err := validRecord(kind, id); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	m := s.stripe(kind, id)
	m.Lock()
	defer m.Unlock()
	vs, err := s.versions(kind, id)
	if err != nil {
		return err
	}
	if !slices.Contains(vs, keep) {
		return fmt.Errorf("%w: cannot prune %s/%s to version %d, which does not exist", ErrNotFound, kind, id, keep)
	}
	pt, err := s.read(ctx, kind, id, keep)
	if err != nil {
		return fmt.Errorf("hsmshare: prune %s/%s: version %d to keep does not open, nothing removed: %w", kind, id, keep, err)
	}
	wipe(pt)
	rdir := s.recordDir(kind, id)
	removed := false
	for _, v := range vs {
		if v >= keep {
			break
		}
		if err := removeSealed(filepath.Join(rdir, versionFile(v))); err != nil {
			return fmt.Errorf("hsmshare: store %s: prune %s/%s version %d: %w", s.dir, kind, id, v, err)
		}
		removed = true
	}
	if removed {
		return syncDir(rdir)
	}
	return nil
}

// blobSealKeyID returns the seal-key ID a stored blob names.
func (s *Store) blobSealKeyID(kind, id string, v uint64) (string, error) {
	path := filepath.Join(s.recordDir(kind, id), versionFile(v))
	blob, err := readBlobFile(path)
	if err != nil {
		return "", fmt.Errorf("hsmshare: store %s: read %s: %w", s.dir, path, err)
	}
	info, err := InspectBlob(blob)
	if err != nil {
		return "", fmt.Errorf("hsmshare: store %s: file %s: %w", s.dir, path, err)
	}
	return info.SealKeyID, nil
}
