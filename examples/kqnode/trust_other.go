//go:build !unix

package main

import (
	"errors"
	"net"
	"os"
)

// errNoTrustChecks is returned where kqnode cannot check who owns and may
// change a file: it runs its sites on Unix systems only.
var errNoTrustChecks = errors.New("kqnode checks the owner and mode of the files a site trusts, which needs a Unix system")

func openTrusted(path string, p trustPolicy) (*os.File, error) { return nil, errNoTrustChecks }
func readTrusted(path string, p trustPolicy, limit int64) ([]byte, error) {
	return nil, errNoTrustChecks
}
func checkTrusted(path string, p trustPolicy) error { return errNoTrustChecks }
func checkExistingParents(abs, of string) error     { return errNoTrustChecks }
func checkModule(path string) error                 { return errNoTrustChecks }

func listenUnix(path string) (net.Listener, error) { return nil, errNoTrustChecks }
