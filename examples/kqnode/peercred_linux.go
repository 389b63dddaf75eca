package main

import (
	"fmt"
	"net"
	"syscall"
)

// peerCredAvailable says whether peerCred works here.
const peerCredAvailable = true

// peerCred returns the uid and pid of the process at the other end of a
// Unix socket connection, as the kernel recorded them when it connected
// (SO_PEERCRED, socket(7)).
func peerCred(c net.Conn) (uid, pid int, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, 0, fmt.Errorf("peer credentials of a %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if cerr != nil {
		return -1, 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return int(cred.Uid), int(cred.Pid), nil
}
