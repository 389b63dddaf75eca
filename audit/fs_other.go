//go:build !unix

package audit

import (
	"io/fs"
	"os"
)

const oNoFollow = 0

func isSymlinkErr(error) bool { return false }

func ownerUID(fs.FileInfo) (int, bool) { return 0, false }

func tryLock(*os.File) (bool, error) { return false, nil }

func unlock(*os.File) error { return nil }
