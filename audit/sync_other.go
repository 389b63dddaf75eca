//go:build !linux

package audit

import "os"

// datasync makes f's written data durable (fsync; on Darwin Go's Sync
// uses F_FULLFSYNC).
func datasync(f *os.File) error { return f.Sync() }
