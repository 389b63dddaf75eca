package keyquorum

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// Operation describes one operation this site started through the [Node]
// (keygen, presign, sign, ...), running or recently finished. It holds
// nothing secret.
type Operation struct {
	// ID numbers the operations of this Node since Open.
	ID uint64 `json:"id"`
	// Kind is "keygen", "presign", "sign", "sign-psbt", "sign-eth", "reshare"
	// or "preparams" (GeneratePreParams).
	Kind string `json:"kind"`
	// KeyID is the key concerned (empty for keygen until it has finished).
	KeyID string `json:"key_id,omitempty"`
	// Parties are the committee (keygen) or the signers.
	Parties []tss.PartyID `json:"parties,omitempty"`
	// Started is when the operation began.
	Started time.Time `json:"started"`
	// ElapsedMS is how long it has run (or ran), in milliseconds.
	ElapsedMS int64 `json:"elapsed_ms"`
	// Done reports whether it has finished.
	Done bool `json:"done"`
	// Detail says what it is doing or what it did (protocol used, count).
	Detail string `json:"detail,omitempty"`
	// Error is why it failed, when it did.
	Error string `json:"error,omitempty"`
	// Parent is the ID of the operation this one is a step of (the
	// signature of one input of a sign-psbt, of a sign-eth), or 0.
	Parent uint64 `json:"parent,omitempty"`
}

// JoinedSession describes a session another site proposed and this site
// joined after its checks and the Policy passed.
type JoinedSession struct {
	// Op is the operation (keygen, sign, presign, online, ...).
	Op tss.Operation `json:"op"`
	// Initiator is the site that proposed it.
	Initiator tss.PartyID `json:"initiator"`
	// KeyID is the key concerned.
	KeyID string `json:"key_id,omitempty"`
	// Parties are the session's participants.
	Parties []tss.PartyID `json:"parties"`
	// Path is the derivation path, if any.
	Path string `json:"path,omitempty"`
	// At is when this site accepted it.
	At time.Time `json:"at"`
}

const (
	keepFinished = 32 // finished operations kept for Status
	keepJoined   = 32 // joined sessions kept for Status
)

// operations tracks the Node's operations for Status.
type operations struct {
	// ended, when set, is told of every operation that ends (metrics).
	ended func(kind string, d time.Duration, err error)
	// failed, when set, is told of every operation that fails (the audit
	// log), after the lock is released.
	failed func(o Operation, err error)

	mu       sync.Mutex
	next     uint64
	running  map[uint64]*Operation
	finished []Operation
	joinedL  []JoinedSession
}

func newOperations() *operations {
	return &operations{running: make(map[uint64]*Operation)}
}

// op is a handle on a running operation.
type op struct {
	o  *operations
	id uint64
}

func (o *operations) start(kind, keyID string, parties []tss.PartyID) op {
	return o.startIn(context.Background(), kind, keyID, parties)
}

// startIn starts an operation as a step of the operation ctx carries (see
// stepOf), if any.
func (o *operations) startIn(ctx context.Context, kind, keyID string, parties []tss.PartyID) op {
	parent, _ := ctx.Value(parentOpKey{}).(uint64)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	o.running[o.next] = &Operation{ID: o.next, Kind: kind, KeyID: keyID, Parties: slices.Clone(parties), Started: time.Now(), Parent: parent}
	return op{o: o, id: o.next}
}

// parentOpKey is the context key of the operation that later ones are
// steps of.
type parentOpKey struct{}

// stepOf returns ctx for the steps of operation h: operations started in it
// with startIn record h as their parent.
func stepOf(ctx context.Context, h op) context.Context {
	return context.WithValue(ctx, parentOpKey{}, h.id)
}

// update changes a running operation's key, parties or detail.
func (h op) update(keyID string, parties []tss.PartyID, detail string) {
	h.o.mu.Lock()
	defer h.o.mu.Unlock()
	r := h.o.running[h.id]
	if r == nil {
		return
	}
	if keyID != "" {
		r.KeyID = keyID
	}
	if parties != nil {
		r.Parties = slices.Clone(parties)
	}
	if detail != "" {
		r.Detail = detail
	}
}

func (h op) end(err error) {
	h.o.mu.Lock()
	r := h.o.running[h.id]
	if r == nil {
		h.o.mu.Unlock()
		return
	}
	if h.o.ended != nil {
		h.o.ended(r.Kind, time.Since(r.Started), err)
	}
	delete(h.o.running, h.id)
	r.Done = true
	r.ElapsedMS = time.Since(r.Started).Milliseconds()
	if err != nil {
		r.Error = err.Error()
	}
	h.o.finished = append(h.o.finished, *r)
	if len(h.o.finished) > keepFinished {
		h.o.finished = slices.Delete(h.o.finished, 0, len(h.o.finished)-keepFinished)
	}
	done, failed := *r, h.o.failed
	h.o.mu.Unlock()
	if err != nil && failed != nil {
		failed(done, err)
	}
}

func (o *operations) joined(p *tss.Proposal, self tss.PartyID) {
	if p.Initiator == self || p.Op == tss.OpReconcile {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.joinedL = append(o.joinedL, JoinedSession{Op: p.Op, Initiator: p.Initiator, KeyID: p.KeyID,
		Parties: slices.Clone(p.Parties), Path: p.Path, At: time.Now()})
	if len(o.joinedL) > keepJoined {
		o.joinedL = slices.Delete(o.joinedL, 0, len(o.joinedL)-keepJoined)
	}
}

// snapshot returns the running operations (oldest first), the finished
// ones (newest last) and the joined sessions (newest last).
func (o *operations) snapshot() (running, finished []Operation, joined []JoinedSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	for _, r := range o.running {
		c := *r
		c.ElapsedMS = now.Sub(c.Started).Milliseconds()
		running = append(running, c)
	}
	slices.SortFunc(running, func(a, b Operation) int { return cmp.Compare(a.ID, b.ID) })
	return running, slices.Clone(o.finished), slices.Clone(o.joinedL)
}
