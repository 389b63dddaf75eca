package tss

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ReshareRequest asks to move a key to a new committee and/or threshold.
// The public key, and so every address, stays the same.
type ReshareRequest struct {
	// KeyID names the key.
	KeyID string
	// OldParties are the members of the current committee that take part;
	// at least the current threshold of them. Empty means all of them.
	OldParties []PartyID
	// NewParties is the new committee. A site may be in both committees;
	// it gets a fresh share index in the new one.
	NewParties []PartyID
	// NewThreshold is the new M.
	NewThreshold int
}

// reshareParams is the reshare proposal's payload: what new-only members
// need to know about the key and what old members check against their share.
type reshareParams struct {
	PublicKey    []byte `json:"public_key"`
	ChainCode    []byte `json:"chain_code"`
	OldEpoch     uint64 `json:"old_epoch"`
	OldThreshold int    `json:"old_threshold"`
}

// reshareSpecs are the messages of tss-lib resharing. The opening of an
// old member's VSS commitment is checked against its round-1 commitment,
// and a new member's no-small-factor proof against its round-2 modulus, so
// each waits for that message.
var reshareSpecs = []msgSpec{
	{name: "binance.tsslib.ecdsa.resharing.DGRound1Message", broadcast: true, from: roleOld},
	{name: "binance.tsslib.ecdsa.resharing.DGRound2Message1", broadcast: true, from: roleNew},
	{name: "binance.tsslib.ecdsa.resharing.DGRound2Message2", broadcast: true, from: roleNew},
	{name: "binance.tsslib.ecdsa.resharing.DGRound3Message1", from: roleOld},
	{name: "binance.tsslib.ecdsa.resharing.DGRound3Message2", broadcast: true, from: roleOld, after: "binance.tsslib.ecdsa.resharing.DGRound1Message"},
	{name: "binance.tsslib.ecdsa.resharing.DGRound4Message1", from: roleNew, after: "binance.tsslib.ecdsa.resharing.DGRound2Message1"},
	{name: "binance.tsslib.ecdsa.resharing.DGRound4Message2", broadcast: true, from: roleNew},
}

// Reshare moves a key to a new committee in two phases. First the old and
// new committees run tss-lib resharing and every new member stores its new
// share as pending. Then the new committee signs a confirmation digest with
// the pending shares; only after that signature verifies does a commit make
// the new shares active everywhere and erase the old ones (old-only members
// delete their share). A crash or failure before the commit leaves the old
// shares active and the key usable as before.
//
// The initiator must belong to both committees. If the commit does not
// reach every party, Reshare returns an error naming them and the key is
// active on the others; run FinishReshare to retry the commit.
func (e *Engine) Reshare(ctx context.Context, req ReshareRequest) (*KeyInfo, error) {
	lock := e.keyLocks.get(req.KeyID)
	lock.Lock()
	defer lock.Unlock()

	share, err := e.loadShare(ctx, req.KeyID)
	if err != nil {
		return nil, err
	}
	params := reshareParams{PublicKey: share.PublicKey, ChainCode: share.ChainCode, OldEpoch: share.Epoch, OldThreshold: share.Threshold}
	old := SortParties(req.OldParties)
	if len(old) == 0 {
		old = slices.Clone(share.Parties)
	}
	share.wipe()
	newc := SortParties(req.NewParties)
	if !slices.Contains(newc, e.net.Self()) || !slices.Contains(old, e.net.Self()) {
		return nil, fmt.Errorf("%w: the initiator of a reshare must be in both committees", ErrBadRequest)
	}
	payload, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	prop := &Proposal{
		Op:         OpReshare,
		KeyID:      req.KeyID,
		Parties:    union(old, newc),
		OldParties: old,
		NewParties: newc,
		Threshold:  req.NewThreshold,
		Payload:    payload,
	}
	if err := e.propose(ctx, prop, newReshareSession(e, prop)); err != nil {
		return nil, err
	}
	newEpoch := params.OldEpoch + 1

	// Phase 2: the new committee proves it can sign with the pending shares.
	digest := confirmationDigest(prop.SessionID())
	signers := []PartyID{e.net.Self()}
	for _, p := range newc {
		if len(signers) == req.NewThreshold {
			break
		}
		if p != e.net.Self() {
			signers = append(signers, p)
		}
	}
	sprop := &Proposal{Op: OpSign, KeyID: req.KeyID, Parties: SortParties(signers), Payload: digest[:], Epoch: newEpoch}
	confirm := newSignSession(e, sprop)
	if err := e.propose(ctx, sprop, confirm); err != nil {
		return nil, fmt.Errorf("tss: the new committee of key %s could not sign with its new shares, the old shares stay active: %w", req.KeyID, err)
	}
	sig := confirm.signature()

	// Phase 3: commit everywhere.
	if err := e.commitReshare(ctx, req.KeyID, prop.Parties, newEpoch, sig); err != nil {
		return nil, err
	}
	return e.Key(ctx, req.KeyID)
}

// confirmationDigest is what the new committee of the reshare session sid
// signs with its pending shares before the commit.
func confirmationDigest(sid SessionID) [32]byte {
	return sha256.Sum256(append([]byte("keyquorum/reshare-confirm/v1"), sid[:]...))
}

// ReshareConfirmation returns, for a reshare proposal, the digest its new
// committee signs with the pending shares to confirm it (see
// [Engine.Reshare]) and the epoch of those shares. A site that checks
// signing sessions itself (a Policy) uses it to let a pending share sign
// that digest and nothing else. A proposal that is not a well-formed
// reshare is ErrBadRequest.
func ReshareConfirmation(p *Proposal) (digest [32]byte, epoch uint64, err error) {
	if p == nil || p.Op != OpReshare {
		return digest, 0, fmt.Errorf("%w: not a reshare proposal", ErrBadRequest)
	}
	var params reshareParams
	if err := json.Unmarshal(p.Payload, &params); err != nil {
		return digest, 0, fmt.Errorf("%w: reshare parameters: %v", ErrBadRequest, err)
	}
	return confirmationDigest(p.SessionID()), params.OldEpoch + 1, nil
}

// FinishReshare repeats the commit of a reshare whose new committee already
// proved it can sign, for parties that missed it. It needs the pending or
// active share of the new epoch on this party.
func (e *Engine) FinishReshare(ctx context.Context, keyID string, parties []PartyID, epoch uint64, confirmation *Signature) error {
	lock := e.keyLocks.get(keyID)
	lock.Lock()
	defer lock.Unlock()
	return e.commitReshare(ctx, keyID, SortParties(parties), epoch, confirmation)
}

func (e *Engine) commitReshare(ctx context.Context, keyID string, parties []PartyID, epoch uint64, sig *Signature) error {
	if sig == nil {
		return fmt.Errorf("%w: a commit needs the confirmation signature", ErrBadRequest)
	}
	ev, err := json.Marshal(sig)
	if err != nil {
		return err
	}
	prop := &Proposal{Op: OpCommit, KeyID: keyID, Parties: parties, Epoch: epoch, Evidence: ev}
	if err := e.propose(ctx, prop, newCommitSession(e, prop)); err != nil {
		return fmt.Errorf("tss: commit of key %s epoch %d did not complete; the new committee signed, so retry with FinishReshare: %w", keyID, epoch, err)
	}
	return nil
}

func union(a, b []PartyID) []PartyID {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// reshareSession is a resharing session between the old and the new
// committee: tss-lib resharing, then every new member stores its share as
// pending and reports the key's public key, which the initiator checks.
type reshareSession struct {
	e    *Engine
	prop *Proposal

	// set by check
	params       reshareParams
	pubKey       *secp256k1.PublicKey
	isOld, isNew bool

	// set up by newProtocol, owned by the session goroutine
	ends     map[role]chan *keygen.LocalPartySaveData
	results  map[role]*keygen.LocalPartySaveData
	pp       *keygen.LocalPreParams
	oldShare *keyShare

	mu       sync.Mutex
	reported map[PartyID][]byte // at the initiator: what each party reported
}

var _ sessionOp = (*reshareSession)(nil)

func newReshareSession(e *Engine, prop *Proposal) *reshareSession {
	return &reshareSession{
		e: e, prop: prop,
		ends:     map[role]chan *keygen.LocalPartySaveData{},
		results:  map[role]*keygen.LocalPartySaveData{},
		reported: make(map[PartyID][]byte),
	}
}

// newEpoch is the epoch of the new committee's shares.
func (r *reshareSession) newEpoch() uint64 { return r.params.OldEpoch + 1 }

// check refuses committees and thresholds resharing cannot serve, a
// proposal that does not match this party's share of the key (old
// members), and a reshare this party has no pre-parameters for or would
// overwrite a share it holds (new members).
func (r *reshareSession) check(ctx context.Context) error {
	e, prop := r.e, r.prop
	var params reshareParams
	if err := json.Unmarshal(prop.Payload, &params); err != nil {
		return fmt.Errorf("%w: reshare parameters: %v", ErrBadRequest, err)
	}
	self := e.net.Self()
	isOld, isNew := slices.Contains(prop.OldParties, self), slices.Contains(prop.NewParties, self)
	switch {
	case !slices.Equal(prop.Parties, union(prop.OldParties, prop.NewParties)):
		return fmt.Errorf("%w: reshare parties must be the union of both committees", ErrBadRequest)
	case len(prop.NewParties) < 2 || len(prop.NewParties) > MaxParties:
		return fmt.Errorf("%w: a committee has 2 to %d parties", ErrBadRequest, MaxParties)
	case prop.Threshold < 2 || prop.Threshold > len(prop.NewParties):
		return fmt.Errorf("%w: threshold %d-of-%d is not supported; M must be 2 to %d", ErrBadRequest, prop.Threshold, len(prop.NewParties), len(prop.NewParties))
	case params.OldThreshold < 1 || len(prop.OldParties) < params.OldThreshold:
		return fmt.Errorf("%w: %d old parties cannot reshare a %d-of-n key", ErrBadRequest, len(prop.OldParties), params.OldThreshold)
	case len(params.PublicKey) != 33 || len(params.ChainCode) != 32:
		return fmt.Errorf("%w: reshare parameters lack the key", ErrBadRequest)
	case prop.Path != "" || prop.Count != 0 || prop.Epoch != 0:
		return fmt.Errorf("%w: reshare takes no path, count or epoch", ErrBadRequest)
	}
	pubKey, err := secp256k1.ParsePubKey(params.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: reshare public key: %v", ErrBadRequest, err)
	}
	if isOld {
		share, err := e.loadShare(ctx, prop.KeyID)
		if err != nil {
			return err
		}
		ok := share.Epoch == params.OldEpoch && share.Threshold == params.OldThreshold &&
			bytes.Equal(share.PublicKey, params.PublicKey) && bytes.Equal(share.ChainCode, params.ChainCode)
		for _, p := range prop.OldParties {
			ok = ok && slices.Contains(share.Parties, p)
		}
		share.wipe()
		if !ok {
			return fmt.Errorf("%w: reshare proposal does not match key %s as this party holds it", ErrBadRequest, prop.KeyID)
		}
	}
	if isNew {
		if e.cfg.PreParams == nil {
			return fmt.Errorf("%w: %s has no pre-parameter pool", ErrNoPreParams, self)
		}
		if ready, err := e.cfg.PreParams.Ready(ctx); err != nil || ready == 0 {
			return fmt.Errorf("%w: %s has none ready; retry when its pool has refilled", ErrNoPreParams, self)
		}
		if !isOld {
			if _, err := e.cfg.Store.Versions(ctx, kindShare, prop.KeyID); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %s already holds a share of key %s but is not in the old committee", ErrBadRequest, self, prop.KeyID)
			}
		}
	}
	r.params, r.pubKey, r.isOld, r.isNew = params, pubKey, isOld, isNew
	return nil
}

// wantReports is true: every party reports the public key of its new share
// (old-only members report an empty one).
func (r *reshareSession) wantReports() bool { return true }

// newProtocol builds tss-lib's resharing parties for this party's roles:
// as an old member with its unsealed share, as a new member with a
// reserved pre-parameter set.
func (r *reshareSession) newProtocol(ctx context.Context) (_ protocol, err error) {
	e, prop, params := r.e, r.prop, r.params
	self := e.net.Self()
	newEpoch := r.newEpoch()
	var lease *preParamsLease
	defer func() {
		if err != nil && lease != nil {
			lease.release()
			wipePreParams(r.pp)
		}
	}()
	oldMembers, oldMine, err := committeeMembers(prop.KeyID, params.OldEpoch, prop.OldParties, self, roleOld)
	if err != nil && r.isOld {
		return nil, err
	}
	newMembers, newMine, err := committeeMembers(prop.KeyID, newEpoch, prop.NewParties, self, roleNew)
	if err != nil && r.isNew {
		return nil, err
	}
	if oldMembers == nil {
		oldMembers, _, _ = committeeMembers(prop.KeyID, params.OldEpoch, prop.OldParties, prop.OldParties[0], roleOld)
	}
	if newMembers == nil {
		newMembers, _, _ = committeeMembers(prop.KeyID, newEpoch, prop.NewParties, prop.NewParties[0], roleNew)
	}
	oldIDs := tsslib.SortPartyIDs(memberIDs(oldMembers))
	newIDs := tsslib.SortPartyIDs(memberIDs(newMembers))
	rnd, err := e.sessionRand(OpReshare)
	if err != nil {
		return nil, err
	}
	oldCtx, newCtx := tsslib.NewPeerContext(oldIDs), tsslib.NewPeerContext(newIDs)
	expected, err := crypto.NewECPoint(tsslib.S256(), r.pubKey.X(), r.pubKey.Y())
	if err != nil {
		return nil, err
	}
	validator := newReshareValidator(tsslib.S256(), prop.Threshold-1, expected, self)
	proto := newTSSLibProtocol(OpReshare, self, slices.Concat(oldMembers, newMembers), reshareSpecs, validator)
	if r.isOld {
		r.oldShare, err = e.loadShare(ctx, prop.KeyID)
		if err != nil {
			return nil, err
		}
		for _, m := range oldMembers {
			if id, ok := r.oldShare.shareID(m.site); !ok || id.Cmp(new(big.Int).SetBytes(m.id.Key)) != 0 {
				return nil, fmt.Errorf("%w: stored share indices of key %s do not match its epoch", ErrProtocol, prop.KeyID)
			}
		}
		rp := tsslib.NewReSharingParameters(tsslib.S256(), oldCtx, newCtx, oldMine.id, len(oldIDs), params.OldThreshold-1, len(newIDs), prop.Threshold-1)
		rp.SetRand(rnd)
		rp.SetPartialKeyRand(rnd)
		r.ends[roleOld] = make(chan *keygen.LocalPartySaveData, 1)
		var party tsslib.Party
		if err := proto.call(func() *tsslib.Error {
			party = resharing.NewLocalParty(rp, *r.oldShare.Data, proto.out, r.ends[roleOld])
			return nil
		}); err != nil {
			return nil, err
		}
		proto.local[roleOld] = party
	}
	if r.isNew {
		// Reserved now, consumed only when this party's first message
		// as a new member (round 2, with its Paillier key) is about to
		// leave (preParamsGuard).
		lease, err = e.reservePreParams(ctx)
		if err != nil {
			return nil, fmt.Errorf("tss: reshare on %s: %w", self, err)
		}
		r.pp = lease.pp
		validator.setOwnModuli(r.pp.PaillierSK.N, r.pp.NTildei)
		rp := tsslib.NewReSharingParameters(tsslib.S256(), oldCtx, newCtx, newMine.id, len(oldIDs), params.OldThreshold-1, len(newIDs), prop.Threshold-1)
		rp.SetRand(rnd)
		rp.SetPartialKeyRand(rnd)
		save := keygen.NewLocalPartySaveData(len(newIDs))
		save.LocalPreParams = *r.pp
		r.ends[roleNew] = make(chan *keygen.LocalPartySaveData, 1)
		var party tsslib.Party
		if err := proto.call(func() *tsslib.Error {
			party = resharing.NewLocalParty(rp, save, proto.out, r.ends[roleNew])
			return nil
		}); err != nil {
			return nil, err
		}
		proto.local[roleNew] = party
	}
	proto.finished = func(ro role) bool {
		if r.results[ro] != nil {
			return true
		}
		select {
		case r.results[ro] = <-r.ends[ro]:
			return true
		default:
			return false
		}
	}
	proto.onWipe = func() {
		r.oldShare.wipe()
		wipePreParams(r.pp)
		if d := r.results[roleNew]; d != nil {
			(&keyShare{Data: d}).wipe()
		}
	}
	if lease != nil {
		return &preParamsGuard{protocol: proto, ctx: ctx, lease: lease, role: roleNew}, nil
	}
	return proto, nil
}

// finish stores a new member's share as pending and returns its public
// key; an old-only member has nothing to store yet.
func (r *reshareSession) finish(ctx context.Context) ([]byte, error) {
	e, prop, params := r.e, r.prop, r.params
	d := r.results[roleNew]
	if d == nil {
		return []byte{}, nil // old-only: nothing to store yet
	}
	if err := checkModProofsAfterKeygen(d); err != nil {
		return nil, err
	}
	pub, err := compressedPoint(d.ECDSAPub.X(), d.ECDSAPub.Y())
	if err != nil || !bytes.Equal(pub, params.PublicKey) {
		return nil, fmt.Errorf("%w: resharing changed the public key", ErrProtocol)
	}
	newEpoch := r.newEpoch()
	share := &keyShare{
		Format: shareFormat, KeyID: prop.KeyID, Threshold: prop.Threshold,
		Parties: slices.Clone(prop.NewParties), Self: e.net.Self(), PublicKey: pub,
		ChainCode: slices.Clone(params.ChainCode), Epoch: newEpoch, Data: d,
		Created: time.Now().UTC().Truncate(time.Second),
	}
	for _, p := range prop.NewParties {
		id, err := deriveShareID(prop.KeyID, newEpoch, p)
		if err != nil {
			return nil, err
		}
		share.ShareIDs = append(share.ShareIDs, id.Text(16))
	}
	if err := share.validate(); err != nil {
		return nil, fmt.Errorf("%w: reshare result: %w", ErrProtocol, err)
	}
	if err := e.saveShare(ctx, kindPendingShare, share); err != nil {
		return nil, err
	}
	return pub, nil
}

// report records what one party reports; verify compares.
func (r *reshareSession) report(from PartyID, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reported[from] = slices.Clone(payload)
	return nil
}

// verify blames every other new member that did not report the key's
// public key.
func (r *reshareSession) verify() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	self := r.e.net.Self()
	var bad []PartyID
	for _, p := range r.prop.NewParties {
		if p == self {
			continue
		}
		if !bytes.Equal(r.reported[p], r.params.PublicKey) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return &CulpritError{Op: OpReshare, Parties: bad, Reason: fmt.Errorf("%w: did not report the key's public key", ErrProtocol)}
	}
	return nil
}

// commitSession is the commit of a confirmed reshare: every party
// activates its pending share of the new epoch, or erases its old share
// when it is not in the new committee, then reports (an empty result).
type commitSession struct {
	e    *Engine
	prop *Proposal
}

var _ sessionOp = (*commitSession)(nil)

func newCommitSession(e *Engine, prop *Proposal) *commitSession {
	return &commitSession{e: e, prop: prop}
}

// check refuses a commit without a confirmation signature that verifies
// under the key, or for an epoch this party cannot move to.
func (c *commitSession) check(ctx context.Context) error {
	e, prop := c.e, c.prop
	self := e.net.Self()
	if prop.Epoch < 2 || len(prop.Payload) != 0 {
		return fmt.Errorf("%w: commit needs an epoch of 2 or more", ErrBadRequest)
	}
	var sig Signature
	if err := json.Unmarshal(prop.Evidence, &sig); err != nil {
		return fmt.Errorf("%w: commit without a confirmation signature", ErrBadRequest)
	}
	// The confirmation must verify under the key's public key.
	var pub []byte
	pending, perr := e.loadShareVersion(ctx, kindPendingShare, prop.KeyID, prop.Epoch)
	active, aerr := e.loadShare(ctx, prop.KeyID)
	switch {
	case perr == nil:
		pub = pending.PublicKey
	case aerr == nil:
		pub = active.PublicKey
	default:
		return aerr
	}
	var activeEpoch uint64
	if aerr == nil {
		activeEpoch = active.Epoch
	}
	pending.wipe()
	active.wipe()
	if !bytes.Equal(sig.PublicKey, pub) || sig.Verify() != nil {
		return fmt.Errorf("%w: confirmation signature does not verify under key %s", ErrBadRequest, prop.KeyID)
	}
	if perr != nil && activeEpoch != prop.Epoch && activeEpoch != prop.Epoch-1 {
		return fmt.Errorf("%w: %s holds key %s at epoch %d, not %d", ErrBadRequest, self, prop.KeyID, activeEpoch, prop.Epoch-1)
	}
	return nil
}

// wantReports is true: the initiator waits until every party has committed.
func (c *commitSession) wantReports() bool { return true }

// newProtocol runs the commit (applyCommit) once every party has joined.
func (c *commitSession) newProtocol(ctx context.Context) (protocol, error) {
	return &localProtocol{action: func() error { return c.e.applyCommit(ctx, c.prop.KeyID, c.prop.Epoch) }}, nil
}

// finish has nothing left to do: the protocol committed.
func (c *commitSession) finish(context.Context) ([]byte, error) { return nil, nil }

// report accepts any report: a report says the party committed.
func (c *commitSession) report(PartyID, []byte) error { return nil }

// verify has nothing to compare.
func (c *commitSession) verify() error { return nil }

// applyCommit activates this party's pending share of epoch, or erases its
// old share when it has no place in the new committee. It is idempotent and
// every step is durable before the next, so a crash at any point leaves a
// state that a retried commit completes.
func (e *Engine) applyCommit(ctx context.Context, keyID string, epoch uint64) error {
	defer e.forgetMeta(keyID)
	pending, err := e.loadShareVersion(ctx, kindPendingShare, keyID, epoch)
	switch {
	case err == nil:
		defer pending.wipe()
		if err := e.saveShare(ctx, kindShare, pending); err != nil {
			return err
		}
		if err := e.cfg.Store.Delete(ctx, kindPendingShare, keyID); err != nil {
			return fmt.Errorf("tss: drop pending share of key %s: %w", keyID, err)
		}
		if err := e.cfg.Store.Prune(ctx, kindShare, keyID, epoch); err != nil {
			return fmt.Errorf("tss: erase old share of key %s: %w", keyID, err)
		}
		if err := e.retireOldPresignatures(ctx, keyID, epoch); err != nil {
			return err
		}
		e.log.Info("reshare committed", "key", keyID, "epoch", epoch)
		return nil
	case errors.Is(err, ErrUnknownKey):
		active, aerr := e.loadShare(ctx, keyID)
		if errors.Is(aerr, ErrUnknownKey) {
			return nil // already erased
		}
		if aerr != nil {
			return aerr
		}
		defer active.wipe()
		if active.Epoch >= epoch {
			if err := e.cfg.Store.Prune(ctx, kindShare, keyID, active.Epoch); err != nil { // already committed
				return err
			}
			return e.retireOldPresignatures(ctx, keyID, active.Epoch)
		}
		if err := e.cfg.Store.Delete(ctx, kindShare, keyID); err != nil {
			return fmt.Errorf("tss: erase old share of key %s: %w", keyID, err)
		}
		if err := e.retireOldPresignatures(ctx, keyID, 0); err != nil {
			return err
		}
		e.log.Info("old share erased after reshare", "key", keyID, "epoch", epoch)
		return nil
	default:
		return err
	}
}

// retireOldPresignatures deletes the presignatures of keyID made under any
// epoch but keep (0: all), once the reshare to keep has committed.
func (e *Engine) retireOldPresignatures(ctx context.Context, keyID string, keep uint64) error {
	n, evs, err := e.retireKeyPresignatures(ctx, keyID, keep)
	for _, ev := range evs {
		_ = e.presigEvent(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("tss: delete presignatures of key %s from before the reshare: %w", keyID, err)
	}
	if n > 0 {
		e.log.Info("deleted presignatures of the key's old committee", "key", keyID, "count", n)
	}
	return nil
}

func (e *Engine) loadShareVersion(ctx context.Context, kind, keyID string, version uint64) (*keyShare, error) {
	data, err := e.cfg.Store.GetVersion(ctx, kind, keyID, version)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s holds no %s of key %s epoch %d", ErrUnknownKey, e.net.Self(), kind, keyID, version)
		}
		return nil, fmt.Errorf("tss: load %s of key %s: %w", kind, keyID, err)
	}
	defer clear(data)
	var k keyShare
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("tss: %s of key %s does not decode: %w", kind, keyID, err)
	}
	if err := k.validate(); err != nil {
		k.wipe()
		return nil, fmt.Errorf("tss: %s of key %s: %w", kind, keyID, err)
	}
	return &k, nil
}

// localProtocol is a protocol without messages: one local action that runs
// once every party has joined.
type localProtocol struct {
	action   func() error
	finished bool
}

func (p *localProtocol) start() ([]outMsg, error) {
	if err := p.action(); err != nil {
		return nil, err
	}
	p.finished = true
	return nil, nil
}
func (p *localProtocol) handle(inMsg) ([]outMsg, error) {
	return nil, fmt.Errorf("%w: unexpected message", ErrMalformedMessage)
}
func (p *localProtocol) done() bool                         { return p.finished }
func (p *localProtocol) waitingFor() []PartyID              { return nil }
func (p *localProtocol) round() uint32                      { return 1 }
func (p *localProtocol) broadcastRound(uint32) (bool, bool) { return false, false }
func (p *localProtocol) wipe()                              {}
