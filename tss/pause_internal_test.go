package tss

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
)

// waitPaused waits until g reports want, or fails after ten seconds.
func waitPaused(t *testing.T, g *pauseGate, want bool, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		paused, changed := g.state()
		if paused == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: gate paused=%v after ten seconds, want %v", what, paused, want)
		}
	}
}

func TestPauseGate_PausesWhileHeldAndResumesAfterTheLastRelease(t *testing.T) {
	g := newPauseGate()
	g.resumeDelay = 50 * time.Millisecond
	if p, _ := g.state(); p {
		t.Fatal("a new gate is paused")
	}
	r1 := g.Pause()
	if p, _ := g.state(); !p {
		t.Fatal("not paused by Pause")
	}
	r2 := g.Pause()
	r1()
	r1() // a second call does not count
	if p, _ := g.state(); !p {
		t.Fatal("resumed while a Pause is still open")
	}
	r2()
	// Still paused right after the last release: signatures in a row
	// keep generation paused.
	if p, _ := g.state(); !p {
		t.Fatal("resumed at once after the last release, want a short delay")
	}
	waitPaused(t, g, false, "after the last release")
	if _, n := g.snapshot(); n != 1 {
		t.Fatalf("%d pauses counted, want 1", n)
	}
}

func TestPauseGate_ABudgetKeepsGenerationFromStarving(t *testing.T) {
	g := newPauseGate()
	g.resumeDelay = time.Millisecond
	g.maxHold = 100 * time.Millisecond
	g.forcedRun = 100 * time.Millisecond
	resume := g.Pause()
	defer resume()
	start := time.Now()
	waitPaused(t, g, false, "held past the budget")
	if held := time.Since(start); held < g.maxHold {
		t.Fatalf("resumed after %v with the pause still open, before the %v budget", held, g.maxHold)
	}
	// The forced run ends and the open pause takes effect again.
	waitPaused(t, g, true, "after the forced run")
	if _, n := g.snapshot(); n != 2 {
		t.Fatalf("%d pauses counted, want 2", n)
	}
	resume()
	waitPaused(t, g, false, "after the release")
}

// countingReader counts its reads.
type countingReader struct {
	r     io.Reader
	reads atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	c.reads.Add(1)
	return c.r.Read(b)
}

// TestPausingReader_StopsSafePrimeGeneration runs tss-lib's generator on a
// pausing reader: while the gate is paused it draws nothing, and it draws
// again once resumed.
func TestPausingReader_StopsSafePrimeGeneration(t *testing.T) {
	g := newPauseGate()
	src := &countingReader{r: rand.Reader}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		pp, err := keygen.GeneratePreParamsWithContextAndRandom(ctx, &pausingReader{ctx: ctx, r: src, wait: g.wait}, 1)
		if pp != nil {
			wipePreParams(pp)
		}
		done <- err
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitReads := func(what string) int64 {
		t.Helper()
		from := src.reads.Load()
		deadline := time.Now().Add(time.Minute)
		for src.reads.Load() == from {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no draw of randomness in a minute", what)
			}
			time.Sleep(time.Millisecond)
		}
		return src.reads.Load()
	}
	waitReads("before the pause")
	g.set(true)
	// Every generating goroutine stops at its next draw; give them time
	// to get there, then no draw may happen.
	time.Sleep(500 * time.Millisecond)
	before := src.reads.Load()
	time.Sleep(500 * time.Millisecond)
	if after := src.reads.Load(); after != before {
		t.Fatalf("%d draws of randomness while paused", after-before)
	}
	select {
	case err := <-done:
		t.Fatalf("generation ended while paused: %v", err)
	default:
	}
	g.set(false)
	waitReads("after the resume")
}

func TestFollowControl_AppliesTheParentsBytes(t *testing.T) {
	pr, pw := io.Pipe()
	g := newPauseGate()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		followControl(pr, g, cancel)
	}()
	pw.Write([]byte{workerPause})
	waitPaused(t, g, true, "after 'p'")
	pw.Write([]byte{workerResume})
	waitPaused(t, g, false, "after 'r'")
	pw.Write([]byte{workerPause})
	waitPaused(t, g, true, "after the second 'p'")
	// The parent goes away while its worker is paused: the end of the
	// input resumes generation for good.
	pw.Close()
	<-done
	waitPaused(t, g, false, "at the end of the input")
	if ctx.Err() != nil {
		t.Fatalf("the end of the input stopped generation: %v", context.Cause(ctx))
	}

	// A byte from another protocol stops generation with a clear error.
	g = newPauseGate()
	ctx, cancel = context.WithCancelCause(context.Background())
	defer cancel(nil)
	followControl(bytes.NewReader([]byte{workerPause, 'x'}), g, cancel)
	if !errors.Is(context.Cause(ctx), ErrBadRequest) {
		t.Fatalf("after an unknown control byte: cause %v, want ErrBadRequest", context.Cause(ctx))
	}
	if p, _ := g.state(); p {
		t.Fatal("left paused after an unknown control byte")
	}
}

func TestControlWorker_SendsThePoolsPauses(t *testing.T) {
	p := &PreParamsPool{gate: newPauseGate()}
	p.gate.resumeDelay = time.Millisecond
	pr, pw := io.Pipe()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		p.controlWorker(pw, done)
	}()
	read := func() byte {
		t.Helper()
		var b [1]byte
		if _, err := io.ReadFull(pr, b[:]); err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	resume := p.Pause()
	if b := read(); b != workerPause {
		t.Fatalf("sent %q on Pause, want %q", b, workerPause)
	}
	resume()
	if b := read(); b != workerResume {
		t.Fatalf("sent %q on resume, want %q", b, workerResume)
	}
	close(done)
	<-stopped
}
