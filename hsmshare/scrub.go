package hsmshare

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// removeSealed deletes a file of sealed data: it overwrites the file's
// bytes with zeros and syncs them before it unlinks the file, so that a
// deleted record (a used-up presignature batch, an erased old share) does
// not linger in free disk blocks that a later copy of the disk would carry.
//
// This is best effort and says so in FORMAT.md: copy-on-write filesystems
// (btrfs, ZFS), filesystems journalling data, snapshots and SSD wear
// levelling keep old blocks where no file operation reaches them. What
// protects a deleted record in every case is the seal (it opens only with
// the HSM) and, for presignatures, the HSM-held ledger.
//
// A file that does not exist gives an error satisfying
// errors.Is(err, fs.ErrNotExist). Anything but a regular file is unlinked
// without being written to.
func removeSealed(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() && fi.Size() > 0 {
		if err := zeroFile(path, fi.Size()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("overwrite %s before deleting it: %w", path, err)
		}
	}
	return os.Remove(path)
}

func zeroFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	zeros := make([]byte, min(size, 64<<10))
	for off := int64(0); off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			f.Close()
			return err
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
