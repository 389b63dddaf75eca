package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/keyquorum/keyquorum/tss"
)

// sendItem is one envelope waiting for one peer's stream.
type sendItem struct {
	ctx   context.Context // the Send call's context
	frame []byte          // shared by all recipients; never modified
	to    tss.PartyID
	link  *link
	done  chan error // buffered; receives the outcome exactly once
}

// link owns the single outbound stream to one peer. Its goroutine (run)
// takes envelopes from a bounded queue and writes them in order,
// reconnecting with bounded exponential backoff when the stream fails.
type link struct {
	n     *Network
	id    peer.ID
	queue chan *sendItem

	// lastDialErr is the error of the latest failed attempt to open a
	// stream, nil after a success; Send reports it with a timeout.
	lastDialErr atomic.Pointer[error]

	// Owned by the run goroutine.
	stream   network.Stream
	hadOne   bool      // a stream was open before: the next one is a reconnect
	failures int       // consecutive failed attempts since the last delivery
	retryAt  time.Time // no new attempt before this time
}

func newLink(n *Network, id peer.ID) *link {
	return &link{n: n, id: id, queue: make(chan *sendItem, n.cfg.SendQueueSize)}
}

func (l *link) run() {
	defer l.n.wg.Done()
	defer func() {
		if l.stream != nil {
			l.stream.Close()
		}
	}()
	for {
		select {
		case <-l.n.ctx.Done():
			return
		case it := <-l.queue:
			it.done <- l.deliver(it)
		}
	}
}

// deliver writes one envelope, opening a stream first if there is none. It
// returns nil once the envelope is written, or the reason it was not.
func (l *link) deliver(it *sendItem) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = l.n.recovered("send to "+l.id.String(), r)
			l.dropStream()
		}
	}()
	var lastErr error
	for {
		if l.n.ctx.Err() != nil {
			return ErrClosed
		}
		if it.ctx.Err() != nil {
			// Never start writing a message whose sender gave up.
			if lastErr != nil {
				return errors.Join(it.ctx.Err(), lastErr)
			}
			return it.ctx.Err()
		}
		fresh := false
		if l.stream == nil {
			if err := l.waitRetry(it.ctx); err != nil {
				continue // the checks above report why
			}
			if err := l.open(it.ctx); err != nil {
				if refused(err) {
					// The peer's host answered that nothing listens at
					// its address: its site is down, and waiting for
					// SendTimeout would only delay the error. A peer
					// that is silent (no answer at all) is still waited
					// for, with backoff.
					return fmt.Errorf("transport: %s refuses connections (nothing listens at its address: is its site stopped?): %w", l.id, err)
				}
				lastErr = err
				continue
			}
			fresh = true
		}
		// A write must not wait for ever on a peer that stops reading: it
		// ends at WriteTimeout. It does not end with the Send's context:
		// a write cut short resets the stream and loses the frames before
		// it that the peer has not read yet, which a slow but live peer
		// would still read.
		l.stream.SetWriteDeadline(time.Now().Add(l.n.cfg.WriteTimeout))
		if _, err := l.stream.Write(it.frame); err != nil {
			// A partly written frame is discarded by the receiver when the
			// stream is reset, so writing it again on a new stream cannot
			// deliver it twice.
			l.dropStream()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// The connection is up but the peer does not read: a new
				// stream would fill up the same way. Give up on this
				// message; the next one gets a fresh stream.
				l.n.stats.stalledWrites.Add(1)
				l.n.log.Warn("peer does not read; reset its stream", "peer", l.id.String(), "after", l.n.cfg.WriteTimeout)
				return fmt.Errorf("transport: write to %s: %w", l.id, err)
			}
			l.n.log.Debug("stream to peer failed; reconnecting", "peer", l.id.String(), "err", err)
			lastErr = err
			if fresh {
				// A stream that fails at once is a failed attempt: back
				// off rather than spin on a connection that is going away.
				l.failed(err)
			}
			continue
		}
		l.failures = 0
		l.n.stats.sent.Add(1)
		return nil
	}
}

// waitRetry waits until the backoff after the last failed attempt is over.
func (l *link) waitRetry(ctx context.Context) error {
	d := time.Until(l.retryAt)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.n.ctx.Done():
		return ErrClosed
	}
}

// open connects to the peer if needed and opens the protocol stream.
func (l *link) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.n.cfg.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(l.n.ctx, cancel)
	defer stop()
	// Our own backoff governs redials; the swarm's (5 s and more after a
	// failure, p2p/net/swarm/swarm_dial.go) would delay reconnecting to a
	// restarted peer. Force-direct dialing skips it and, without relays,
	// changes nothing else.
	ctx = network.WithForceDirectDial(ctx, "keyquorum reconnect")
	s, err := l.n.host.NewStream(ctx, l.id, ProtocolID)
	if err != nil {
		l.failed(err)
		return err
	}
	if l.hadOne {
		l.n.stats.reconnects.Add(1)
		l.n.log.Info("reconnected to peer", "peer", l.id.String(), "after_failures", l.failures)
	}
	l.stream, l.hadOne = s, true
	l.lastDialErr.Store(nil)
	return nil
}

// refused reports a dial that failed because the peer's host refused the
// connection (a TCP reset: no process listens on the port) and no address
// of the peer accepted one.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// failed records a failed attempt to reach the peer and schedules the next.
func (l *link) failed(err error) {
	l.failures++
	l.retryAt = time.Now().Add(l.backoff())
	l.n.stats.dialFailures.Add(1)
	l.lastDialErr.Store(&err)
	l.n.log.Debug("cannot reach peer", "peer", l.id.String(), "attempt", l.failures, "err", err)
}

// backoff returns the delay before the next attempt: BackoffMin doubled per
// consecutive failure, capped at BackoffMax, minus up to 25% jitter so that
// parties restarting together do not redial in lockstep.
func (l *link) backoff() time.Duration {
	d := l.n.cfg.BackoffMin
	for i := 1; i < l.failures && d < l.n.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, l.n.cfg.BackoffMax)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

func (l *link) dropStream() {
	if l.stream != nil {
		l.stream.Reset()
		l.stream = nil
	}
}

// timeoutError is what Send reports for a recipient it stopped waiting for:
// the context's error, joined with the last reason the peer could not be
// reached, if any.
func (l *link) timeoutError(ctxErr error) error {
	if p := l.lastDialErr.Load(); p != nil {
		return errors.Join(ctxErr, *p)
	}
	return ctxErr
}
