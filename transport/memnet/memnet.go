// Package memnet is an in-memory [tss.Network] for tests and benchmarks: every
// party of a [Hub] lives in the same process and messages are handed over
// through bounded queues.
//
// It behaves like an authenticated network: the sender of a delivered
// message is always the [Endpoint] that sent it. A message whose From field
// claims another party is dropped and counted, as the libp2p transport drops
// an envelope whose sender differs from the authenticated peer.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/keyquorum/keyquorum/transport/internal/inq"
	"github.com/keyquorum/keyquorum/tss"
)

// DefaultQueueSize is the number of undelivered messages from one sender an
// [Endpoint] holds before that sender blocks. Each sender has its own queue at
// each endpoint and Receive serves them in turn, as the libp2p transport
// does, so a sender that floods delays the others by at most one message.
const DefaultQueueSize = 1024

// ErrClosed is returned by an [Endpoint] after Close.
var ErrClosed = errors.New("memnet: endpoint closed")

// Hub connects the Endpoints of one in-memory network.
type Hub struct {
	mu        sync.Mutex
	endpoints map[tss.PartyID]*Endpoint
	queueSize int
}

// NewHub returns an empty [Hub] whose endpoints queue up to queueSize messages
// per sender ([DefaultQueueSize] when queueSize <= 0).
func NewHub(queueSize int) *Hub {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	return &Hub{endpoints: make(map[tss.PartyID]*Endpoint), queueSize: queueSize}
}

// Join adds a party to the hub and returns its [Endpoint]. It fails if the ID
// is invalid or already joined.
func (h *Hub) Join(id tss.PartyID) (*Endpoint, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.endpoints[id]; ok {
		return nil, fmt.Errorf("memnet: party %s already joined", id)
	}
	e := &Endpoint{
		hub:   h,
		id:    id,
		inbox: inq.New[tss.PartyID, *tss.Message](h.queueSize, math.MaxInt64),
		done:  make(chan struct{}),
	}
	h.endpoints[id] = e
	return e, nil
}

func (h *Hub) lookup(id tss.PartyID) *Endpoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endpoints[id]
}

func (h *Hub) leave(e *Endpoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.endpoints[e.id] == e {
		delete(h.endpoints, e.id)
	}
}

// Endpoint is one party's attachment to a [Hub]. It implements [tss.Network].
type Endpoint struct {
	hub   *Hub
	id    tss.PartyID
	inbox *inq.Queue[tss.PartyID, *tss.Message]
	done  chan struct{}
	once  sync.Once

	spoofed   atomic.Uint64
	oversized atomic.Uint64
}

var _ tss.Network = (*Endpoint)(nil)

// Self returns the endpoint's party ID.
func (e *Endpoint) Self() tss.PartyID { return e.id }

// Send hands a copy of msg to every recipient in msg.To. A message whose From
// is not this endpoint's party is dropped at the recipients and counted, as
// an authenticated transport would. Send blocks while this sender's queue at
// a recipient is full, until ctx is done.
func (e *Endpoint) Send(ctx context.Context, msg *tss.Message) error {
	select {
	case <-e.done:
		return ErrClosed
	default:
	}
	if msg == nil {
		return errors.New("memnet: nil message")
	}
	if len(msg.Payload) > tss.MaxPayloadSize {
		e.oversized.Add(1)
		return tss.ErrMessageTooLarge
	}
	var unreachable []tss.PartyID
	for _, to := range msg.To {
		r := e.hub.lookup(to)
		if r == nil {
			unreachable = append(unreachable, to)
			continue
		}
		if msg.From != e.id {
			// The receiving side of an authenticated link sees the real
			// sender and drops the forgery.
			r.spoofed.Add(1)
			continue
		}
		cp := *msg
		cp.To = slices.Clone(msg.To)
		cp.Payload = slices.Clone(msg.Payload)
		if err := r.inbox.Push(ctx, e.id, &cp, 1); err != nil {
			if errors.Is(err, inq.ErrClosed) {
				unreachable = append(unreachable, to)
				continue
			}
			return err
		}
	}
	if len(unreachable) > 0 {
		return &tss.UnreachableError{Parties: unreachable, Err: errors.New("memnet: party not on the hub")}
	}
	return nil
}

// Receive returns the next message for this endpoint.
func (e *Endpoint) Receive(ctx context.Context) (*tss.Message, error) {
	m, err := e.inbox.Pop(ctx)
	if errors.Is(err, inq.ErrClosed) {
		return nil, ErrClosed
	}
	return m, err
}

// Spoofed returns how many messages addressed to this endpoint were dropped
// because their From field named a party other than the sender.
func (e *Endpoint) Spoofed() uint64 { return e.spoofed.Load() }

// Close removes the endpoint from its hub; later sends to it fail as
// unreachable and its own Send and Receive return [ErrClosed].
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		close(e.done)
		e.inbox.Close()
		e.hub.leave(e)
	})
	return nil
}
