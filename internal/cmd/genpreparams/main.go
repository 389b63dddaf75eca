// Command genpreparams writes Paillier and ring-Pedersen pre-parameters for tests.
//
// Generating safe primes takes seconds to minutes per party, so tests load the
// sets this command wrote into testdata/preparams instead of making their own.
// The files are test fixtures only: their secrets are public, so no key made
// from them may ever hold value.
//
//	go run ./internal/cmd/genpreparams -n 10 -out testdata/preparams
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
)

func main() {
	n := flag.Int("n", 10, "number of pre-parameter sets to write")
	out := flag.String("out", "testdata/preparams", "output directory")
	timeout := flag.Duration("timeout", 10*time.Minute, "time limit for each set")
	flag.Parse()
	if err := run(*n, *out, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "genpreparams:", err)
		os.Exit(1)
	}
}

func run(n int, out string, timeout time.Duration) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		path := filepath.Join(out, fmt.Sprintf("preparams-%02d.json", i))
		if _, err := os.Stat(path); err == nil {
			fmt.Printf("%s exists, kept\n", path)
			continue
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		pp, err := keygen.GeneratePreParamsWithContext(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("set %d: %w", i, err)
		}
		if !pp.ValidateWithProof() {
			return fmt.Errorf("set %d: generated pre-parameters are incomplete", i)
		}
		b, err := json.MarshalIndent(pp, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s written in %s\n", path, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
