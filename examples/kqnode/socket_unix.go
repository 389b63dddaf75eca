//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket address holds.
var maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// listenUnix listens on the Unix socket path, which lies in the checked
// home: a stale socket a crash left there is removed first, and the socket
// is created under umask 0177 (mode 0600), so that no other user can
// connect to it even for an instant.
func listenUnix(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control API socket %s: the path is longer than the %d bytes a Unix socket address holds; use a shorter --home, or --api 127.0.0.1:0 for TCP", path, maxSocketPath)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// The umask is the process's: other goroutines creating files at this
	// instant get stricter modes at worst.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control API socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err == nil && (fi.Mode()&fs.ModeSocket == 0 || ownerOf(fi) != os.Geteuid() || fi.Mode().Perm()&0o077 != 0) {
		err = fmt.Errorf("is %v, owner uid %d, after it was made", fi.Mode(), ownerOf(fi))
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control API socket %s: %w", path, err)
	}
	return ln, nil
}

// removeStaleSocket removes the socket at path if it is kqnode's user's and
// nothing listens on it any more (a crashed run left it). Anything else
// there is an error, and is left alone.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control API socket %s: %w", path, err)
	}
	e := &unsafeFileError{What: "control API socket", Path: path, Mode: fi.Mode(), Owner: ownerOf(fi)}
	if fi.Mode()&fs.ModeSocket == 0 {
		e.Problem, e.Fix = "exists and is not a socket", "remove it (rm "+path+") if nothing needs it"
		return e
	}
	if e.Owner != os.Geteuid() {
		e.Problem = fmt.Sprintf("is owned by %s, not by %s that runs kqnode", userName(e.Owner), userName(os.Geteuid()))
		e.Fix = "remove it (rm " + path + ") once you know who made it"
		return e
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: another process serves %s; stop it first", errAPIInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control API socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the stale control API socket %s: %w", path, err)
	}
	return nil
}
