package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Delete removes every version of (kind, id), durably. A missing record
// gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) Delete(ctx context.Context, kind, id string) error {
	if err := validRecord(kind, id); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	m := s.stripe(kind, id)
	m.Lock()
	found, err := s.removeRecord(kind, id)
	m.Unlock()
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s/%s in store %s", ErrNotFound, kind, id, s.dir)
	}
	return syncDir(s.kindDir(kind))
}

// DeleteMany removes every version of each id of kind and syncs the kind
// directory once at the end. Ids that do not exist are skipped, so an
// interrupted DeleteMany can simply be repeated.
func (s *Store) DeleteMany(ctx context.Context, kind string, ids []string) error {
	if err := ValidName(kind); err != nil {
		return fmt.Errorf("hsmshare: store kind: %w", err)
	}
	for _, id := range ids {
		if err := validRecord(kind, id); err != nil {
			return err
		}
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	var errs []error
	removed := false
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		m := s.stripe(kind, id)
		m.Lock()
		found, err := s.removeRecord(kind, id)
		m.Unlock()
		if err != nil {
			errs = append(errs, err)
			break
		}
		removed = removed || found
	}
	if removed {
		if err := syncDir(s.kindDir(kind)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeRecord deletes a record's files and directory (no sync).
func (s *Store) removeRecord(kind, id string) (bool, error) {
	rdir := s.recordDir(kind, id)
	entries, err := os.ReadDir(rdir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("hsmshare: store %s: delete %s/%s: %w", s.dir, kind, id, err)
	}
	found := false
	for _, e := range entries {
		_, isVersion := parseVersionFile(e.Name())
		if !isVersion && !strings.HasPrefix(e.Name(), tempPrefix) {
			continue // not ours; Remove of the directory will report it
		}
		found = found || isVersion
		if err := removeSealed(filepath.Join(rdir, e.Name())); err != nil {
			return found, fmt.Errorf("hsmshare: store %s: delete %s/%s: %w", s.dir, kind, id, err)
		}
	}
	if err := os.Remove(rdir); err != nil {
		return found, fmt.Errorf("hsmshare: store %s: delete %s/%s (unexpected files in %s?): %w", s.dir, kind, id, rdir, err)
	}
	return found, nil
}

// List returns the ids of kind that have at least one version, sorted. An
// unknown kind has no ids.
func (s *Store) List(ctx context.Context, kind string) ([]string, error) {
	if err := ValidName(kind); err != nil {
		return nil, fmt.Errorf("hsmshare: store kind: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	return s.list(kind)
}

func (s *Store) list(kind string) ([]string, error) {
	entries, err := os.ReadDir(s.kindDir(kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: list %s: %w", s.dir, kind, err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || ValidName(e.Name()) != nil {
			continue
		}
		if _, err := s.versions(kind, e.Name()); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil // os.ReadDir sorts by name
}

// kinds lists the kind directories of the store.
func (s *Store) kinds() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, recordsDir))
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store %s: %w", s.dir, err)
	}
	var ks []string
	for _, e := range entries {
		if e.IsDir() && ValidName(e.Name()) == nil {
			ks = append(ks, e.Name())
		}
	}
	return ks, nil
}

// eachVersion calls f for every stored version, in a fixed order.
func (s *Store) eachVersion(f func(kind, id string, v uint64) error) error {
	kinds, err := s.kinds()
	if err != nil {
		return err
	}
	for _, kind := range kinds {
		ids, err := s.list(kind)
		if err != nil {
			return err
		}
		for _, id := range ids {
			vs, err := s.versions(kind, id)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if err := f(kind, id, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
