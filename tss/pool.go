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
type PoolConfig struct {
	PoolSpec
	// Target is the number of ready presignatures to keep. Size it to the
	// signatures expected between refills: a signer set that must absorb
	// bursts of B signatures while presigning makes P per second needs a
	// target of about B.
	Target int
	// Parallel is the number of presigning sessions run at once (default 2).
	Parallel int
	// Interval is how often the pool is checked (default 5 seconds).
	Interval time.Duration
	// ReconcileEvery is how often the pool is reconciled with the other
	// signers (default 10 minutes; it is also reconciled at start).
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
// what happened to the pool since the engine started.
func (e *Engine) PoolStatus(ctx context.Context, spec PoolSpec) (PoolStatus, error) {
	km, err := e.meta(ctx, spec.KeyID)
	if err != nil {
		return PoolStatus{}, err
	}
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

// MaintainPool keeps a pool filled until ctx is done. Every signer may run
// it; only the pool's leader (the first signer in sorted order) makes new
// presignatures, so the sites do not race each other. Each site reconciles
// the pool with the others at start and periodically, so presignatures that
// some signer lost (a crash, a restore from backup) are discarded
// everywhere and never used.
func (e *Engine) MaintainPool(ctx context.Context, cfg PoolConfig) error {
	if cfg.Target <= 0 {
		return fmt.Errorf("%w: pool target must be positive", ErrBadRequest)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = 10 * time.Minute
	}
	signers, err := e.defaultSigners(ctx, cfg.KeyID, cfg.Signers)
	if err != nil {
		return err
	}
	cfg.Signers = signers
	leader := signers[0] == e.net.Self()
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
		if leader {
			st, err := e.PoolStatus(ctx, cfg.PoolSpec)
			if err == nil && st.Ready+st.Making < cfg.Target {
				if _, err := e.Presign(ctx, PresignRequest{KeyID: cfg.KeyID, Signers: signers, Path: cfg.Path, Count: cfg.Target - st.Ready - st.Making, Parallel: cfg.Parallel}); err != nil && ctx.Err() == nil {
					e.log.Warn("pool refill failed", "key", cfg.KeyID, "err", err.Error())
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reconcile makes every signer of the pool hold the same presignatures:
// each discards those that some other signer does not hold. It returns how
// many this party discarded.
func (e *Engine) Reconcile(ctx context.Context, spec PoolSpec) (int, error) {
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

type reconcileState struct {
	held    []string
	replies map[PartyID][]string
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
	st := &reconcileState{held: held, replies: make(map[PartyID][]string)}
	if _, err := e.propose(ctx, prop, st); err != nil {
		return 0, err
	}
	keep := make(map[string]int)
	for _, ids := range st.replies {
		for _, id := range ids {
			keep[id]++
		}
	}
	var drop []string
	for _, id := range held {
		if keep[id] != len(st.replies) {
			drop = append(drop, id)
		}
	}
	return e.discardIdle(ctx, pool, drop)
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
// session has reserved (it is about to consume them anyway).
func (e *Engine) discardIdle(ctx context.Context, pool string, ids []string) (int, error) {
	x := e.presigs
	x.mu.Lock()
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return x.inUse[id] })
	x.mu.Unlock()
	if len(ids) == 0 {
		return 0, nil
	}
	if err := e.discard(ctx, pool, ids); err != nil {
		return 0, err
	}
	e.log.Info("discarded presignatures not held by every signer", "count", len(ids))
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

// reconcileHooks: the initiator sends the IDs it holds; each other signer
// discards what it holds that the initiator does not, and replies with the
// IDs of the initiator's list that it holds.
func (e *Engine) reconcileHooks(ctx context.Context, prop *Proposal, initiator bool, st *reconcileState) (sessionHooks, error) {
	if len(prop.NewParties) != 0 || prop.Threshold != 0 || prop.Count != 0 || prop.Epoch != 0 {
		return sessionHooks{}, fmt.Errorf("%w: reconciliation takes only signers, path and IDs", ErrBadRequest)
	}
	theirs, err := decodeIDs(prop.Payload)
	if err != nil {
		return sessionHooks{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	km, err := e.meta(ctx, prop.KeyID)
	if err != nil {
		return sessionHooks{}, err
	}
	for _, p := range prop.Parties {
		if km.shareIDs[p] == nil {
			return sessionHooks{}, fmt.Errorf("%w: %s", ErrNotInCommittee, p)
		}
	}
	pool := PoolSpec{KeyID: prop.KeyID, Signers: prop.Parties, Path: prop.Path}.poolKey(km.info.Epoch)
	if !initiator {
		return sessionHooks{respond: func(ctx context.Context) ([]byte, error) {
			held, err := e.heldIDs(ctx, pool)
			if err != nil {
				return nil, err
			}
			var drop, both []string
			for _, id := range held {
				if slices.Contains(theirs, id) {
					both = append(both, id)
				} else {
					drop = append(drop, id)
				}
			}
			if _, err := e.discardIdle(ctx, pool, drop); err != nil {
				return nil, err
			}
			return encodeIDs(both), nil
		}}, nil
	}
	hooks := sessionHooks{immediate: true, wantResults: true, state: st}
	hooks.finish = func(context.Context) ([]byte, error) { return nil, nil }
	hooks.result = func(from PartyID, payload []byte) error {
		ids, err := decodeIDs(payload)
		if err != nil {
			return &CulpritError{Op: OpReconcile, Parties: []PartyID{from}, Reason: fmt.Errorf("%w: %v", ErrMalformedMessage, err)}
		}
		st.replies[from] = ids
		return nil
	}
	return hooks, nil
}
