package hsmshare

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// validRecord checks a record's kind and ID against the naming rules
// (ValidName), which also keep them single path elements.
func validRecord(kind, id string) error {
	if err := ValidName(kind); err != nil {
		return fmt.Errorf("hsmshare: store kind: %w", err)
	}
	if err := ValidName(id); err != nil {
		return fmt.Errorf("hsmshare: store id: %w", err)
	}
	return nil
}

// kindDir is records/<kind>, the directory of every record of kind.
func (s *Store) kindDir(kind string) string { return filepath.Join(s.dir, recordsDir, kind) }

// recordDir is records/<kind>/<id>, the directory of one record's versions.
func (s *Store) recordDir(kind, id string) string { return filepath.Join(s.dir, recordsDir, kind, id) }

// versionFile is the file name of version v: the number zero-padded to
// versionWidth digits, so that names sort by version, and blobSuffix.
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

// syncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
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
