package transport

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the network's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// A committee member whose peer ID is mistyped in the peer file is refused
// by the gater; the operator must see it at the default log level, but a
// peer redialing in a loop must not flood the log.
func TestGater_LogsRefusalsAtInfoRateLimited(t *testing.T) {
	var logBuf lockedBuffer
	ss := signers(t, 2)
	nets := startNetworks(t, ss, listenTCP, func(i int, c *Config) {
		if i == 0 {
			c.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	})
	a := nets[0]
	a.refusals.mu.Lock()
	a.refusals.every = time.Hour
	a.refusals.mu.Unlock()

	strangerKey := softwareKey(t)
	stranger, err := New(Config{Identity: strangerKey, Peers: committee(t, append(ss, strangerKey)), ListenAddrs: listenTCP.addrs(),
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Close() })
	if err := stranger.AddAddrs(a.Self(), a.Addrs()...); err != nil {
		t.Fatal(err)
	}
	knock := func(until uint64) {
		t.Helper()
		deadline := time.Now().Add(waitTest)
		for a.Stats().ConnectionsRefused < until {
			if time.Now().After(deadline) {
				t.Fatalf("the gater refused %d connections, want %d", a.Stats().ConnectionsRefused, until)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			stranger.Send(ctx, message(stranger, 1, "let me in", a))
			cancel()
		}
	}
	const what = "refused connection from a peer outside the committee"
	knock(3)
	got := logBuf.lines(what)
	if len(got) != 1 || !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], stranger.PeerID().String()) ||
		!strings.Contains(got[0], "peer file") {
		t.Fatalf("after %d refusals the log holds %q; want one INFO line naming %s and the peer file", a.Stats().ConnectionsRefused, got, stranger.PeerID())
	}
	// Once the interval is over, the next refusal is logged with the count
	// of those that were not.
	a.refusals.mu.Lock()
	a.refusals.every = time.Nanosecond
	a.refusals.mu.Unlock()
	knock(a.Stats().ConnectionsRefused + 1)
	got = logBuf.lines(what)
	if len(got) < 2 || strings.Contains(got[1], "refused_since_last_line=0") {
		t.Fatalf("log after the interval: %q; want a second line counting the refusals not logged", got)
	}
}
