package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Store is a directory of sealed records, each identified by kind and ID
// and kept in numbered versions. Every record is sealed under a [SealKey]
// before it reaches the disk and bound to (kind, ID, party, version), so a
// file copied or renamed to another record fails to open with [ErrTampered].
// Writes are atomic and durable (temp file, fsync, rename, fsync of the
// directory). An open Store holds an exclusive lock on the directory.
//
// Store satisfies the tss.Store interface. It is safe for concurrent use.
type Store struct {
	dir   string
	party string
	lockF *os.File

	// mu is read-locked by record operations and write-locked by Rotate
	// and Close.
	mu      sync.RWMutex
	key     *SealKey // seals new blobs
	old     *SealKey // during an unfinished rotation: the key rotated away from (may be nil if it is gone)
	journal *rotationJournal
	closed  bool

	// stripes serialize writers of the same record (Put, Prune, Delete).
	stripes [64]sync.Mutex

	// ledgers caches the handles of this store's ledgers by full name.
	ledgerMu sync.Mutex
	ledgers  map[string]*Ledger

	hooks storeHooks
}

// storeHooks let tests stop the store at chosen points; nil in production.
type storeHooks struct {
	// afterTempSync runs after a temp file is written and synced, before
	// it is renamed into place.
	afterTempSync func(tmpPath string)
	// rotate runs at each step of Rotate; an error aborts the rotation
	// right there, as a crash would.
	rotate func(step string, n int) error
}

// OpenStore opens (creating it if needed) the store in dir for party,
// sealing with key. It takes an exclusive lock on the directory and fails
// with [ErrStoreLocked] if another [Store], in this or another process, holds
// it. Temp files left by a crash are removed. If a seal-key rotation was
// interrupted, the store finds the rotation's other key by label on key's
// token, so every record stays readable; call Rotate again to finish.
func OpenStore(dir string, key *SealKey, party string) (*Store, error) {
	if key == nil {
		return nil, errors.New("hsmshare: OpenStore: nil seal key")
	}
	if err := key.usable(); err != nil {
		return nil, err
	}
	if err := ValidPartyID(party); err != nil {
		return nil, fmt.Errorf("hsmshare: OpenStore %s: %w", dir, err)
	}
	if err := mkdirAllDurable(dir); err != nil {
		return nil, fmt.Errorf("hsmshare: create store directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: store directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("hsmshare: store path %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("hsmshare: store directory %s has mode %#o; it must be private to its owner (chmod 700 %s)", dir, st.Mode().Perm(), dir)
	}
	s := &Store{dir: dir, party: party}
	if err := s.lock(); err != nil {
		return nil, err
	}
	if err := s.openLocked(key); err != nil {
		_ = unlock(s.lockF)
		_ = s.lockF.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openLocked(key *SealKey) error {
	if err := mkdirDurable(filepath.Join(s.dir, recordsDir)); err != nil {
		return err
	}
	if err := s.cleanTemps(); err != nil {
		return err
	}
	j, err := s.readJournal()
	if err != nil {
		return err
	}
	s.key = key
	if j != nil {
		if err := s.resumeKeys(key, j); err != nil {
			return err
		}
	} else if err := s.checkKeyInfo(key); err != nil {
		return err
	}
	if err := s.key.acquire(); err != nil {
		return err
	}
	if s.old != nil {
		if err := s.old.acquire(); err != nil {
			s.key.release()
			return err
		}
	}
	return nil
}

// resumeKeys sets key and old for an unfinished rotation described by j.
func (s *Store) resumeKeys(given *SealKey, j *rotationJournal) error {
	ctx := context.Background()
	s.journal = j
	switch given.ID() {
	case j.ToID:
		s.key = given
		old, err := given.tok.SealKey(ctx, j.FromLabel)
		switch {
		case errors.Is(err, ErrKeyNotFound):
			s.old = nil // records still under it report ErrKeyNotFound
		case err != nil:
			return fmt.Errorf("hsmshare: store %s: load seal key %q of the unfinished rotation: %w", s.dir, j.FromLabel, err)
		case old.ID() != j.FromID:
			return fmt.Errorf("hsmshare: store %s: seal key %q now has ID %s, but the unfinished rotation is from ID %s", s.dir, j.FromLabel, old.ID(), j.FromID)
		default:
			s.old = old
		}
	case j.FromID:
		to, err := given.tok.SealKey(ctx, j.ToLabel)
		if err != nil {
			return fmt.Errorf("hsmshare: store %s: an unfinished rotation re-sealed records under seal key %q, which cannot be loaded: %w", s.dir, j.ToLabel, err)
		}
		if to.ID() != j.ToID {
			return fmt.Errorf("hsmshare: store %s: seal key %q now has ID %s, but the unfinished rotation is to ID %s", s.dir, j.ToLabel, to.ID(), j.ToID)
		}
		s.key, s.old = to, given
	default:
		return fmt.Errorf("hsmshare: store %s is in the middle of a rotation from seal key %q (%s) to %q (%s); open it with one of those keys, not %s",
			s.dir, j.FromLabel, j.FromID, j.ToLabel, j.ToID, given.ID())
	}
	return nil
}

// Dir returns the store directory.
func (s *Store) Dir() string { return s.dir }

// Party returns the party ID every record is bound to.
func (s *Store) Party() string { return s.party }

// SealKey returns the key new records are sealed with.
func (s *Store) SealKey() *SealKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.key
}

// RotationPending reports whether a seal-key rotation was started and has
// not finished; call Rotate with the new key to finish it.
func (s *Store) RotationPending() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.journal != nil
}

// Close releases the store's lock. The seal key and token stay open.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.key.release()
	if s.old != nil {
		s.old.release()
	}
	err := unlock(s.lockF)
	if cerr := s.lockF.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("hsmshare: close store %s: %w", s.dir, err)
	}
	return nil
}
