package tss

import (
	"context"
	"io"
	"sync"
	"time"
)

// A Pauser is background work that steps aside while the engine signs
// (Config.PauseWhileSigning). PreParamsPool is one: safe-prime generation
// pauses, so that a signature does not share the machine's cores, caches
// and memory bandwidth with it.
type Pauser interface {
	// Pause asks the work to pause until the returned resume function is
	// called. Requests nest: the work resumes when every one has ended.
	// resume may be called more than once; only the first call counts.
	// The work decides how fast it stops and may run anyway to keep
	// making progress (PreParamsPool's budget).
	Pause() (resume func())
}

// The budget of a pause gate. Generation pauses while signing, resumes
// pauseResumeDelay after the last signature (so that signatures in a row
// keep it paused rather than letting it run for a few microseconds in
// between), and never pauses for more than pauseMaxHold in a row: it then
// runs for pauseForcedRun whatever the signing load, so that a site that
// signs all the time still makes pre-parameters, at a fifth of the speed.
const (
	pauseResumeDelay = 20 * time.Millisecond
	pauseMaxHold     = 4 * time.Second
	pauseForcedRun   = 1 * time.Second
)

// pauseGate decides when pre-parameter generation runs: it pauses while
// any Pause request is open, within the budget above. Generators wait on
// it (wait) between draws of randomness, which safe-prime search makes
// about once a millisecond per goroutine.
type pauseGate struct {
	resumeDelay, maxHold, forcedRun time.Duration

	mu       sync.Mutex
	holds    int           // open Pause requests
	released time.Time     // when holds last fell to zero
	paused   bool          // generators must wait
	since    time.Time     // start of the current pause
	forced   time.Time     // generation runs until then, whatever holds
	changed  chan struct{} // closed and replaced when paused changes
	timer    *time.Timer   // the next change the clock decides
	pauses   int           // pauses begun, for status
}

func newPauseGate() *pauseGate {
	return &pauseGate{resumeDelay: pauseResumeDelay, maxHold: pauseMaxHold, forcedRun: pauseForcedRun, changed: make(chan struct{})}
}

// Pause implements Pauser.
func (g *pauseGate) Pause() func() {
	g.mu.Lock()
	g.holds++
	g.updateLocked(time.Now())
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			now := time.Now()
			if g.holds--; g.holds == 0 {
				g.released = now
			}
			g.updateLocked(now)
		})
	}
}

// updateLocked moves the gate to the state the holds and the budget ask
// for at now, and arms the timer for the next change the clock decides.
// Call it with g.mu held.
func (g *pauseGate) updateLocked(now time.Time) {
	want := g.holds > 0 || now.Sub(g.released) < g.resumeDelay
	switch {
	case g.paused && now.Sub(g.since) >= g.maxHold:
		g.setLocked(false)
		g.forced = now.Add(g.forcedRun)
	case g.paused && !want:
		g.setLocked(false)
	case !g.paused && want && !now.Before(g.forced):
		g.setLocked(true)
		g.since = now
	}
	var next time.Time
	switch {
	case g.paused:
		next = g.since.Add(g.maxHold)
		if g.holds == 0 {
			next = minTime(next, g.released.Add(g.resumeDelay))
		}
	case want:
		// A forced run: pause again when it ends.
		next = g.forced
	}
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if !next.IsZero() {
		g.timer = time.AfterFunc(max(next.Sub(now), 0), func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.updateLocked(time.Now())
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (g *pauseGate) setLocked(paused bool) {
	g.paused = paused
	if paused {
		g.pauses++
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// set pauses or resumes generation directly, without holds or budget:
// what a worker does on its parent's word.
func (g *pauseGate) set(paused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused != paused {
		g.setLocked(paused)
	}
}

// state returns whether generation is paused and a channel closed at the
// next change.
func (g *pauseGate) state() (paused bool, changed <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused, g.changed
}

// snapshot returns whether generation is paused and how many pauses began.
func (g *pauseGate) snapshot() (paused bool, pauses int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused, g.pauses
}

// wait returns when generation may run, or with ctx's error.
func (g *pauseGate) wait(ctx context.Context) error {
	for {
		paused, changed := g.state()
		if !paused {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// pausingReader is a randomness source that waits while its gate is
// paused before each read: a generator drawing from it stops at its next
// draw. The bytes it returns are the underlying reader's, unchanged.
type pausingReader struct {
	ctx  context.Context
	r    io.Reader
	wait func(context.Context) error
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if err := p.wait(p.ctx); err != nil {
		return 0, err
	}
	return p.r.Read(b)
}
