//go:build !unix

package hsmshare

import (
	"errors"
	"os"
)

// tryLock is not implemented outside Unix: a store without a working lock
// could be corrupted by two writers, so opening one fails instead.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("hsmshare: store locking is implemented only on Unix systems")
}

func unlock(*os.File) error { return nil }
