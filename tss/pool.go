package tss

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// PoolConfig describes a presignature pool that MaintainPool keeps filled.
// Target is required. A zero count or duration takes its default; a
// negative one makes MaintainPool fail with an error wrapping
// ErrInvalidConfig.
type PoolConfig struct {
	PoolSpec
	// Target is the number of ready presignatures to keep. Size it to the
	// signatures expected between refills: a signer set that must absorb
	// bursts of B signatures while presigning makes P per second needs a
	// target of about B.
	Target int
	// Parallel is the number of presigning sessions run at once. Default
	// DefaultPresignParallel.
	Parallel int
	// Interval is how often the pool is checked. Default
	// DefaultPoolInterval.
	Interval time.Duration
	// ReconcileEvery is how often the pool is reconciled with the other
	// signers; it is also reconciled at start. Default
	// DefaultReconcileEvery.
	ReconcileEvery time.Duration
}

// PoolStatus reports a pool as this party sees it.
type PoolStatus struct {
	// Ready is the number of presignatures held and not reserved.
	Ready int `json:"ready"`
	// Reserved is the number reserved by online sessions in flight.
	Reserved int `json:"reserved"`
	// Making is the number being made by presigning sessions now.
	Making int `json:"making"`
	PresignPoolStats
}

// PoolStatus reports how many presignatures of spec this party holds and
// what happened to the pool since the engine started. An empty
// spec.Initiator means this party's own pool; another signer's pool holds
// the shares this party keeps for that signer's signatures.
func (e *Engine) PoolStatus(ctx context.Context, spec PoolSpec) (PoolStatus, error) {
	km, err := e.meta(ctx, spec.KeyID)
	if err != nil {
		return PoolStatus{}, err
	}
	spec = e.own(spec)
	spec.Signers = SortParties(spec.Signers)
	pool := spec.poolKey(km.info.Epoch)
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return PoolStatus{}, err
	}
	st := PoolStatus{Making: x.making[pool], PresignPoolStats: *x.stats(pool)}
	for _, id := range x.pools[pool] {
		if x.inUse[id] {
			st.Reserved++
		} else {
			st.Ready++
		}
	}
	return st, nil
}

// MaintainPool keeps this party's own pool (see PoolSpec) filled until ctx
// is done: every signer that initiates GG20 signing runs it for itself, with
// a target sized to the signatures it initiates, and the pools of different
// initiators never compete for a presignature. It reconciles the pool with
// the other signers at start and periodically, so presignatures that some
// signer lost (a crash, a restore from backup) are discarded everywhere and
// never used. An invalid cfg is reported at once with an error wrapping
// ErrInvalidConfig; a cfg naming another initiator wraps ErrBadRequest.
func (e *Engine) MaintainPool(ctx context.Context, cfg PoolConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if cfg.Initiator != "" && cfg.Initiator != e.net.Self() {
		return fmt.Errorf("%w: %s can maintain only its own pool, not %s's", ErrBadRequest, e.net.Self(), cfg.Initiator)
	}
	signers, err := e.defaultSigners(ctx, cfg.KeyID, cfg.Signers)
	if err != nil {
		return err
	}
	cfg.Signers = signers
	cfg.Initiator = e.net.Self()
	lastReconcile := time.Time{}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		if time.Since(lastReconcile) >= cfg.ReconcileEvery {
			if _, err := e.Reconcile(ctx, cfg.PoolSpec); err != nil && ctx.Err() == nil {
				e.log.Warn("pool reconciliation failed", "key", cfg.KeyID, "err", err.Error())
			} else {
				lastReconcile = time.Now()
			}
		}
		st, err := e.PoolStatus(ctx, cfg.PoolSpec)
		if err == nil && st.Ready+st.Making < cfg.Target {
			if _, err := e.Presign(ctx, PresignRequest{KeyID: cfg.KeyID, Signers: signers, Path: cfg.Path, Count: cfg.Target - st.Ready - st.Making, Parallel: cfg.Parallel}); err != nil && ctx.Err() == nil {
				e.log.Warn("pool refill failed", "key", cfg.KeyID, "err", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reconcile makes every signer of this party's own pool (see PoolSpec)
// hold the same presignatures: each discards those that some other signer
// does not hold. It returns how many this party discarded. A spec naming
// another initiator is refused with ErrBadRequest: each initiator
// reconciles its own pool.
func (e *Engine) Reconcile(ctx context.Context, spec PoolSpec) (int, error) {
	if spec.Initiator != "" && spec.Initiator != e.net.Self() {
		return 0, fmt.Errorf("%w: %s can reconcile only its own pool, not %s's", ErrBadRequest, e.net.Self(), spec.Initiator)
	}
	spec.Initiator = e.net.Self()
	signers, err := e.defaultSigners(ctx, spec.KeyID, spec.Signers)
	if err != nil {
		return 0, err
	}
	spec.Signers = signers
	total := 0
	// With more than two signers a second pass spreads the intersection to
	// every participant.
	passes := 1
	if len(signers) > 2 {
		passes = 2
	}
	for i := 0; i < passes; i++ {
		n, err := e.reconcileOnce(ctx, spec)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (e *Engine) reconcileOnce(ctx context.Context, spec PoolSpec) (int, error) {
	km, err := e.meta(ctx, spec.KeyID)
	if err != nil {
		return 0, err
	}
	pool := spec.poolKey(km.info.Epoch)
	held, err := e.heldIDs(ctx, pool)
	if err != nil {
		return 0, err
	}
	prop := &Proposal{Op: OpReconcile, KeyID: spec.KeyID, Parties: spec.Signers, Path: spec.Path, Payload: encodeIDs(held)}
	op := newReconcileSession(e, prop)
	if err := e.propose(ctx, prop, op); err != nil {
		return 0, err
	}
	keep := make(map[string]int)
	for _, ids := range op.replies {
		for _, id := range ids {
			keep[id]++
		}
	}
	var drop []string
	for _, id := range held {
		if keep[id] != len(op.replies) {
			drop = append(drop, id)
		}
	}
	return e.discardIdle(ctx, pool, drop, prop, km.info.Epoch)
}

// heldIDs lists every presignature of pool this party holds, reserved or not.
func (e *Engine) heldIDs(ctx context.Context, pool string) ([]string, error) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return nil, err
	}
	return slices.Clone(x.pools[pool]), nil
}

// discardIdle discards the given presignatures except those an online
// session has reserved (it is about to consume them anyway), for the
// reconciliation session prop.
func (e *Engine) discardIdle(ctx context.Context, pool string, ids []string, prop *Proposal, epoch uint64) (int, error) {
	x := e.presigs
	x.mu.Lock()
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return x.inUse[id] })
	x.mu.Unlock()
	if len(ids) == 0 {
		return 0, nil
	}
	if err := e.discard(ctx, pool, ids, false); err != nil {
		return 0, err
	}
	e.log.Info("discarded presignatures not held by every signer", "count", len(ids))
	_ = e.presigEvent(ctx, PresignatureEvent{Change: PresignaturesDiscarded, Session: prop.SessionID(), Pool: pool,
		Spec: prop.poolSpec(), Epoch: epoch, IDs: ids, Reason: "reconciliation: another signer does not hold them"})
	return len(ids), nil
}

func encodeIDs(ids []string) []byte {
	out := make([]byte, 0, 32*len(ids))
	for _, id := range ids {
		b, _ := hex.DecodeString(id)
		out = append(out, b...)
	}
	return out
}

func decodeIDs(b []byte) ([]string, error) {
	if len(b)%32 != 0 {
		return nil, errors.New("presignature ID list is not a multiple of 32 bytes")
	}
	out := make([]string, len(b)/32)
	for i := range out {
		out[i] = hex.EncodeToString(b[32*i : 32*i+32])
	}
	return out, nil
}

// reconcileSession is a one-shot pool reconciliation: the initiator sends
// the IDs it holds; each other signer discards what it holds that the
// initiator does not, and replies with the IDs of the initiator's list
// that it holds.
type reconcileSession struct {
	e    *Engine
	prop *Proposal

	// set by check
	theirs []string // the initiator's IDs
	pool   string
	epoch  uint64

	replies map[PartyID][]string // at the initiator: each signer's reply
}

var _ oneShotOp = (*reconcileSession)(nil)

func newReconcileSession(e *Engine, prop *Proposal) *reconcileSession {
	return &reconcileSession{e: e, prop: prop, replies: make(map[PartyID][]string)}
}

// check refuses anything but signers, path and IDs, and signers outside
// the key's committee, and keeps the pool.
func (c *reconcileSession) check(ctx context.Context) error {
	prop := c.prop
	if len(prop.NewParties) != 0 || prop.Threshold != 0 || prop.Count != 0 || prop.Epoch != 0 {
		return fmt.Errorf("%w: reconciliation takes only signers, path and IDs", ErrBadRequest)
	}
	theirs, err := decodeIDs(prop.Payload)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	km, err := c.e.meta(ctx, prop.KeyID)
	if err != nil {
		return err
	}
	for _, p := range prop.Parties {
		if km.shareIDs[p] == nil {
			return fmt.Errorf("%w: %s", ErrNotInCommittee, p)
		}
	}
	c.theirs = theirs
	c.pool, c.epoch = prop.poolSpec().poolKey(km.info.Epoch), km.info.Epoch
	return nil
}

// wantReports is true: the initiator waits for every signer's reply.
func (c *reconcileSession) wantReports() bool { return true }

// newProtocol is never called: a one-shot session runs no protocol.
func (c *reconcileSession) newProtocol(context.Context) (protocol, error) {
	return nil, fmt.Errorf("%w: reconciliation runs no protocol rounds", ErrProtocol)
}

// respond, on a participant, discards what the initiator does not hold
// and returns the IDs both hold.
func (c *reconcileSession) respond(ctx context.Context) ([]byte, error) {
	held, err := c.e.heldIDs(ctx, c.pool)
	if err != nil {
		return nil, err
	}
	var drop, both []string
	for _, id := range held {
		if slices.Contains(c.theirs, id) {
			both = append(both, id)
		} else {
			drop = append(drop, id)
		}
	}
	if _, err := c.e.discardIdle(ctx, c.pool, drop, c.prop, c.epoch); err != nil {
		return nil, err
	}
	return encodeIDs(both), nil
}

// finish has nothing to do on the initiator: reconcileOnce compares the
// replies once the session ended.
func (c *reconcileSession) finish(context.Context) ([]byte, error) { return nil, nil }

// report keeps one signer's reply; a malformed one is blamed on its
// sender.
func (c *reconcileSession) report(from PartyID, payload []byte) error {
	ids, err := decodeIDs(payload)
	if err != nil {
		return &CulpritError{Op: OpReconcile, Parties: []PartyID{from}, Reason: fmt.Errorf("%w: %v", ErrMalformedMessage, err)}
	}
	c.replies[from] = ids
	return nil
}

// verify has nothing to check: reconcileOnce uses the replies.
func (c *reconcileSession) verify() error { return nil }

// Drain discards every ready presignature this party holds in spec's pool
// (an empty spec.Initiator means this party's own pool) and returns how
// many. Each is marked used in its batch's HSM ledger first, as a
// signature would, so no restored copy of the store brings it back.
// Presignatures an online session has reserved are left to it, and those
// still being made are stored when their session ends: stop whatever
// refills the pool (MaintainPool) before draining it.
//
// Drain changes only this party. The other signers keep their parts until
// the pool's initiator reconciles it (Reconcile), which then discards them
// everywhere; until then they are unusable, since this party no longer
// holds its part.
func (e *Engine) Drain(ctx context.Context, spec PoolSpec) (int, error) {
	km, err := e.meta(ctx, spec.KeyID)
	if err != nil {
		return 0, err
	}
	if spec.Signers, err = e.defaultSigners(ctx, spec.KeyID, spec.Signers); err != nil {
		return 0, err
	}
	spec = e.own(spec)
	pool := spec.poolKey(km.info.Epoch)
	ids, err := e.readyIDs(ctx, pool, true)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	if err := e.discard(ctx, pool, ids, true); err != nil {
		e.release(ids)
		return 0, fmt.Errorf("tss: drain pool %s of key %s: %w", pool, spec.KeyID, err)
	}
	e.log.Info("drained presignature pool", "key", spec.KeyID, "pool", pool, "count", len(ids))
	_ = e.presigEvent(ctx, PresignatureEvent{Change: PresignaturesDiscarded, Pool: pool, Spec: spec,
		Epoch: km.info.Epoch, IDs: ids, Reason: "the pool was drained"})
	return len(ids), nil
}
