package tss

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/drbg"
)

// A pre-parameter worker is a program that generates one set per run: it
// reads a 48-byte seed on its standard input, generates the set from an
// HMAC_DRBG seeded with it, writes the set on its standard output in the
// JSON encoding of tss-lib's LocalPreParams and exits with status 0. It
// writes nothing else there; failures go to its standard error, which
// never carries secrets. RunPreParamsWorker is such a program's body.
//
// After the seed, standard input carries the parent's control bytes:
// workerPause ('p') pauses generation at its next draw of randomness,
// workerResume ('r') resumes it. The parent pauses its worker while it
// signs (Config.PauseWhileSigning). The end of standard input resumes
// generation for good, so a worker whose parent died is never left
// paused: it finishes, fails to write to the closed pipe and exits.
//
// The seed and the set pass through pipes between the two processes and
// nowhere else: nothing is written to disk unsealed.

// The control bytes a worker reads after its seed.
const (
	workerPause  = 'p'
	workerResume = 'r'
)

// preParamsSeedBytes is the size of the seed sent to a worker: what
// drbg.NewReader draws from its parent.
const preParamsSeedBytes = 48

// maxWorkerOutput bounds what is read of a worker's standard output: a
// set's JSON encoding is about 10 KiB.
const maxWorkerOutput = 64 << 10

// workerStderrBytes bounds how much of a failing worker's standard error
// is quoted in the error.
const workerStderrBytes = 512

// preParamsPersonalization names the DRBG that generates a set.
const preParamsPersonalization = "keyquorum tss pre-parameters"

// RunPreParamsWorker is the body of a pre-parameter worker program (see
// PreParamsConfig.Command): it reads the seed from in, generates one set
// and writes it to out, pausing and resuming as the control bytes that
// follow the seed on in say. It returns when the set is written or ctx is
// done; the caller exits with a non-zero status when it returns an error.
func RunPreParamsWorker(ctx context.Context, in io.Reader, out io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tss: pre-parameter worker panicked: %s", trimPanic(r))
		}
	}()
	var seed [preParamsSeedBytes]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(in, seed[:]); err != nil {
		return fmt.Errorf("tss: pre-parameter worker: read the %d-byte seed on standard input: %w", preParamsSeedBytes, err)
	}
	// The seed decides the output; the operating system's generator is
	// only there for a reseed, which generation never comes near.
	rnd, err := drbg.NewReader(io.MultiReader(bytes.NewReader(seed[:]), rand.Reader), sha512.New, preParamsPersonalization)
	if err != nil {
		return fmt.Errorf("tss: pre-parameter worker: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	gate := newPauseGate()
	go followControl(in, gate, cancel)
	pp, err := keygen.GeneratePreParamsWithContextAndRandom(ctx, &pausingReader{ctx: ctx, r: rnd, wait: gate.wait}, 1)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return fmt.Errorf("tss: pre-parameter worker: generate: %w", err)
	}
	defer wipePreParams(pp)
	data, err := json.Marshal(pp)
	if err != nil {
		return fmt.Errorf("tss: pre-parameter worker: encode: %w", err)
	}
	defer clear(data)
	if _, err := out.Write(data); err != nil {
		return fmt.Errorf("tss: pre-parameter worker: write the set on standard output: %w", err)
	}
	return nil
}

// followControl applies the control bytes the parent writes after the
// seed to gate, until in ends, which resumes generation for good. A byte
// that is not a control byte stops generation with an error: the parent
// speaks another protocol.
func followControl(in io.Reader, gate *pauseGate, cancel context.CancelCauseFunc) {
	var b [1]byte
	for {
		if _, err := in.Read(b[:]); err != nil {
			gate.set(false)
			return
		}
		switch b[0] {
		case workerPause:
			gate.set(true)
		case workerResume:
			gate.set(false)
		default:
			gate.set(false)
			cancel(fmt.Errorf("%w: control byte %#x on standard input after the seed; want %q or %q", ErrBadRequest, b[0], workerPause, workerResume))
			return
		}
	}
}

// generateInWorker runs one pre-parameter worker (cfg.Command) at the
// lowest CPU priority the system offers, seeded from rnd, and returns the
// set it wrote, checked. When ctx is done the worker is killed; it leaves
// nothing behind, since it has written nothing but to its pipes.
func (p *PreParamsPool) generateInWorker(ctx context.Context, rnd io.Reader) (*keygen.LocalPreParams, error) {
	name := p.cfg.Command[0]
	var seed [preParamsSeedBytes]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("tss: seed pre-parameter worker %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, name, p.cfg.Command[1:]...)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("tss: start pre-parameter worker %s: %w", name, err)
	}
	out := &limitedBuffer{max: maxWorkerOutput}
	errOut := &limitedBuffer{max: workerStderrBytes}
	cmd.Stdout, cmd.Stderr = out, errOut
	defer clear(out.buf.Bytes())
	if err := startLowPriority(cmd); err != nil {
		return nil, fmt.Errorf("tss: start pre-parameter worker %s: %w (check PreParamsConfig.Command)", name, err)
	}
	done := make(chan struct{})
	controlled := make(chan struct{})
	go func() {
		defer close(controlled)
		defer stdin.Close()
		// The seed fits in the pipe's buffer: the write does not wait
		// for the worker. A failed write shows as the worker's failure.
		if _, err := stdin.Write(seed[:]); err != nil {
			return
		}
		p.controlWorker(stdin, done)
	}()
	werr := cmd.Wait()
	close(done)
	<-controlled
	if ctx.Err() != nil {
		return nil, fmt.Errorf("tss: pre-parameter worker %s stopped: %w", name, context.Cause(ctx))
	}
	if werr != nil {
		msg := strings.TrimSpace(errOut.buf.String())
		if msg == "" {
			msg = "nothing on standard error"
		}
		return nil, fmt.Errorf("tss: pre-parameter worker %s failed (%w): %s", name, werr, msg)
	}
	if out.over {
		return nil, fmt.Errorf("tss: pre-parameter worker %s: %w: wrote more than %d bytes", name, ErrBadRequest, maxWorkerOutput)
	}
	var pp keygen.LocalPreParams
	if err := json.Unmarshal(out.buf.Bytes(), &pp); err != nil {
		wipePreParams(&pp)
		return nil, fmt.Errorf("tss: pre-parameter worker %s: %w: its output is not a pre-parameter set (tss-lib LocalPreParams JSON)", name, ErrBadRequest)
	}
	return &pp, nil
}

// controlWorker tells a worker to pause and resume as the pool's gate
// changes, until done is closed or the worker stops reading.
func (p *PreParamsPool) controlWorker(w io.Writer, done <-chan struct{}) {
	sent := false
	for {
		paused, changed := p.gate.state()
		if paused != sent {
			b := []byte{workerResume}
			if paused {
				b[0] = workerPause
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			sent = paused
		}
		select {
		case <-changed:
		case <-done:
			return
		}
	}
}

// limitedBuffer keeps the first max bytes written to it and notes that
// more came; writing never fails, so a chatty worker is not blocked.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.max - b.buf.Len(); len(p) > room {
		p = p[:max(room, 0)]
		b.over = true
	}
	b.buf.Write(p)
	return n, nil
}
