package main

import (
	"context"
	"os"

	"github.com/keyquorum/keyquorum"
)

// preParamsWorkerCommand is the command kqnode run generates pre-parameter
// sets with (keyquorum.Config.PreParamsCommand): this binary, as a
// low-priority child. When the binary's path is unknown, sets are made in
// the site's own process, at its priority.
func preParamsWorkerCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, "preparams-worker"}
}

// cmdPreParamsWorker generates one pre-parameter set from the seed on
// standard input and writes it on standard output (keyquorum.RunPreParamsWorker).
// kqnode run starts it; it is not meant to be run by hand.
func cmdPreParamsWorker(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageErrorf("preparams-worker takes no arguments; kqnode run starts it")
	}
	return keyquorum.RunPreParamsWorker(ctx, os.Stdin, e.stdout)
}
