// Command genkeygen writes tss-lib v2.0.2 keygen outputs for test committees.
//
// It runs the real tss-lib ECDSA key generation in-process for a 2-of-3 and a
// 3-of-5 committee, with internal/rawtss (one tss-lib party
// per goroutine, messages routed over buffered channels). The Paillier and ring-Pedersen
// pre-parameters come from the fixtures in testdata/preparams (party i of a
// committee uses preparams-0i.json), so no safe primes are generated. The
// keygen proofs (DLN, Paillier-Blum modulus, no-small-factor) are created and
// verified as in production: the command never disables them.
//
// Output layout, one JSON file per party in tss-lib's LocalPartySaveData
// format, in the order of the sorted party keys:
//
//	testdata/keygen/2-of-3/party-0.json ... party-2.json
//	testdata/keygen/3-of-5/party-0.json ... party-4.json
//
// The party keys (share IDs) are 1..n. Regenerate with:
//
//	go run ./internal/cmd/genkeygen -preparams testdata/preparams -out testdata/keygen
//
// Existing committee directories are kept unless -force is given. The files
// are test fixtures only: their secrets are public, so no key made from them
// may ever hold value.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// committee is one fixture set: M signers required out of N parties.
type committee struct{ m, n int }

func (c committee) dir() string { return fmt.Sprintf("%d-of-%d", c.m, c.n) }

func main() {
	preDir := flag.String("preparams", "testdata/preparams", "directory with preparams-NN.json files")
	out := flag.String("out", "testdata/keygen", "output directory")
	force := flag.Bool("force", false, "overwrite existing committee directories")
	timeout := flag.Duration("timeout", 10*time.Minute, "time limit for each keygen run")
	flag.Parse()
	for _, c := range []committee{{2, 3}, {3, 5}} {
		if err := run(c, *preDir, *out, *force, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "genkeygen: %s: %v\n", c.dir(), err)
			os.Exit(1)
		}
	}
}

func run(c committee, preDir, out string, force bool, timeout time.Duration) error {
	dir := filepath.Join(out, c.dir())
	if _, err := os.Stat(dir); err == nil && !force {
		fmt.Printf("%s exists, kept (use -force to regenerate)\n", dir)
		return nil
	}
	pre := make([]keygen.LocalPreParams, c.n)
	for i := range pre {
		path := filepath.Join(preDir, fmt.Sprintf("preparams-%02d.json", i))
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read pre-parameters: %w (generate them with ./internal/cmd/genpreparams)", err)
		}
		if err := json.Unmarshal(b, &pre[i]); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		if !pre[i].ValidateWithProof() {
			return fmt.Errorf("%s: incomplete pre-parameters", path)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	saves, err := rawtss.Keygen(ctx, pre, c.m-1)
	if err != nil {
		return err
	}
	if err := check(c, saves); err != nil {
		return fmt.Errorf("keygen output failed its self-check: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, s := range saves {
		b, err := json.MarshalIndent(s, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("party-%d.json", i)), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%s written in %s\n", dir, time.Since(start).Round(time.Millisecond))
	return nil
}

// check verifies that every party agrees on the public data and that any
// M shares interpolate to the public key.
func check(c committee, saves []*keygen.LocalPartySaveData) error {
	ec := tss.S256()
	q := ec.Params().N
	for i, s := range saves {
		if s == nil {
			return fmt.Errorf("party %d produced no output", i)
		}
		if !s.ECDSAPub.Equals(saves[0].ECDSAPub) {
			return fmt.Errorf("party %d disagrees on the public key", i)
		}
		if !crypto.ScalarBaseMult(ec, s.Xi).Equals(s.BigXj[i]) {
			return fmt.Errorf("party %d: X_i != g^x_i", i)
		}
	}
	// Interpolate x at 0 from the first M shares.
	x := new(big.Int)
	mod := common.ModInt(q)
	for i := 0; i < c.m; i++ {
		lambda := big.NewInt(1)
		for j := 0; j < c.m; j++ {
			if i == j {
				continue
			}
			kj, ki := saves[j].ShareID, saves[i].ShareID
			lambda = mod.Mul(lambda, mod.Mul(kj, mod.ModInverse(new(big.Int).Sub(kj, ki))))
		}
		x = mod.Add(x, mod.Mul(lambda, saves[i].Xi))
	}
	if !crypto.ScalarBaseMult(ec, x).Equals(saves[0].ECDSAPub) {
		return errors.New("interpolated secret does not match the public key")
	}
	return nil
}
