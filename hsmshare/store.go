package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Store layout (see FORMAT.md):
//
//	<dir>/                                      0700
//	  lock                                      0600, flock'd while a Store is open
//	  sealkey.json                              0600, label and ID of the current seal key
//	  rotation.json                             0600, only during a seal-key rotation
//	  records/<kind>/<id>/<version>.blob        0600 in 0700 directories
//	  records/<kind>/<id>/.tmp-*                a write in progress (removed on open)
const (
	lockName     = "lock"
	journalName  = "rotation.json"
	keyInfoName  = "sealkey.json"
	recordsDir   = "records"
	tempPrefix   = ".tmp-"
	blobSuffix   = ".blob"
	versionWidth = 20 // digits of the largest uint64
	// maxBlobSize bounds what is read from one file: the largest blob is
	// MaxPlaintextSize plus well under 1 KiB of header, IV, padding and MAC.
	maxBlobSize = MaxPlaintextSize + 1024
)

// Store is a directory of sealed records, each identified by kind and ID
// and kept in numbered versions. Every record is sealed under a SealKey
// before it reaches the disk and bound to (kind, ID, party, version), so a
// file copied or renamed to another record fails to open with ErrTampered.
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
// with ErrStoreLocked if another Store, in this or another process, holds
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

func (s *Store) lock() error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("hsmshare: open store lock: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("hsmshare: lock store %s: %w", s.dir, err)
	}
	if held {
		pid, _ := os.ReadFile(filepath.Join(s.dir, lockName))
		f.Close()
		holder := "another Store"
		if p := strings.TrimSpace(string(pid)); p != "" && len(p) < 20 {
			holder = "process " + p
		}
		return fmt.Errorf("%w: %s is locked by %s; close that store first (one writer per store)", ErrStoreLocked, s.dir, holder)
	}
	// The PID is informational, for the error above.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lockF = f
	return nil
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

// cleanTemps removes temp files of interrupted writes and record
// directories left empty. Only a lock holder may call it.
func (s *Store) cleanTemps() error {
	root := filepath.Join(s.dir, recordsDir)
	kinds, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("hsmshare: read store %s: %w", s.dir, err)
	}
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		ids, err := os.ReadDir(filepath.Join(root, k.Name()))
		if err != nil {
			return fmt.Errorf("hsmshare: read store %s: %w", s.dir, err)
		}
		for _, id := range ids {
			if !id.IsDir() {
				continue
			}
			rdir := filepath.Join(root, k.Name(), id.Name())
			files, err := os.ReadDir(rdir)
			if err != nil {
				return fmt.Errorf("hsmshare: read store %s: %w", s.dir, err)
			}
			left := len(files)
			for _, f := range files {
				if strings.HasPrefix(f.Name(), tempPrefix) {
					if err := removeSealed(filepath.Join(rdir, f.Name())); err != nil {
						return fmt.Errorf("hsmshare: remove stale temp file: %w", err)
					}
					left--
				}
			}
			if left == 0 {
				_ = os.Remove(rdir) // an empty record directory
			}
		}
	}
	files, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("hsmshare: read store %s: %w", s.dir, err)
	}
	for _, f := range files {
		if strings.HasPrefix(f.Name(), tempPrefix) {
			if err := removeSealed(filepath.Join(s.dir, f.Name())); err != nil {
				return fmt.Errorf("hsmshare: remove stale temp file: %w", err)
			}
		}
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

// begin read-locks the store for one operation.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("%w: store %s", ErrClosed, s.dir)
	}
	return nil
}

func (s *Store) end() { s.mu.RUnlock() }

func (s *Store) stripe(kind, id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(kind))
	h.Write([]byte{'/'})
	h.Write([]byte(id))
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}

func validRecord(kind, id string) error {
	if err := ValidName(kind); err != nil {
		return fmt.Errorf("hsmshare: store kind: %w", err)
	}
	if err := ValidName(id); err != nil {
		return fmt.Errorf("hsmshare: store id: %w", err)
	}
	return nil
}

func (s *Store) kindDir(kind string) string { return filepath.Join(s.dir, recordsDir, kind) }

func (s *Store) recordDir(kind, id string) string { return filepath.Join(s.dir, recordsDir, kind, id) }

func versionFile(v uint64) string { return fmt.Sprintf("%0*d%s", versionWidth, v, blobSuffix) }

// parseVersionFile accepts only the canonical file name of a version.
func parseVersionFile(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, blobSuffix)
	if !ok || len(digits) != versionWidth {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || versionFile(v) != name {
		return 0, false
	}
	return v, true
}

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

// mkdirDurable creates dir (mode 0700) if it is missing and syncs its
// parent so the new entry survives a crash.
func mkdirDurable(dir string) error {
	err := os.Mkdir(dir, 0o700)
	switch {
	case err == nil:
		return syncDir(filepath.Dir(dir))
	case errors.Is(err, fs.ErrExist):
		st, serr := os.Stat(dir)
		if serr != nil {
			return serr
		}
		if !st.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	default:
		return err
	}
}

// mkdirAllDurable is os.MkdirAll (mode 0700) that also syncs every
// directory entry it creates, so a store created just before a crash does
// not vanish with the records written into it.
func mkdirAllDurable(dir string) error {
	dir = filepath.Clean(dir)
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAllDurable(parent); err != nil {
			return err
		}
	}
	return mkdirDurable(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
