package keyquorum

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keyquorum/keyquorum/tss"
)

// poolRegistry remembers the presignature pools this site holds
// presignatures of, sealed in the store (kind "node", id "pools"), so that
// Status can list them and pool maintenance resumes after a restart.
//
// A pool is recorded only once a presigning session for it has succeeded
// here, never when it is merely proposed, and a pool another site
// initiated is recorded only within Config.MaxPoolsPerKey and
// Config.MaxPoolsPerInitiator, so another member cannot add them without
// bound. A pool belongs to the site that initiated it (tss.PoolSpec): this
// site maintains its own pools and only lists the others', whose
// presignatures it holds for their initiators' signatures.
type poolRegistry struct {
	store        tss.Store
	self         tss.PartyID
	maxPerKey    int
	maxPerRemote int

	mu      sync.Mutex
	specs   map[string]tss.PoolSpec // by poolName; Initiator is the site whose session created it
	running map[string]bool
}

// errPoolLimit means a pool was not recorded because its key or its
// initiator already has as many as allowed.
var errPoolLimit = errors.New("keyquorum: presignature pool limit reached")

// poolName is the registry's key of a pool: key, sorted signers, path and
// initiator.
func poolName(s tss.PoolSpec) string {
	return s.KeyID + "|" + strings.Join(partyStrings(s.Signers), ",") + "|" + s.Path + "|" + string(s.Initiator)
}

func partyStrings(ps []tss.PartyID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

type poolRecord struct {
	KeyID     string        `json:"key_id"`
	Signers   []tss.PartyID `json:"signers"`
	Path      string        `json:"path,omitempty"`
	Initiator tss.PartyID   `json:"initiator,omitempty"`
}

func loadPools(ctx context.Context, st tss.Store, self tss.PartyID, maxPerKey, maxPerRemote int) (*poolRegistry, error) {
	r := &poolRegistry{store: st, self: self, maxPerKey: maxPerKey, maxPerRemote: maxPerRemote,
		specs: make(map[string]tss.PoolSpec), running: make(map[string]bool)}
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
		// Records written before pools had owners name no initiator: every
		// signer then kept the pool, so it is this site's own now.
		if rec.Initiator == "" {
			rec.Initiator = self
		}
		s := tss.PoolSpec{KeyID: rec.KeyID, Signers: tss.SortParties(rec.Signers), Path: rec.Path, Initiator: rec.Initiator}
		r.specs[poolName(s)] = s
	}
	return r, nil
}

// add records spec, created by a session initiator proposed, and reports
// whether it was new. A pool initiated by another site is refused with
// errPoolLimit when its key already has maxPerKey pools or its initiator
// maxPerRemote; pools this site initiated are always recorded.
func (r *poolRegistry) add(ctx context.Context, spec tss.PoolSpec, initiator tss.PartyID) (bool, error) {
	spec.Signers = tss.SortParties(spec.Signers)
	spec.Initiator = initiator
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	if _, ok := r.specs[name]; ok {
		return false, nil
	}
	if initiator != r.self {
		perKey, perInitiator := 0, 0
		for _, p := range r.specs {
			if p.KeyID == spec.KeyID {
				perKey++
			}
			if p.Initiator == initiator {
				perInitiator++
			}
		}
		switch {
		case perKey >= r.maxPerKey:
			return false, fmt.Errorf("%w: key %s has %d pools, the most MaxPoolsPerKey allows", errPoolLimit, spec.KeyID, perKey)
		case perInitiator >= r.maxPerRemote:
			return false, fmt.Errorf("%w: %s initiated %d pools, the most MaxPoolsPerInitiator allows", errPoolLimit, initiator, perInitiator)
		}
	}
	r.specs[name] = spec
	recs := make([]poolRecord, 0, len(r.specs))
	for _, p := range r.sortedLocked() {
		recs = append(recs, poolRecord{KeyID: p.KeyID, Signers: p.Signers, Path: p.Path, Initiator: p.Initiator})
	}
	data, err := json.Marshal(recs)
	if err != nil {
		delete(r.specs, name)
		return false, err
	}
	// Version 1 is replaced atomically each time.
	if err := r.store.Put(ctx, kindNode, idPools, 1, data); err != nil {
		delete(r.specs, name)
		return false, fmt.Errorf("keyquorum: remember presignature pool: %w", err)
	}
	return true, nil
}

func (r *poolRegistry) sortedLocked() []tss.PoolSpec {
	out := make([]tss.PoolSpec, 0, len(r.specs))
	for _, p := range r.specs {
		out = append(out, p)
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

// maintain keeps spec's pool at Config.PoolTarget until Close, when it is
// this site's own; another initiator's pool is its initiator's to keep.
func (n *Node) maintain(spec tss.PoolSpec) {
	if spec.Initiator != n.party || n.cfg.PoolTarget <= 0 || n.eng == nil || n.runCtx.Err() != nil || !n.pools.startOnce(spec) {
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

// policy is the engine's Policy hook: the operator's reshare
// authorizations, the signing policy, the user's Policy, then the node's
// own bookkeeping of what it joins.
func (n *Node) policy(ctx context.Context, p *tss.Proposal) error {
	if err := n.checkReshare(ctx, p); err != nil {
		return err
	}
	p, err := n.checkProposal(ctx, p)
	if err != nil {
		return err
	}
	if n.cfg.Policy != nil {
		if err := n.cfg.Policy(ctx, p); err != nil {
			return err
		}
	}
	n.ops.joined(p, n.party)
	return nil
}

// completed is the engine's Completed hook: a presigning session that
// succeeded here records its pool, which is then maintained.
func (n *Node) completed(ctx context.Context, p *tss.Proposal) {
	sid := p.SessionID()
	fields := map[string]string{"op": string(p.Op), "session": hex.EncodeToString(sid[:]), "key_id": p.KeyID,
		"initiator": string(p.Initiator), "parties": parties(p.Parties), "path": p.Path}
	if p.Count > 0 {
		fields["count"] = strconv.Itoa(p.Count)
	}
	n.recordQuiet(auditSessionDone, fields)
	if p.Op == tss.OpCommit {
		n.reshareCommitted(ctx, p)
	}
	if p.Op == tss.OpKeygen {
		if info, err := n.eng.Key(ctx, p.KeyID); err == nil {
			n.recordQuiet(auditKeygen, map[string]string{"key_id": info.ID, "public_key": hex.EncodeToString(info.PublicKey),
				"threshold": strconv.Itoa(info.Threshold), "parties": parties(info.Parties)})
		}
	}
	if p.Op != tss.OpPresign {
		return
	}
	spec := tss.PoolSpec{KeyID: p.KeyID, Signers: tss.SortParties(p.Parties), Path: p.Path, Initiator: p.Initiator}
	if _, err := n.pools.add(ctx, spec, p.Initiator); err != nil {
		// Bookkeeping only: the presignatures are stored and usable.
		n.log.Warn("presignature pool not remembered", "key", p.KeyID, "signers", fmt.Sprint(p.Parties),
			"path", p.Path, "initiator", string(p.Initiator), "err", err.Error())
		return
	}
	n.maintain(spec)
}
