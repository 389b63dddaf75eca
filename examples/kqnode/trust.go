package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"strings"
)

// What the site trusts on its own host, and how kqnode checks it before it
// reads it.
//
// Another unprivileged user of the host must not be able to change what
// the site trusts, nor read its secrets. kqnode therefore refuses, with an
// unsafeFileError that names the file and the command that fixes it:
//
//   - the home directory, config.json, store/, the PIN file, the peer
//     file, the API endpoint file (api.json) and the PKCS#11 module when
//     they are not owned by the user kqnode runs as (the peer file and the
//     module may also be root's), when their group or others may write
//     them, or, for store/, the PIN file and api.json, read them;
//   - any of them but the module that is a symbolic link: each is opened
//     with O_NOFOLLOW and the checks are made on the opened file (fstat),
//     so what is read is what was checked;
//   - a directory on the way to any of them (the parents of the home, of
//     the PIN file, of the peer file, of the module) that another user
//     could use to swap what it holds: owned by someone other than root or
//     kqnode's user, or writable by group or others without the sticky
//     bit. A symbolic link on the way is followed only when it is root's
//     or the user's own, and its target is checked the same way.
//
// Because no other user can then replace anything on those paths, the
// files that other packages open again by path afterwards (hsmshare reads
// the PIN file, loads the module and opens store/) are the ones checked.

// errUnsafeFile marks a file or directory that kqnode refuses to trust.
var errUnsafeFile = errors.New("unsafe file")

// unsafeFileError says which file is unsafe, why, and how to fix it.
type unsafeFileError struct {
	// What names the file's role ("config file", "PIN file", ...).
	What string
	// Path is the file's path.
	Path string
	// Problem says what is wrong, e.g. "is writable by its group".
	Problem string
	// Mode and Owner describe the file as found, when it was found.
	Mode  fs.FileMode
	Owner int
	// Fix is the command (or action) that makes it safe.
	Fix string
}

func (e *unsafeFileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", e.What, e.Path, e.Problem)
	if e.Owner >= 0 {
		fmt.Fprintf(&b, " (mode %04o, owner %s)", uint32(e.Mode.Perm())|stickyBit(e.Mode), userName(e.Owner))
	}
	fmt.Fprintf(&b, ": another user of this host could use it against the site, so kqnode refuses it; fix: %s", e.Fix)
	return b.String()
}

func (e *unsafeFileError) Unwrap() error { return errUnsafeFile }

func stickyBit(m fs.FileMode) uint32 {
	if m&fs.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// userName describes a uid as "uid 0 (root)", or "uid N" when it has no name.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// trustPolicy is what one kind of file must satisfy.
type trustPolicy struct {
	what   string // the file's role, for errors
	dir    bool   // a directory, else a regular file
	secret bool   // closed to group and others for reading too
	rootOK bool   // may be owned by root as well as by kqnode's user
	// chmodFix is the chmod that makes the file safe: "chmod 600" when
	// empty ("chmod 700" for a directory).
	chmodFix string
}

var (
	homePolicy       = trustPolicy{what: "home directory", dir: true}
	storePolicy      = trustPolicy{what: "store directory", dir: true, secret: true}
	configPolicy     = trustPolicy{what: "config file"}
	apiPolicy        = trustPolicy{what: "API endpoint file", secret: true}
	pinPolicy        = trustPolicy{what: "PIN file", secret: true}
	peersPolicy      = trustPolicy{what: "peer file", rootOK: true}
	policyFilePolicy = trustPolicy{what: "policy file", rootOK: true}
	modulePolicy     = trustPolicy{what: "PKCS#11 module", rootOK: true, chmodFix: "chmod go-w"}
)

// maxSymlinks bounds the symbolic links followed on the way to one file,
// like the kernel's limit for one lookup.
const maxSymlinks = 40

// maxConfigSize bounds config.json.
const maxConfigSize = 1 << 20

// chmod returns the command that makes a file of this policy safe.
func (p trustPolicy) chmod(path string) string {
	if p.chmodFix != "" {
		return p.chmodFix + " " + path
	}
	if p.dir {
		return "chmod 700 " + path
	}
	return "chmod 600 " + path
}

// check checks a file's type, owner and mode against p; euid is the
// user kqnode runs as.
func (p trustPolicy) check(path string, mode fs.FileMode, uid, euid int) error {
	e := &unsafeFileError{What: p.what, Path: path, Mode: mode, Owner: uid}
	switch {
	case p.dir && !mode.IsDir():
		e.Problem, e.Fix = "is not a directory", "give the path of a directory"
		return e
	case !p.dir && !mode.IsRegular():
		e.Problem, e.Fix = "is not a regular file", "give the path of a regular file"
		return e
	}
	if uid != euid && !(p.rootOK && uid == 0) {
		e.Problem = fmt.Sprintf("is owned by %s, not by %s that runs kqnode", userName(uid), userName(euid))
		e.Fix = fmt.Sprintf("chown %d %s, or run kqnode as %s", euid, path, userName(uid))
		return e
	}
	perm := mode.Perm()
	if w := whom(perm, 0o020, 0o002); w != "" {
		e.Problem, e.Fix = "is writable by "+w, p.chmod(path)
		return e
	}
	if p.secret {
		if r := whom(perm, 0o040, 0o004); r != "" {
			e.Problem, e.Fix = "is readable by "+r, p.chmod(path)
			return e
		}
	}
	return nil
}

// whom names who of group and others has the bits g and o in perm.
func whom(perm fs.FileMode, g, o fs.FileMode) string {
	switch {
	case perm&g != 0 && perm&o != 0:
		return "its group and by others"
	case perm&g != 0:
		return "its group"
	case perm&o != 0:
		return "others"
	}
	return ""
}

// checkParent checks one directory on the way to a trusted file (of
// names it): the directory must be root's or kqnode's user's, and closed
// to writing by group and others unless it has the sticky bit (then they
// cannot rename or remove what they do not own, and what is below it is
// checked on its own).
func checkParent(path, of string, mode fs.FileMode, uid, euid int) error {
	e := &unsafeFileError{What: "directory", Path: path, Mode: mode, Owner: uid}
	switch {
	case !mode.IsDir():
		e.Problem, e.Fix = "is not a directory, and is on the way to "+of, "give a path made of directories"
		return e
	case uid != euid && uid != 0:
		e.Problem = fmt.Sprintf("is owned by %s, who could replace what it holds, and is on the way to %s", userName(uid), of)
		e.Fix = fmt.Sprintf("chown root %s, or keep the site's files under directories of root or %s only", path, userName(euid))
		return e
	}
	if w := whom(mode.Perm(), 0o020, 0o002); w != "" && mode&fs.ModeSticky == 0 {
		e.Problem = fmt.Sprintf("is writable by %s without the sticky bit, and is on the way to %s", w, of)
		e.Fix = fmt.Sprintf("chmod go-w %s (or chmod +t %s, the sticky bit of /tmp), or keep the site's files elsewhere", path, path)
		return e
	}
	return nil
}
