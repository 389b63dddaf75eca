package party

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// Delay is a [tss.Network] that holds every received message for half of a
// round trip time before handing it on, so that any two parties wrapped in
// it see that round trip time between them on top of the real one. It is
// the benchmark's stand-in for tc netem where the kernel has no sch_netem:
// it delays protocol messages, not the packets of the transport below them
// (handshakes, acknowledgements and flow-control updates of the real
// connection travel at loopback speed).
//
// Messages keep their order: each is released half a round trip after it
// arrived, never before the message that arrived before it.
type Delay struct {
	tss.Network
	oneWay atomic.Int64 // nanoseconds

	ctx    context.Context
	cancel context.CancelFunc
	queue  chan arrival
	done   chan struct{}
	errMu  sync.Mutex
	err    error
}

type arrival struct {
	msg *tss.Message
	due time.Time
}

// NewDelay wraps inner and starts receiving from it. Close stops that.
func NewDelay(inner tss.Network) *Delay {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Delay{Network: inner, ctx: ctx, cancel: cancel, queue: make(chan arrival, 1024), done: make(chan struct{})}
	go d.pump()
	return d
}

// SetRTT sets the emulated round trip time; each message is held rtt/2.
// It applies to messages that arrive from now on.
func (d *Delay) SetRTT(rtt time.Duration) { d.oneWay.Store(int64(rtt / 2)) }

// RTT returns the emulated round trip time.
func (d *Delay) RTT() time.Duration { return time.Duration(2 * d.oneWay.Load()) }

func (d *Delay) pump() {
	defer close(d.done)
	for {
		msg, err := d.Network.Receive(d.ctx)
		if err != nil {
			d.errMu.Lock()
			d.err = err
			d.errMu.Unlock()
			return
		}
		a := arrival{msg: msg, due: time.Now().Add(time.Duration(d.oneWay.Load()))}
		select {
		case d.queue <- a:
		case <-d.ctx.Done():
			d.errMu.Lock()
			d.err = d.ctx.Err()
			d.errMu.Unlock()
			return
		}
	}
}

// Receive returns the next message once it is due.
func (d *Delay) Receive(ctx context.Context) (*tss.Message, error) {
	select {
	case a := <-d.queue:
		if wait := time.Until(a.due); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return a.msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		// Deliver what was queued before the inner network failed.
		select {
		case a := <-d.queue:
			if wait := time.Until(a.due); wait > 0 {
				time.Sleep(wait)
			}
			return a.msg, nil
		default:
		}
		d.errMu.Lock()
		defer d.errMu.Unlock()
		return nil, d.err
	}
}

// Close stops receiving from the inner network and waits for that to end.
// It does not close the inner network.
func (d *Delay) Close() {
	d.cancel()
	<-d.done
}
