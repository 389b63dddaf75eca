package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names inside a log directory (FORMAT.md).
const (
	lockName        = "lock"
	entriesName     = "entries"
	checkpointsName = "checkpoints"
	indexName       = "index"
	hashesName      = "hashes"
)

// prepareDir creates dir (mode 0700) if it is missing, syncing the parent
// so the new directory survives a crash, and checks that it is a private
// directory of the current user and not a symbolic link.
func prepareDir(dir string, create bool) error {
	if create {
		err := os.Mkdir(dir, 0o700)
		switch {
		case err == nil:
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return fmt.Errorf("audit: sync parent of %s: %w", dir, err)
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return fmt.Errorf("audit: create directory %s: %w", dir, err)
		}
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("audit: directory %s: %w", dir, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link; give the real directory", ErrInsecurePath, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("audit: %s is not a directory", dir)
	}
	return checkPrivate(dir, st, 0o077, "chmod 700")
}

// checkPrivate refuses a file or directory that other users may access or
// that another user owns.
func checkPrivate(path string, st fs.FileInfo, forbidden fs.FileMode, fix string) error {
	if perm := st.Mode().Perm(); perm&forbidden != 0 {
		return fmt.Errorf("%w: %s has mode %#o; it must be private to its owner (%s %s)", ErrInsecurePath, path, perm, fix, path)
	}
	if uid, ok := ownerUID(st); ok && uid != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by uid %d running this site", ErrInsecurePath, path, uid, os.Geteuid())
	}
	return nil
}

// How openFile opens a file.
type openMode int

const (
	openWrite  openMode = iota // read-write, created if missing, must be private
	openRead                   // read-only, must be private
	openVerify                 // read-only, any permissions (a copy made for an audit)
)

// openFile opens dir/name without following a symbolic link and checks
// that it is a regular file (and, unless mode is openVerify, private to
// its owner). openWrite creates it with mode 0600.
func openFile(dir, name string, mode openMode) (*os.File, error) {
	path := filepath.Join(dir, name)
	flag := os.O_RDONLY
	if mode == openWrite {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(path, flag|oNoFollow, 0o600)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, fmt.Errorf("%w: %s is a symbolic link; the log's files must be regular files", ErrInsecurePath, path)
		}
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInsecurePath, path)
	}
	if mode != openVerify {
		if err := checkPrivate(path, st, 0o077, "chmod 600"); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// lockDir takes the writer lock of a log or witness directory.
func lockDir(dir string) (*os.File, error) {
	f, err := openFile(dir, lockName, openWrite)
	if err != nil {
		return nil, err
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: lock %s: %w", dir, err)
	}
	if held {
		pid, _ := os.ReadFile(filepath.Join(dir, lockName))
		f.Close()
		holder := "another writer"
		if p := strings.TrimSpace(string(pid)); p != "" && len(p) < 20 {
			holder = "process " + p
		}
		return nil, fmt.Errorf("%w: %s is open for writing by %s; close it there first (one writer per log)", ErrLocked, dir, holder)
	}
	// The PID is informational, for the error above.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	err := unlock(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
