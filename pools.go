package keyquorum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/keyquorum/keyquorum/tss"
)

// poolRegistry remembers every presignature pool this site has presigned
// for, sealed in the store (kind "node", id "pools"), so that Status can
// list them and pool maintenance resumes after a restart.
type poolRegistry struct {
	store tss.Store

	mu      sync.Mutex
	specs   map[string]tss.PoolSpec
	running map[string]bool
}

// poolName is the registry's key of a pool: key, sorted signers and path.
func poolName(s tss.PoolSpec) string {
	return s.KeyID + "|" + strings.Join(partyStrings(s.Signers), ",") + "|" + s.Path
}

func partyStrings(ps []tss.PartyID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

type poolRecord struct {
	KeyID   string        `json:"key_id"`
	Signers []tss.PartyID `json:"signers"`
	Path    string        `json:"path,omitempty"`
}

func loadPools(ctx context.Context, st tss.Store) (*poolRegistry, error) {
	r := &poolRegistry{store: st, specs: make(map[string]tss.PoolSpec), running: make(map[string]bool)}
	data, _, err := st.Get(ctx, kindNode, idPools)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyquorum: load the list of presignature pools: %w", err)
	}
	var recs []poolRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("keyquorum: the list of presignature pools in the store is not valid JSON: %w", err)
	}
	for _, rec := range recs {
		s := tss.PoolSpec{KeyID: rec.KeyID, Signers: tss.SortParties(rec.Signers), Path: rec.Path}
		r.specs[poolName(s)] = s
	}
	return r, nil
}

// add records spec and reports whether it was new.
func (r *poolRegistry) add(ctx context.Context, spec tss.PoolSpec) (bool, error) {
	spec.Signers = tss.SortParties(spec.Signers)
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	if _, ok := r.specs[name]; ok {
		return false, nil
	}
	r.specs[name] = spec
	recs := make([]poolRecord, 0, len(r.specs))
	for _, s := range r.sortedLocked() {
		recs = append(recs, poolRecord{KeyID: s.KeyID, Signers: s.Signers, Path: s.Path})
	}
	data, err := json.Marshal(recs)
	if err != nil {
		return true, err
	}
	// Version 1 is replaced atomically each time: the list is small and
	// only ever grows.
	if err := r.store.Put(ctx, kindNode, idPools, 1, data); err != nil {
		return true, fmt.Errorf("keyquorum: remember presignature pool: %w", err)
	}
	return true, nil
}

func (r *poolRegistry) sortedLocked() []tss.PoolSpec {
	out := make([]tss.PoolSpec, 0, len(r.specs))
	for _, s := range r.specs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b tss.PoolSpec) int { return strings.Compare(poolName(a), poolName(b)) })
	return out
}

func (r *poolRegistry) list() []tss.PoolSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sortedLocked()
}

// startOnce reports whether the caller should start maintaining spec.
func (r *poolRegistry) startOnce(spec tss.PoolSpec) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	if r.running[name] {
		return false
	}
	r.running[name] = true
	return true
}

// maintain keeps spec's pool at Config.PoolTarget until Close.
func (n *Node) maintain(spec tss.PoolSpec) {
	if n.cfg.PoolTarget <= 0 || n.eng == nil || n.runCtx.Err() != nil || !n.pools.startOnce(spec) {
		return
	}
	n.goBackground(func(ctx context.Context) {
		n.log.Info("maintaining presignature pool", "key", spec.KeyID, "signers", fmt.Sprint(spec.Signers),
			"path", spec.Path, "target", n.cfg.PoolTarget)
		err := n.eng.MaintainPool(ctx, tss.PoolConfig{PoolSpec: spec, Target: n.cfg.PoolTarget, Parallel: n.cfg.PoolParallel})
		if err != nil && ctx.Err() == nil {
			n.log.Warn("presignature pool not maintained", "key", spec.KeyID, "signers", fmt.Sprint(spec.Signers), "err", err.Error())
		}
	})
}

// policy is the engine's Policy hook: the user's Policy first, then the
// node's own bookkeeping of what it joins.
func (n *Node) policy(ctx context.Context, p *tss.Proposal) error {
	if n.cfg.Policy != nil {
		if err := n.cfg.Policy(ctx, p); err != nil {
			return err
		}
	}
	n.ops.joined(p, n.party)
	if p.Op == tss.OpPresign {
		spec := tss.PoolSpec{KeyID: p.KeyID, Signers: p.Parties, Path: p.Path}
		if _, err := n.pools.add(ctx, spec); err != nil {
			// Bookkeeping only: the session itself is fine.
			n.log.Warn("presignature pool not remembered", "key", p.KeyID, "err", err.Error())
		}
		n.maintain(spec)
	}
	return nil
}
