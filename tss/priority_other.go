//go:build !linux

package tss

import "os/exec"

// startLowPriority starts cmd. Outside Linux the worker runs at the
// priority of this process; lowering it there (nice(1), a service
// manager's setting) is left to the operator.
func startLowPriority(cmd *exec.Cmd) error { return cmd.Start() }
