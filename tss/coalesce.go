package tss

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Coalescing of GG20 online requests (SignOnline).
//
// Requests for one (key, signer set, path) that arrive while this party
// already runs coalesceInFlight online sessions for it wait, and leave
// together in the next session once one of those ends: one proposal, one
// ledger update and one answer per co-signer for all of them. A request
// that finds no session running leaves at once, alone, so coalescing adds
// no delay to a lone request; under load a request waits at most for the
// session ahead of it, about one round trip, during which the requests
// behind it gather. This is group commit, as databases batch log writes.
//
// Each request keeps its own evidence, its own Policy decision on every
// party (see Proposal.BatchItem), and its own result: its signature, or
// its own error (a co-signer's refusal of it, a bad share for it), without
// failing the others of its session. A failure of the whole session (a
// co-signer that does not answer, a malformed answer) fails every request
// it carried.

// coalesceInFlight is how many online sessions this party runs at once for
// one (key, signer set, path) before further requests wait to be coalesced.
// Two keep a session being answered while the next one is prepared: with
// 32 requests at once on 2 cores (BenchmarkSignOnlineConcurrent2of3) one
// session at a time signed 4,148 signatures/s with p99 11.4 ms, two 4,482
// with p99 6.5 ms.
const coalesceInFlight = 2

// maxCoalesced bounds the requests of one coalesced session, so that a
// co-signer's answer, with a refusal of up to maxAnswerRefusal bytes for
// each request, stays well within MaxPayloadSize.
const maxCoalesced = 1024

// maxCoalescedPayload bounds the proposal payload of a coalesced session,
// well under maxProposalSize: requests with large evidence (a PSBT intent,
// approvals) split into several sessions.
const maxCoalescedPayload = 512 << 10

// coalescer holds the requests waiting, per (key, signer set, path).
type coalescer struct {
	mu     sync.Mutex
	groups map[string]*onlineGroup
	stats  struct {
		requests, sessions, largest atomic.Uint64
	}
}

// onlineGroup is one (key, signer set, path): how many sessions run and
// which requests wait for the next.
type onlineGroup struct {
	running int
	pending []*onlineItem
}

// onlineItem is one waiting SignOnline request.
type onlineItem struct {
	ctx      context.Context
	digest   []byte
	evidence []byte

	lead chan []*onlineItem // receives the session this request is to run
	// leader is set, under the coalescer's lock, when the request is taken
	// from the waiting ones to run the next session.
	leader bool
	done   chan struct{} // closed once sig or err is set
	sig    *Signature
	err    error
}

func (it *onlineItem) size() int { return 68 + len(it.evidence) }

func (it *onlineItem) settle(sig *Signature, err error) {
	it.sig, it.err = sig, err
	close(it.done)
}

// CoalesceStats counts how SignOnline requests were coalesced.
type CoalesceStats struct {
	// Requests is the number of SignOnline requests that went into a
	// coalesced session.
	Requests uint64 `json:"requests"`
	// Sessions is the number of coalesced sessions that carried them.
	Sessions uint64 `json:"sessions"`
	// Largest is the most requests one session carried.
	Largest uint64 `json:"largest"`
	// Waiting is the number of requests waiting now for the next session.
	Waiting uint64 `json:"waiting"`
}

// CoalesceStats returns how this party's SignOnline requests were
// coalesced into sessions since it started.
func (e *Engine) CoalesceStats() CoalesceStats {
	c := &e.coalesce
	c.mu.Lock()
	waiting := 0
	for _, g := range c.groups {
		waiting += len(g.pending)
	}
	c.mu.Unlock()
	return CoalesceStats{Requests: c.stats.requests.Load(), Sessions: c.stats.sessions.Load(), Largest: c.stats.largest.Load(), Waiting: uint64(waiting)}
}

// signCoalesced signs req's one digest in a coalesced session (see the
// comment at the top of this file).
func (e *Engine) signCoalesced(ctx context.Context, req OnlineRequest) (*Signature, error) {
	d := req.Digests[0]
	if len(d) != 32 {
		return nil, fmt.Errorf("%w: digest must be 32 bytes, not %d", ErrBadRequest, len(d))
	}
	// Refused here, so that it cannot fail the session it would join.
	if m := new(big.Int).SetBytes(d); m.Mod(m, secp256k1.S256().N).Sign() == 0 {
		return nil, fmt.Errorf("%w: the digest is zero modulo the group order", ErrBadRequest)
	}
	if 68+len(req.Evidence) > maxCoalescedPayload {
		return nil, fmt.Errorf("%w: evidence of %d bytes; online signing takes at most %d", ErrBadRequest, len(req.Evidence), maxCoalescedPayload-68)
	}
	if err := validKeyID(req.KeyID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	signers, err := e.defaultSigners(ctx, req.KeyID, req.Signers)
	if err != nil {
		return nil, err
	}
	if err := validPartySet(signers); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	spec := PoolSpec{KeyID: req.KeyID, Signers: signers, Path: req.Path}
	key := groupKey(spec)
	it := &onlineItem{ctx: ctx, digest: slices.Clone(d), evidence: slices.Clone(req.Evidence),
		lead: make(chan []*onlineItem, 1), done: make(chan struct{})}

	c := &e.coalesce
	c.mu.Lock()
	if c.groups == nil {
		c.groups = make(map[string]*onlineGroup)
	}
	g := c.groups[key]
	if g == nil {
		g = &onlineGroup{}
		c.groups[key] = g
	}
	if g.running < coalesceInFlight && len(g.pending) == 0 {
		g.running++
		c.mu.Unlock()
		e.runCoalesced(key, spec, []*onlineItem{it})
		return it.sig, it.err
	}
	g.pending = append(g.pending, it)
	c.mu.Unlock()

	select {
	case batch := <-it.lead:
		e.runCoalesced(key, spec, batch)
		return it.sig, it.err
	case <-it.done:
		return it.sig, it.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if i := slices.Index(g.pending, it); i >= 0 {
		g.pending = slices.Delete(g.pending, i, i+1)
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: online signing with key %s ended while waiting for the session ahead of it (%w); retry later", ErrBusy, req.KeyID, ctx.Err())
	}
	leader := it.leader
	c.mu.Unlock()
	if !leader {
		// Taken into a session that another request runs: that session
		// goes on for the others it carries, without this one's caller.
		return nil, fmt.Errorf("tss: online signing with key %s: %w after it went into a session, which goes on and may use up its presignature", req.KeyID, ctx.Err())
	}
	// This request is to run the session it was taken into, for the
	// others it carries.
	e.runCoalesced(key, spec, <-it.lead)
	return it.sig, it.err
}

// groupKey names the group of requests that may share a session.
func groupKey(s PoolSpec) string {
	var b strings.Builder
	b.WriteString(s.KeyID)
	b.WriteByte(0)
	b.WriteString(s.Path)
	for _, p := range s.Signers {
		b.WriteByte(0)
		b.WriteString(string(p))
	}
	return b.String()
}

// runCoalesced runs one session for items, settles every item, and hands
// the requests that waited meanwhile to the first of them to run next.
func (e *Engine) runCoalesced(key string, spec PoolSpec, items []*onlineItem) {
	e.signItems(spec, items)
	c := &e.coalesce
	c.mu.Lock()
	g := c.groups[key]
	if len(g.pending) == 0 {
		if g.running--; g.running == 0 {
			delete(c.groups, key)
		}
		c.mu.Unlock()
		return
	}
	n, size := 0, 0
	for n < len(g.pending) && n < maxCoalesced && (n == 0 || size+g.pending[n].size() <= maxCoalescedPayload) {
		size += g.pending[n].size()
		n++
	}
	next := slices.Clone(g.pending[:n])
	g.pending = slices.Delete(g.pending, 0, n)
	next[0].leader = true
	c.mu.Unlock()
	next[0].lead <- next
}

// itemsContext is the context of a coalesced session: it keeps the values
// of the first request's context and ends when every request's context
// has ended, as no request alone may stop the others'.
func itemsContext(items []*onlineItem) (context.Context, func()) {
	if len(items) == 1 {
		// A lone request's session ends as its context does, with its
		// error (a deadline stays a deadline).
		return items[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(items[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// signItems runs one coalesced online session for items and settles each.
func (e *Engine) signItems(spec PoolSpec, items []*onlineItem) {
	ctx, cancel := itemsContext(items)
	defer cancel()
	failAll := func(err error) {
		for _, it := range items {
			it.settle(nil, err)
		}
	}
	km, err := e.meta(ctx, spec.KeyID)
	if err != nil {
		failAll(err)
		return
	}
	pool := e.own(spec).poolKey(km.info.Epoch)
	// As SignBatch: room with the co-signers first, then presignatures.
	release, err := e.slots.acquire(ctx, e.othersOf(spec.Signers), e.cfg.JoinTimeout)
	if err != nil {
		failAll(err)
		return
	}
	defer release()
	ids, err := e.reserveUpTo(ctx, pool, len(items))
	if err != nil {
		failAll(err)
		return
	}
	defer e.release(ids)
	for _, it := range items[len(ids):] {
		it.settle(nil, fmt.Errorf("%w: the pool's ready presignatures went to the %d requests that arrived with this one; presign more", ErrNoPresignature, len(ids)))
	}
	items = items[:len(ids)]
	digests := make([][]byte, len(items))
	evidence := make([][]byte, len(items))
	for i, it := range items {
		digests[i], evidence[i] = it.digest, it.evidence
	}
	payload, err := encodeOnlineItems(ids, digests, evidence)
	if err != nil {
		failAll(err)
		return
	}
	c := &e.coalesce
	c.stats.sessions.Add(1)
	c.stats.requests.Add(uint64(len(items)))
	for {
		l := c.stats.largest.Load()
		if uint64(len(items)) <= l || c.stats.largest.CompareAndSwap(l, uint64(len(items))) {
			break
		}
	}
	prop := &Proposal{Op: OpOnline, KeyID: spec.KeyID, Parties: spec.Signers, Path: spec.Path, Payload: payload}
	op := newOnlineSession(e, prop, true)
	if err := e.proposeHolding(ctx, prop, op); err != nil {
		e.noteBurned(ctx, op, op.req, op.consumedCount(), err.Error())
		failAll(err)
		return
	}
	var failed []int
	for i, it := range items {
		if op.errs[i] != nil {
			failed = append(failed, i)
		}
		it.settle(op.sigs[i], op.errs[i])
	}
	if len(failed) > 0 {
		r := *op.req
		r.ids, r.digests, r.evidence = nil, nil, nil
		for _, i := range failed {
			r.ids = append(r.ids, op.req.ids[i])
			r.digests = append(r.digests, op.req.digests[i])
		}
		e.noteBurned(ctx, op, &r, len(failed), "requests of a coalesced session that did not sign")
	}
}

// noteBurned counts n presignatures of op that its initiator consumed
// without a signature, and reports them as burned.
func (e *Engine) noteBurned(ctx context.Context, op *onlineSession, r *onlineRequest, n int, reason string) {
	if n <= 0 || r == nil {
		return
	}
	e.presigs.mu.Lock()
	e.presigs.stats(r.pool).Burned += uint64(n)
	e.presigs.mu.Unlock()
	ev := op.eventFor(r, PresignaturesBurned)
	ev.Reason = reason
	_ = e.presigEvent(context.WithoutCancel(ctx), ev)
}
