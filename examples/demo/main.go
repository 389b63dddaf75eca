// Command demo runs a three-site keyquorum committee on this machine and
// checks everything it signs with code that is not keyquorum's.
//
//	go run ./examples/demo -kqnode bin/kqnode      (what `make demo` runs)
//
// Each site is a `kqnode run` process with its own SoftHSM2 token, home
// directory and sealed store, talking to the others over libp2p on
// 127.0.0.1. The demo creates a 2-of-3 key, signs a digest (checked with
// decred's secp256k1 package), a regtest PSBT (checked with btcd's script
// engine), an EIP-1559 transaction (checked with go-ethereum's sender
// recovery) and a GG20 signature from a presignature, then stops one site
// and signs with the other two, stops a second and shows the error naming
// it. It prints how long each step took, removes everything it made (also
// when a step fails or it is interrupted) and exits non-zero if any check
// failed.
//
// With -cold (what `make demo-cold` runs) site c runs with no network
// (kqnode run --offline) and the demo carries every message to or from it
// in bundle files: a 2-of-3 keygen, a batch of GG20 presignatures for
// sites a and c, and three GG20 signatures by a and c, each one file to c
// and one back, showing what c's operator sees before importing the first
// request; then a 2-of-2 key of a and c, whose every signature needs the
// cold HSM (see cold.go).
//
// To finish in minutes it imports Paillier pre-parameter test fixtures
// (testdata/preparams) instead of generating safe primes. Their secrets are
// public: the demo's keys are not secret and must never hold value.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.kqnode, "kqnode", "bin/kqnode", "path of the kqnode binary (make kqnode builds it)")
	flag.StringVar(&o.fixtures, "fixtures", "testdata/preparams", "directory of pre-parameter test fixtures (preparams-NN.json)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (tokens, homes, logs) for inspection")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&o.cold, "cold", false, "the cold-site demo instead (make demo-cold): site c runs without a network, and its messages travel in bundle files")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo FAILED:", err)
		stop()
		os.Exit(1)
	}
}

// options configure a demo run.
type options struct {
	kqnode   string
	fixtures string
	keep     bool
	timeout  time.Duration
	// quiet drops the per-step lines (tests keep the summary).
	quiet bool
	// cold runs the cold-site demo (cold.go).
	cold bool
}

// run runs the demo and returns the first failed check.
func run(ctx context.Context, o options, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	d, err := newDemo(o, out)
	if err != nil {
		return err
	}
	if o.cold {
		err = d.runCold(ctx)
	} else {
		err = d.run(ctx)
	}
	if err != nil {
		d.printLogs()
	}
	// Stop the sites and remove the working directory whatever happened.
	if cerr := d.cleanup(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("clean-up: %w", cerr))
	}
	d.summary(err)
	return err
}
