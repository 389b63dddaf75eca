//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ownerOf returns the uid that owns the file fi describes.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// openTrusted opens path for reading after checking the directories on
// the way to it (checkParents), without following a symbolic link in its
// last component (O_NOFOLLOW), and checks the opened file (fstat) against
// p. A missing file is an error wrapping fs.ErrNotExist.
func openTrusted(path string, p trustPolicy) (*os.File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.what, path, err)
	}
	parent, err := checkParents(abs, p.what+" "+abs)
	if err != nil {
		return nil, err
	}
	real := filepath.Join(parent, filepath.Base(abs))
	flags := os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK // O_NONBLOCK: a FIFO must not block the open
	if p.dir {
		flags |= syscall.O_DIRECTORY
	}
	f, err := os.OpenFile(real, flags, 0)
	if err != nil {
		if fi, lerr := os.Lstat(real); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, &unsafeFileError{What: p.what, Path: abs, Owner: -1,
				Problem: "is a symbolic link (kqnode does not follow links to the files it trusts)",
				Fix:     fmt.Sprintf("replace the link with what it points to (mv \"$(readlink -f %s)\" %s), or give the real path", abs, abs)}
		}
		return nil, fmt.Errorf("%s %s: %w", p.what, abs, err)
	}
	fi, err := f.Stat() // fstat: the file opened, not a name looked up again
	if err == nil {
		err = p.check(abs, fi.Mode(), ownerOf(fi), os.Geteuid())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readTrusted reads a file opened by openTrusted, refusing one larger than
// limit bytes.
func readTrusted(path string, p trustPolicy, limit int64) ([]byte, error) {
	f, err := openTrusted(path, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", p.what, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", p.what, path, limit)
	}
	return b, nil
}

// checkTrusted checks path like openTrusted and closes it again.
func checkTrusted(path string, p trustPolicy) error {
	f, err := openTrusted(path, p)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkParents checks every directory on the way to the absolute path abs
// (not abs itself) and returns the directory holding abs with the
// symbolic links on the way resolved. of names the file for errors.
func checkParents(abs, of string) (string, error) {
	links := 0
	return checkDir(filepath.Dir(abs), of, &links)
}

// checkDir checks the absolute directory path dir and every directory on
// the way to it with checkParent, follows the symbolic links on the way
// that are root's or kqnode's user's (counting them in links), and returns
// dir with the links resolved.
func checkDir(dir, of string, links *int) (string, error) {
	euid := os.Geteuid()
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", err
	}
	if err := checkParent(cur, of, fi.Mode(), ownerOf(fi), euid); err != nil {
		return "", err
	}
	for _, name := range strings.Split(filepath.Clean(dir), "/") {
		if name == "" {
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("%s: directory %s: %w", of, next, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if uid := ownerOf(fi); uid != euid && uid != 0 {
				return "", &unsafeFileError{What: "symbolic link", Path: next, Mode: fi.Mode(), Owner: uid,
					Problem: fmt.Sprintf("is owned by %s, who could point it elsewhere, and is on the way to %s", userName(uid), of),
					Fix:     "give a path without this link (readlink -f shows where it points now)"}
			}
			if *links++; *links > maxSymlinks {
				return "", fmt.Errorf("%s: more than %d symbolic links on the way (a loop?)", of, maxSymlinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", fmt.Errorf("%s: %w", of, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			if cur, err = checkDir(target, of, links); err != nil {
				return "", err
			}
			continue
		}
		if err := checkParent(next, of, fi.Mode(), ownerOf(fi), euid); err != nil {
			return "", err
		}
		cur = next
	}
	return cur, nil
}

// checkExistingParents is checkParents for a path that may not exist yet
// (init creates the home): it checks the directories that exist, from the
// root down to the first missing one.
func checkExistingParents(abs, of string) error {
	dir := filepath.Dir(abs)
	for {
		if _, err := os.Lstat(dir); err == nil {
			links := 0
			_, err := checkDir(dir, of, &links)
			return err
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", of, err)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil
		}
		dir = up
	}
}

// checkModule checks the PKCS#11 module the site loads into its process:
// it and the directories on the way to it must be root's or kqnode's
// user's and closed to writing by others. Unlike the site's own files it
// may be reached through symbolic links (libsofthsm2.so often is one), each
// checked like a directory on the way.
func checkModule(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", modulePolicy.what, path, err)
	}
	of := modulePolicy.what + " " + abs
	for range maxSymlinks {
		parent, err := checkParents(abs, of)
		if err != nil {
			return err
		}
		real := filepath.Join(parent, filepath.Base(abs))
		fi, err := os.Lstat(real)
		if err != nil {
			return fmt.Errorf("%s: %w", of, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return checkTrusted(real, modulePolicy)
		}
		if uid := ownerOf(fi); uid != os.Geteuid() && uid != 0 {
			return &unsafeFileError{What: "symbolic link", Path: real, Mode: fi.Mode(), Owner: uid,
				Problem: fmt.Sprintf("is owned by %s, who could point it elsewhere, and is on the way to %s", userName(uid), of),
				Fix:     "give the module's real path (readlink -f shows it)"}
		}
		target, err := os.Readlink(real)
		if err != nil {
			return fmt.Errorf("%s: %w", of, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(parent, target)
		}
		abs = target
	}
	return fmt.Errorf("%s: more than %d symbolic links on the way (a loop?)", of, maxSymlinks)
}
