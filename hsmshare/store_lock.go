package hsmshare

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// lock takes the exclusive lock on the store directory (an flock on
// <dir>/lock, held until Close) and writes this process's PID into the lock
// file, so that another opener's ErrStoreLocked can name the holder.
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

// stripe returns the mutex that serializes writers of (kind, id): records
// hash onto a fixed set of mutexes, so unrelated records rarely wait for
// each other and the set never grows.
func (s *Store) stripe(kind, id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(kind))
	h.Write([]byte{'/'})
	h.Write([]byte(id))
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}
