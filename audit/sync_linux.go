package audit

import (
	"os"
	"syscall"
)

// datasync makes f's written data durable. fdatasync(2) skips metadata
// that reading the data back does not need (timestamps), which makes it
// cheaper than fsync for an append-only file.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
