package keyquorum

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss"
)

// PreParams is one set of Paillier pre-parameters (a Paillier key and
// ring-Pedersen parameters made of safe primes) for keygen or resharing,
// made outside the site — for example on a faster machine — and brought in
// with [Node.ImportPreParams]. It holds secrets: it never prints them, and
// Wipe overwrites them.
type PreParams struct {
	pp *keygen.LocalPreParams
}

// maxPreParamsJSON bounds the encoding ParsePreParams reads.
const maxPreParamsJSON = 64 << 10

// ParsePreParams reads a pre-parameter set in the JSON encoding of
// tss-lib's LocalPreParams (the form of the files under testdata/preparams
// and of `go run ./internal/cmd/genpreparams`). It checks that every part
// is present and consistent; the set is checked again when it is imported.
func ParsePreParams(data []byte) (*PreParams, error) {
	if len(data) > maxPreParamsJSON {
		return nil, fmt.Errorf("keyquorum: pre-parameters: %w: %d bytes, at most %d", tss.ErrBadRequest, len(data), maxPreParamsJSON)
	}
	var pp keygen.LocalPreParams
	if err := json.Unmarshal(data, &pp); err != nil {
		return nil, fmt.Errorf("keyquorum: pre-parameters: %w: not a pre-parameter set (tss-lib LocalPreParams JSON)", tss.ErrBadRequest)
	}
	if !pp.ValidateWithProof() {
		wipePreParams(&pp)
		return nil, fmt.Errorf("keyquorum: pre-parameters: %w: the set is incomplete or inconsistent", tss.ErrBadRequest)
	}
	return &PreParams{pp: &pp}, nil
}

// Wipe overwrites the set's secrets (best effort, as for every secret in Go).
func (p *PreParams) Wipe() {
	if p != nil && p.pp != nil {
		wipePreParams(p.pp)
		p.pp = nil
	}
}

// String describes the set without its secrets.
func (p *PreParams) String() string { return "keyquorum.PreParams{[redacted]}" }

// GoString describes the set without its secrets.
func (p *PreParams) GoString() string { return p.String() }

// LogValue keeps the set's secrets out of structured logs.
func (p *PreParams) LogValue() slog.Value { return slog.StringValue(p.String()) }

func wipePreParams(pp *keygen.LocalPreParams) {
	xs := []*big.Int{pp.NTildei, pp.H1i, pp.H2i, pp.Alpha, pp.Beta, pp.P, pp.Q}
	if pp.PaillierSK != nil {
		xs = append(xs, pp.PaillierSK.LambdaN, pp.PaillierSK.PhiN, pp.PaillierSK.P, pp.PaillierSK.Q)
	}
	for _, x := range xs {
		if x != nil {
			clear(x.Bits())
			x.SetInt64(0)
		}
	}
}

// RunPreParamsWorker is the body of a pre-parameter worker program, the
// child process named by [Config.PreParamsCommand]: it reads a 48-byte
// seed from in (the child's standard input), generates one set from it and
// writes it to out (standard output). A program that embeds it calls it
// when started as a worker, for example
//
//	if len(os.Args) > 1 && os.Args[1] == "preparams-worker" {
//		if err := keyquorum.RunPreParamsWorker(ctx, os.Stdin, os.Stdout); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		os.Exit(0)
//	}
//
// and the site is configured with PreParamsCommand set to that program's
// path followed by "preparams-worker". The seed and the set cross the two
// pipes only; the worker writes nothing to disk.
func RunPreParamsWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	return tss.RunPreParamsWorker(ctx, in, out)
}

// MaxGeneratePreParams is the most sets one GeneratePreParams call makes.
const MaxGeneratePreParams = 16

// GeneratePreParams generates count Paillier pre-parameter sets now, one
// after the other (safe primes: 5 to 60 seconds of CPU each), and stores
// them sealed as ready, beside those the background generation keeps at
// its target. progress, if not nil, is called after each set with the
// number made so far. It returns how many sets it made, with ctx's error
// or a generation failure when it stopped early.
func (n *Node) GeneratePreParams(ctx context.Context, count int, progress func(made int)) (int, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return 0, err
	}
	defer done()
	if count < 1 || count > MaxGeneratePreParams {
		return 0, fmt.Errorf("keyquorum: generate pre-parameters: %w: count %d is outside 1 to %d", tss.ErrBadRequest, count, MaxGeneratePreParams)
	}
	h := n.ops.start("preparams", "", nil)
	made := 0
	for made < count {
		h.update("", nil, fmt.Sprintf("%d of %d made", made, count))
		if err := n.prepool.Generate(ctx); err != nil {
			h.end(err)
			return made, fmt.Errorf("keyquorum: generate pre-parameters (%d of %d made): %w", made, count, err)
		}
		made++
		if progress != nil {
			progress(made)
		}
	}
	h.update("", nil, fmt.Sprintf("%d of %d made", made, count))
	h.end(nil)
	return made, nil
}
