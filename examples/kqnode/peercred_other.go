//go:build !linux

package main

import (
	"errors"
	"net"
)

// peerCredAvailable says whether peerCred works here: on Linux only, so
// elsewhere run needs --api 127.0.0.1:PORT.
const peerCredAvailable = false

// peerCred is implemented on Linux (SO_PEERCRED) only.
func peerCred(c net.Conn) (uid, pid int, err error) {
	return -1, 0, errors.New("the peer of a Unix socket can be checked on Linux only (SO_PEERCRED); use --api 127.0.0.1:PORT")
}
