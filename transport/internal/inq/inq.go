// Package inq is the inbound queue of a tss.Network: one bounded FIFO per
// sender, emptied round-robin across senders, so that a sender that floods
// fills only its own FIFO and waits there, while every other sender's
// messages still come out at least once per turn.
package inq

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Push and Pop after Close.
var ErrClosed = errors.New("inq: queue closed")

// Queue holds items of type T from senders identified by K. It is safe for
// concurrent use. The zero value is not usable; call [New].
type Queue[K comparable, T any] struct {
	maxCount int
	maxBytes int64

	mu      sync.Mutex
	senders map[K]*fifo[T]
	turn    []K           // senders with items, in the order they are served
	arrived chan struct{} // closed when an item arrives; made by a waiting Pop
	closed  chan struct{}
	once    sync.Once
}

type fifo[T any] struct {
	items  []entry[T]
	bytes  int64
	space  chan struct{} // closed when an item leaves; made by a waiting Push
	inTurn bool
}

type entry[T any] struct {
	item   T
	weight int64
}

// New returns a queue that holds, per sender, at most maxCount items and
// maxBytes of their weights (an item heavier than maxBytes is still taken
// when its sender's FIFO is empty).
func New[K comparable, T any](maxCount int, maxBytes int64) *Queue[K, T] {
	return &Queue[K, T]{
		maxCount: maxCount,
		maxBytes: maxBytes,
		senders:  make(map[K]*fifo[T]),
		closed:   make(chan struct{}),
	}
}

// Push adds item from sender, waiting while the sender's FIFO is full. It
// returns ctx's error when ctx ends first and [ErrClosed] after Close.
func (q *Queue[K, T]) Push(ctx context.Context, sender K, item T, weight int64) error {
	q.mu.Lock()
	for {
		select {
		case <-q.closed:
			q.mu.Unlock()
			return ErrClosed
		default:
		}
		f := q.senders[sender]
		if f == nil {
			f = &fifo[T]{}
			q.senders[sender] = f
		}
		if len(f.items) < q.maxCount && (len(f.items) == 0 || f.bytes+weight <= q.maxBytes) {
			f.items = append(f.items, entry[T]{item, weight})
			f.bytes += weight
			if !f.inTurn {
				f.inTurn = true
				q.turn = append(q.turn, sender)
			}
			if q.arrived != nil {
				close(q.arrived)
				q.arrived = nil
			}
			q.mu.Unlock()
			return nil
		}
		if f.space == nil {
			f.space = make(chan struct{})
		}
		space := f.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-q.closed:
			return ErrClosed
		}
		q.mu.Lock()
	}
}

// Pop removes and returns the next item, taking senders in turn. It waits
// until an item arrives, ctx ends (returning its error) or Close.
func (q *Queue[K, T]) Pop(ctx context.Context) (T, error) {
	var zero T
	q.mu.Lock()
	for {
		select {
		case <-q.closed:
			q.mu.Unlock()
			return zero, ErrClosed
		default:
		}
		if len(q.turn) > 0 {
			break
		}
		if q.arrived == nil {
			q.arrived = make(chan struct{})
		}
		wait := q.arrived
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-q.closed:
			return zero, ErrClosed
		}
		q.mu.Lock()
	}
	sender := q.turn[0]
	q.turn = q.turn[1:]
	f := q.senders[sender]
	e := f.items[0]
	f.items[0] = entry[T]{}
	f.items = f.items[1:]
	f.bytes -= e.weight
	if len(f.items) > 0 {
		q.turn = append(q.turn, sender)
	} else {
		f.inTurn = false
		f.items = nil // let the backing array go
	}
	if f.space != nil {
		close(f.space)
		f.space = nil
	}
	q.mu.Unlock()
	return e.item, nil
}

// Len returns the number of items sender has waiting.
func (q *Queue[K, T]) Len(sender K) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if f := q.senders[sender]; f != nil {
		return len(f.items)
	}
	return 0
}

// Close makes every waiting and later Push and Pop return [ErrClosed].
// Items still queued are dropped.
func (q *Queue[K, T]) Close() {
	q.once.Do(func() { close(q.closed) })
}
