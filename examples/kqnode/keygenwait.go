package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// How often keygen --wait looks at the site's pre-parameters, and how long
// it waits before asking the other sites again after they refused for lack
// of them (each refusal is in their audit logs, so not too often).
const (
	preParamsPoll = 2 * time.Second
	remoteRetry   = 10 * time.Second
)

// waitNote shows keygen --wait's progress: one updating line on a
// terminal, a line per change of state otherwise, nothing with --json.
type waitNote struct {
	w     io.Writer
	tty   bool
	start time.Time
	last  string
}

func newWaitNote(e *env) *waitNote {
	n := &waitNote{start: time.Now()}
	if e.json {
		return n
	}
	n.w = e.stderr
	if f, ok := e.stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			n.tty = true
		}
	}
	return n
}

// show reports state; on a terminal with the time waited so far.
func (n *waitNote) show(state string) {
	if n.w == nil {
		return
	}
	if n.tty {
		fmt.Fprintf(n.w, "\r\033[Kkeygen: %s (%s waited)", state, time.Since(n.start).Round(time.Second))
		return
	}
	if state != n.last {
		fmt.Fprintf(n.w, "keygen: %s\n", state)
	}
	n.last = state
}

// done clears the terminal line.
func (n *waitNote) done() {
	if n.w != nil && n.tty {
		fmt.Fprint(n.w, "\r\033[K")
	}
}

// keygenWhenReady is keygen --wait: it waits until this site has a
// pre-parameter set, proposes the keygen, and while other sites refuse it
// for lack of one, waits and proposes again; all within --timeout.
func keygenWhenReady(ctx context.Context, e *env, c *client, req keygenRequest) error {
	ctx, cancel := context.WithTimeout(ctx, c.http.Timeout)
	defer cancel()
	note := newWaitNote(e)
	defer note.done()
	expired := func() error {
		return c.timeoutError(pathKeygen, fmt.Errorf("waiting for pre-parameters: %w", ctx.Err()))
	}
	for {
		names, err := waitLocalPreParams(ctx, c, note)
		if err != nil {
			if ctx.Err() != nil {
				return expired()
			}
			return err
		}
		note.show("proposing the key to " + strings.Join(req.Parties, ","))
		var res keygenResult
		err = withProgress(ctx, e, c, "keygen", func() error { return c.call(ctx, pathKeygen, req, &res) })
		var ae *apiError
		if !errors.As(err, &ae) || ae.body.Code != codeNoPreParams {
			if err != nil {
				return err
			}
			note.done()
			return output(e, &res)
		}
		who := "this site"
		if len(ae.body.Parties) > 0 {
			v := statusView{names: names}
			who = v.sites(partyIDs(ae.body.Parties))
		}
		note.show(fmt.Sprintf("%s has no pre-parameter set yet; asking again in %s", who, remoteRetry))
		select {
		case <-ctx.Done():
			return expired()
		case <-time.After(remoteRetry):
		}
	}
}

// waitLocalPreParams returns once this site has a pre-parameter set ready
// (and the site names from its status), or fails at once when it has none
// and generates none.
func waitLocalPreParams(ctx context.Context, c *client, note *waitNote) (map[string]string, error) {
	for {
		var st statusResult
		if err := c.call(ctx, pathStatus, nil, &st); err != nil {
			return nil, err
		}
		pp := st.PreParams
		if pp.Ready > 0 {
			return st.Names, nil
		}
		if !pp.Generation && pp.Generating == 0 {
			return nil, fmt.Errorf("%w: %s has no pre-parameter set and generates none (it runs with --preparams-target 0): restart it with --preparams-target 1 or more",
				tss.ErrNoPreParams, c.home.dir)
		}
		state := fmt.Sprintf("waiting for a pre-parameter set at this site: %d ready, %d generating, %d generated since it started (%s)",
			pp.Ready, pp.Generating, pp.Generated, preParamsEstimate(pp.PreParamsStatus))
		if pp.LastError != "" {
			state += "; last error: " + oneLine(pp.LastError)
		}
		note.show(state)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(preParamsPoll):
		}
	}
}

// preParamsEstimate says how long the site's sets take: the mean of those
// it made since it started and how long the current one has run, or, before
// the first, what a set usually costs. Safe primes are found by chance, so
// it is an estimate.
func preParamsEstimate(pp tss.PreParamsStatus) string {
	ms := func(v int64) time.Duration { return (time.Duration(v) * time.Millisecond).Round(time.Second) }
	var s string
	if pp.MeanGenerationMS > 0 {
		s = fmt.Sprintf("sets took %s on average here", ms(pp.MeanGenerationMS))
	} else {
		s = "a set takes from a few seconds to a few minutes of CPU"
	}
	if pp.GeneratingForMS > 0 {
		s += fmt.Sprintf("; the current one has run %s", ms(pp.GeneratingForMS))
		if pp.MeanGenerationMS > 0 && pp.GeneratingForMS > 3*pp.MeanGenerationMS {
			s += " (longer than most: safe primes are found by chance, or the host is busy; generation takes only idle CPU)"
		}
	}
	return s
}
