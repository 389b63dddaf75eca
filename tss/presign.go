package tss

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// PresignRequest asks for GG20 presignatures.
type PresignRequest struct {
	// KeyID names the key.
	KeyID string
	// Signers are the parties that will sign with these presignatures; a
	// presignature can only be used by exactly this set. Empty means the
	// first M parties of the committee starting with this one.
	Signers []PartyID
	// Path is the BIP-32 derivation path the presignatures are for ("" for
	// the root key). A presignature can only sign under this path.
	Path string
	// Count is the number of presignatures to make. Default
	// DefaultPresignCount.
	Count int
	// Parallel is the number of presigning sessions run at once. Default
	// DefaultPresignParallel. Each session makes up to 32 presignatures in
	// lockstep.
	Parallel int
}

// PresignResult reports what a Presign call made.
type PresignResult struct {
	// Made is the number of presignatures made and stored on every signer.
	Made int
	// Pool is the pool they were added to.
	Pool PoolSpec
}

// Presign runs the six offline GG20 rounds with the signers and leaves each
// of them the new presignatures, sealed in its store. They go to this
// party's own pool: only this party can spend them (see PoolSpec). It runs Count/32
// sessions, Parallel at a time; on error it returns what was made so far
// with the first error.
func (e *Engine) Presign(ctx context.Context, req PresignRequest) (*PresignResult, error) {
	signers, err := e.defaultSigners(ctx, req.KeyID, req.Signers)
	if err != nil {
		return nil, err
	}
	count := req.Count
	if count <= 0 {
		count = DefaultPresignCount
	}
	par := req.Parallel
	if par <= 0 {
		par = DefaultPresignParallel
	}
	res := &PresignResult{Pool: e.own(PoolSpec{KeyID: req.KeyID, Signers: signers, Path: req.Path})}
	km, err := e.meta(ctx, req.KeyID)
	if err != nil {
		return nil, err
	}
	pool := res.Pool.poolKey(km.info.Epoch)
	e.presigs.mu.Lock()
	e.presigs.making[pool] += count
	e.presigs.mu.Unlock()
	defer func() {
		e.presigs.mu.Lock()
		e.presigs.making[pool] -= count
		e.presigs.mu.Unlock()
	}()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, par)
	for left := count; left > 0; {
		n := min(left, maxBatch)
		left -= n
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-sem }()
			prop := &Proposal{Op: OpPresign, KeyID: req.KeyID, Parties: signers, Path: req.Path, Count: n}
			err := e.propose(ctx, prop, newPresignSession(e, prop))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			res.Made += n
		}(n)
	}
	wg.Wait()
	return res, firstErr
}

// precompCache keeps the prepared ring-Pedersen parameters of each key's committee.
type precompCache struct {
	mu sync.Mutex
	m  map[string]*gg20.Precomputed
}

func (c *precompCache) get(keyID string, epoch uint64, data *keygen.LocalPartySaveData) *gg20.Precomputed {
	k := fmt.Sprintf("%s/%d", keyID, epoch)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*gg20.Precomputed)
	}
	if p := c.m[k]; p != nil {
		return p
	}
	p := gg20.Precompute(data)
	c.m[k] = p
	return p
}

// instanceSessionID gives presigning instance i of a session its own
// session ID, bound into all of its proofs.
func instanceSessionID(sid SessionID, i int) [32]byte {
	h := sha256.New()
	h.Write([]byte("keyquorum/presign-instance/v1"))
	h.Write(sid[:])
	h.Write([]byte{byte(i >> 8), byte(i)})
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// presignSession is a GG20 presigning session: the six offline rounds for
// Count presignatures in lockstep, after which every signer stores the
// batch sealed and reports (an empty result).
type presignSession struct {
	e    *Engine
	prop *Proposal

	// set by check
	target *signingTarget
	epoch  uint64 // the epoch of the share the proposal was checked against
	pool   string

	proto *gg20Protocol // set up by newProtocol, owned by the session goroutine
}

var _ sessionOp = (*presignSession)(nil)

func newPresignSession(e *Engine, prop *Proposal) *presignSession {
	return &presignSession{e: e, prop: prop}
}

// check runs the checks of signing (with a placeholder digest), requires
// two signers or more and the HSM ledger, and keeps the epoch and pool.
func (p *presignSession) check(ctx context.Context) error {
	e, prop := p.e, p.prop
	if prop.Count < 1 || prop.Count > maxBatch {
		return fmt.Errorf("%w: a presigning session makes 1 to %d presignatures", ErrBadRequest, maxBatch)
	}
	if len(prop.Payload) != 0 {
		return fmt.Errorf("%w: presigning takes no payload", ErrBadRequest)
	}
	// The same checks as signing, with a placeholder digest.
	probe := *prop
	probe.Count = 0
	probe.Payload = make([]byte, 32)
	probe.Payload[31] = 1
	share, target, err := e.checkSigning(ctx, &probe)
	if err != nil {
		return err
	}
	if len(prop.Parties) < 2 {
		share.wipe()
		return fmt.Errorf("%w: GG20 needs at least two signers", ErrBadRequest)
	}
	if _, err := e.ledger(); err != nil {
		share.wipe()
		return err
	}
	// The proposal was checked against this epoch's share; the session
	// runs with exactly that share and stores into that epoch's pool.
	p.target = target
	p.epoch = share.Epoch
	p.pool = PoolSpec{KeyID: prop.KeyID, Signers: prop.Parties, Path: prop.Path, Initiator: prop.Initiator}.poolKey(p.epoch)
	share.wipe()
	return nil
}

// wantReports is true: the initiator waits until every signer stored the
// batch.
func (p *presignSession) wantReports() bool { return true }

// newProtocol unseals the share of the checked epoch and builds one
// gg20.Presigner per presignature.
func (p *presignSession) newProtocol(ctx context.Context) (protocol, error) {
	e, prop := p.e, p.prop
	share, err := e.loadShare(ctx, prop.KeyID)
	if err != nil {
		return nil, err
	}
	defer share.wipe()
	if share.Epoch != p.epoch {
		return nil, fmt.Errorf("%w: key %s moved from epoch %d to %d (a reshare committed) while this presigning session was set up; propose it again", ErrBadRequest, prop.KeyID, p.epoch, share.Epoch)
	}
	var ids []*big.Int
	for _, q := range prop.Parties {
		id, ok := share.shareID(q)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotInCommittee, q)
		}
		ids = append(ids, id)
	}
	// gg20 orders signers by share ID; keep the party list in that order.
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return ids[a].Cmp(ids[b]) })
	signers := make([]PartyID, len(order))
	sorted := make([]*big.Int, len(order))
	for k, i := range order {
		signers[k], sorted[k] = prop.Parties[i], ids[i]
	}
	self := slices.Index(signers, e.net.Self())
	pre := e.precomp.get(share.KeyID, share.Epoch, share.Data)
	sid := prop.SessionID()
	rnd, err := e.sessionRand(OpPresign)
	if err != nil {
		return nil, err
	}
	instances := make([]*gg20.Presigner, prop.Count)
	for i := range instances {
		in, err := gg20.NewPresigner(gg20.Config{
			SessionID:   instanceSessionID(sid, i),
			Key:         share.Data,
			Signers:     sorted,
			Tweak:       p.target.tweak,
			Rand:        rnd,
			Precomputed: pre,
		})
		if err != nil {
			for _, done := range instances[:i] {
				done.Wipe()
			}
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		instances[i] = in
	}
	p.proto = newGG20Protocol(signers, self, instances)
	return p.proto, nil
}

// finish stores the batch of presignatures sealed in the checked pool.
func (p *presignSession) finish(ctx context.Context) ([]byte, error) {
	pss := make([]*gg20.Presignature, 0, len(p.proto.instances))
	defer func() {
		for _, ps := range pss {
			ps.Wipe()
		}
	}()
	for _, in := range p.proto.instances {
		ps, err := in.Presignature()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		pss = append(pss, ps)
	}
	ids := make([]string, len(pss))
	for i, ps := range pss {
		id := ps.ID()
		ids[i] = hex.EncodeToString(id[:])
	}
	if err := p.e.storeBatch(ctx, p.pool, p.prop.KeyID, p.epoch, pss); err != nil {
		return nil, err
	}
	_ = p.e.presigEvent(ctx, PresignatureEvent{Change: PresignaturesMade, Session: p.prop.SessionID(), Pool: p.pool,
		Spec: p.prop.poolSpec(), Epoch: p.epoch, IDs: ids})
	return nil, nil
}

// report accepts any report: a report says the signer stored the batch.
func (p *presignSession) report(PartyID, []byte) error { return nil }

// verify has nothing to compare.
func (p *presignSession) verify() error { return nil }
