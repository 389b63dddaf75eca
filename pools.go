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
	targets map[string]int          // by poolName: the operator's target for an own pool (SetPoolTarget)
	running map[string]context.CancelFunc
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
	// Target is the operator's target for this site's own pool
	// (SetPoolTarget); absent, the pool keeps Config.PoolTarget.
	Target *int `json:"target,omitempty"`
}

func loadPools(ctx context.Context, st tss.Store, self tss.PartyID, maxPerKey, maxPerRemote int) (*poolRegistry, error) {
	r := &poolRegistry{store: st, self: self, maxPerKey: maxPerKey, maxPerRemote: maxPerRemote,
		specs: make(map[string]tss.PoolSpec), targets: make(map[string]int), running: make(map[string]context.CancelFunc)}
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
		if rec.Target != nil && rec.Initiator == self {
			r.targets[poolName(s)] = *rec.Target
		}
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
	if err := r.saveLocked(ctx); err != nil {
		delete(r.specs, name)
		return false, fmt.Errorf("keyquorum: remember presignature pool: %w", err)
	}
	return true, nil
}

// saveLocked writes the registry to the store, r.mu held.
func (r *poolRegistry) saveLocked(ctx context.Context) error {
	recs := make([]poolRecord, 0, len(r.specs))
	for _, p := range r.sortedLocked() {
		rec := poolRecord{KeyID: p.KeyID, Signers: p.Signers, Path: p.Path, Initiator: p.Initiator}
		if t, ok := r.targets[poolName(p)]; ok {
			rec.Target = &t
		}
		recs = append(recs, rec)
	}
	data, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	// Version 1 is replaced atomically each time.
	return r.store.Put(ctx, kindNode, idPools, 1, data)
}

// setTarget records the operator's target for this site's own pool spec,
// recording the pool itself if it is new, and reports the target it had
// before (def when it had none).
func (r *poolRegistry) setTarget(ctx context.Context, spec tss.PoolSpec, target, def int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	_, known := r.specs[name]
	old, had := r.targets[name]
	if !had {
		old = def
	}
	r.specs[name] = spec
	r.targets[name] = target
	if err := r.saveLocked(ctx); err != nil {
		if !known {
			delete(r.specs, name)
		}
		if had {
			r.targets[name] = old
		} else {
			delete(r.targets, name)
		}
		return 0, fmt.Errorf("keyquorum: store the target of presignature pool: %w", err)
	}
	return old, nil
}

// target returns the number of ready presignatures this site keeps in its
// own pool spec: the operator's target, else def. Other sites' pools are
// theirs to keep: 0.
func (r *poolRegistry) target(spec tss.PoolSpec, self tss.PartyID, def int) int {
	if spec.Initiator != self {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.targets[poolName(spec)]; ok {
		return t
	}
	return def
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

// startOnce reports whether the caller should start maintaining spec,
// and if so remembers cancel as the way to stop it.
func (r *poolRegistry) startOnce(spec tss.PoolSpec, cancel context.CancelFunc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	if r.running[name] != nil {
		return false
	}
	r.running[name] = cancel
	return true
}

// stop stops maintaining spec, if it was.
func (r *poolRegistry) stop(spec tss.PoolSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := poolName(spec)
	if cancel := r.running[name]; cancel != nil {
		cancel()
		delete(r.running, name)
	}
}

// maintain keeps spec's pool at its target (the operator's, else
// Config.PoolTarget) until Close or until the target changes, when it is
// this site's own; another initiator's pool is its initiator's to keep.
func (n *Node) maintain(spec tss.PoolSpec) {
	target := n.pools.target(spec, n.party, n.cfg.PoolTarget)
	if target <= 0 || n.eng == nil || n.runCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(n.runCtx)
	if !n.pools.startOnce(spec, cancel) {
		cancel()
		return
	}
	n.goBackground(func(context.Context) {
		defer cancel()
		n.log.Info("maintaining presignature pool", "key", spec.KeyID, "signers", fmt.Sprint(spec.Signers),
			"path", spec.Path, "target", target)
		err := n.eng.MaintainPool(ctx, tss.PoolConfig{PoolSpec: spec, Target: target, Parallel: n.cfg.PoolParallel})
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

// MaxPoolTarget is the largest target SetPoolTarget accepts. Each ready
// presignature costs a few KiB of sealed store on every signer.
const MaxPoolTarget = 10000

// SetPoolTarget sets how many ready presignatures this site keeps in its
// own pool req names (req.Initiator empty or this site) and restarts its
// maintenance with the new target; 0 stops refilling it (what is ready
// stays usable). A pool this site has never presigned for is created:
// maintenance makes its first presignatures. The target is remembered in
// the store across restarts, overrides Config.PoolTarget for this pool,
// and each change is in the audit log (pool.target). It returns the
// pool's status.
//
// Another site's pool is refused with an error wrapping
// tss.ErrBadRequest: its initiator sizes it. A target below 0 or above
// MaxPoolTarget is refused the same way.
func (n *Node) SetPoolTarget(ctx context.Context, req PoolRequest, target int) (PoolStatus, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return PoolStatus{}, err
	}
	defer done()
	spec, err := n.ownPool(ctx, req, "set the target of")
	if err != nil {
		return PoolStatus{}, err
	}
	if target < 0 || target > MaxPoolTarget {
		return PoolStatus{}, fmt.Errorf("keyquorum: set the target of a presignature pool of key %s: %w: the target is %d, it must be 0 to %d",
			req.KeyID, tss.ErrBadRequest, target, MaxPoolTarget)
	}
	old := n.pools.target(spec, n.party, n.cfg.PoolTarget)
	if err := n.record(ctx, "pool.target", map[string]string{"key_id": spec.KeyID, "signers": parties(spec.Signers),
		"path": spec.Path, "target": strconv.Itoa(target), "previous": strconv.Itoa(old)}); err != nil {
		return PoolStatus{}, fmt.Errorf("keyquorum: set the target of a presignature pool of key %s on %s: %w", spec.KeyID, n.party, err)
	}
	if _, err := n.pools.setTarget(ctx, spec, target, n.cfg.PoolTarget); err != nil {
		return PoolStatus{}, err
	}
	n.pools.stop(spec)
	n.maintain(spec)
	n.log.Info("presignature pool target set", "key", spec.KeyID, "signers", fmt.Sprint(spec.Signers),
		"path", spec.Path, "target", target, "previous", old)
	return n.poolStatus(ctx, spec)
}

// DrainResult reports what DrainPool did.
type DrainResult struct {
	// Discarded is how many ready presignatures this site discarded.
	Discarded int `json:"discarded"`
	// CoSigners reports, for this site's own pool, whether the other
	// signers discarded their parts too (a reconciliation). It is false
	// for another site's pool, whose initiator reconciles it.
	CoSigners bool `json:"co_signers"`
	// CoSignersError says why the other signers could not be reached, if
	// they could not: their parts are unusable (this site holds none of
	// the drained presignatures), and the next reconciliation discards
	// them.
	CoSignersError string `json:"co_signers_error,omitempty"`
	// Pool is the pool's state on this site afterwards.
	Pool PoolStatus `json:"pool"`
}

// DrainPool discards every ready presignature this site holds in the pool
// req names, marking each used in the HSM ledger as a signature would, so
// that no restored backup brings one back. For this site's own pool it
// first sets the pool's target to 0 (as SetPoolTarget would), so nothing
// refills it, and then has the other signers discard their parts too;
// for another site's pool (req.Initiator) it discards only this site's
// parts, which leaves that site's presignatures unusable: its next
// signature from the pool fails and burns one, and its reconciliation
// discards the rest. Presignatures an online signature in flight has
// reserved are left to it. Every drain is in the audit log (pool.drain,
// then presig.discarded).
func (n *Node) DrainPool(ctx context.Context, req PoolRequest) (*DrainResult, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	spec := tss.PoolSpec{KeyID: req.KeyID, Initiator: req.Initiator}
	if spec.Initiator == "" {
		spec.Initiator = n.party
	}
	if spec.Path, err = canonicalPath(req.Path); err != nil {
		return nil, err
	}
	if spec.Signers, err = n.signers(ctx, req.KeyID, req.Signers); err != nil {
		return nil, err
	}
	own := spec.Initiator == n.party
	if err := n.record(ctx, "pool.drain", map[string]string{"key_id": spec.KeyID, "signers": parties(spec.Signers),
		"path": spec.Path, "initiator": string(spec.Initiator)}); err != nil {
		return nil, fmt.Errorf("keyquorum: drain a presignature pool of key %s on %s: %w", spec.KeyID, n.party, err)
	}
	if own {
		if _, err := n.pools.setTarget(ctx, spec, 0, n.cfg.PoolTarget); err != nil {
			return nil, err
		}
		n.pools.stop(spec)
	}
	res := &DrainResult{}
	if res.Discarded, err = n.eng.Drain(ctx, spec); err != nil {
		return nil, fmt.Errorf("keyquorum: drain a presignature pool of key %s on %s: %w", spec.KeyID, n.party, err)
	}
	if own {
		if _, err := n.eng.Reconcile(ctx, spec); err != nil {
			res.CoSignersError = err.Error()
			n.log.Warn("drained pool not reconciled with the other signers; their parts are unusable and the next reconciliation discards them",
				"key", spec.KeyID, "err", err.Error())
		} else {
			res.CoSigners = true
		}
	}
	res.Pool, err = n.poolStatus(ctx, spec)
	return res, err
}

// ownPool resolves req to one of this site's own pools; what names the
// operation for errors.
func (n *Node) ownPool(ctx context.Context, req PoolRequest, what string) (tss.PoolSpec, error) {
	if req.Initiator != "" && req.Initiator != n.party {
		return tss.PoolSpec{}, fmt.Errorf("keyquorum: %s a presignature pool of key %s: %w: the pool belongs to %s, which sizes it; this site (%s) sizes only its own",
			what, req.KeyID, tss.ErrBadRequest, req.Initiator, n.party)
	}
	spec := tss.PoolSpec{KeyID: req.KeyID, Initiator: n.party}
	var err error
	if spec.Path, err = canonicalPath(req.Path); err != nil {
		return tss.PoolSpec{}, err
	}
	if spec.Signers, err = n.signers(ctx, req.KeyID, req.Signers); err != nil {
		return tss.PoolSpec{}, err
	}
	if err := n.checkCommittee(ctx, req.KeyID, spec.Signers); err != nil {
		return tss.PoolSpec{}, err
	}
	return spec, nil
}
