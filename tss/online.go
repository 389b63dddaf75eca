package tss

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// MaxOnlineBatch bounds the digests one online signing round signs.
const MaxOnlineBatch = 4096

// OnlineRequest asks for GG20 one-round signatures from ready presignatures.
type OnlineRequest struct {
	// KeyID names the key.
	KeyID string
	// Signers must be the signer set of the presignatures to use. Empty
	// means the first M parties of the committee starting with this one.
	Signers []PartyID
	// Path is the derivation path the presignatures were made for.
	Path string
	// Digests are the 32-byte digests to sign, one presignature each.
	Digests [][]byte
	// PresignatureIDs optionally names the presignatures to use (hex, one
	// per digest), from this party's own pool; by default the oldest ready
	// ones of that pool are used.
	PresignatureIDs []string
	// Evidence is passed to every party's Policy.
	Evidence []byte
}

// SignOnline signs one digest with a ready GG20 presignature in one round
// trip. See SignBatch.
func (e *Engine) SignOnline(ctx context.Context, req OnlineRequest) (*Signature, error) {
	if len(req.Digests) != 1 {
		return nil, fmt.Errorf("%w: SignOnline signs exactly one digest; use SignBatch", ErrBadRequest)
	}
	sigs, err := e.SignBatch(ctx, req)
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

// SignBatch signs each digest with its own ready GG20 presignature in one
// round trip: the initiator sends the request, every other signer checks it
// (key, signer set, path, digests, that it holds each presignature unused,
// and its Policy), marks the presignatures used in its HSM ledger, and only
// then sends its signature shares. Whatever the number of digests, each
// party makes one ledger update per stored batch it draws from (a batch
// holds up to 32 presignatures, taken oldest first); used-up batches are
// deleted in the background. A presignature is consumed by the attempt even
// when the round then fails, so it is never used twice.
// Every returned signature has been verified; a bad share is blamed on the
// party that sent it (GG20 §4.2: R^{sᵢ} = R̄ᵢ^m · Sᵢ^r).
func (e *Engine) SignBatch(ctx context.Context, req OnlineRequest) ([]*Signature, error) {
	n := len(req.Digests)
	if n == 0 || n > MaxOnlineBatch {
		return nil, fmt.Errorf("%w: a batch signs 1 to %d digests, not %d", ErrBadRequest, MaxOnlineBatch, n)
	}
	signers, err := e.defaultSigners(ctx, req.KeyID, req.Signers)
	if err != nil {
		return nil, err
	}
	km, err := e.meta(ctx, req.KeyID)
	if err != nil {
		return nil, err
	}
	pool := e.own(PoolSpec{KeyID: req.KeyID, Signers: signers, Path: req.Path}).poolKey(km.info.Epoch)
	// Wait for room with the co-signers before reserving anything: a
	// co-signer over its MaxSessionsPerPeer refuses, and by then this
	// party has consumed its presignatures (see initiatorSlots).
	release, err := e.slots.acquire(ctx, e.othersOf(signers), e.cfg.JoinTimeout)
	if err != nil {
		return nil, err
	}
	defer release()
	ids := req.PresignatureIDs
	reserved := false
	if len(ids) == 0 {
		if ids, err = e.reserve(ctx, pool, n); err != nil {
			return nil, err
		}
		reserved = true
		defer e.release(ids)
	} else if len(ids) != n {
		return nil, fmt.Errorf("%w: %d presignature IDs for %d digests", ErrBadRequest, len(ids), n)
	}
	payload, err := encodeOnline(ids, req.Digests)
	if err != nil {
		return nil, err
	}
	prop := &Proposal{Op: OpOnline, KeyID: req.KeyID, Parties: signers, Path: req.Path, Payload: payload, Evidence: slices.Clone(req.Evidence)}
	op := newOnlineSession(e, prop, reserved)
	if err := e.proposeHolding(ctx, prop, op); err != nil {
		if burned := op.consumedCount(); burned > 0 {
			e.presigs.mu.Lock()
			e.presigs.stats(pool).Burned += uint64(burned)
			e.presigs.mu.Unlock()
			ev := op.event(PresignaturesBurned)
			ev.Reason = err.Error()
			_ = e.presigEvent(context.WithoutCancel(ctx), ev)
		}
		return nil, err
	}
	return op.sigs, nil
}

// onlineSession is a GG20 online signing session, one-shot: the initiator
// proposes the digests and presignatures, every other signer checks them,
// consumes the presignatures and answers with its signature shares, and
// the initiator combines and verifies the signatures.
type onlineSession struct {
	e    *Engine
	prop *Proposal
	// reserved says the initiator reserved the presignatures itself (from
	// the pool, not named by the caller); false on participants.
	reserved bool

	req *onlineRequest // set by check

	mu     sync.Mutex
	sts    []gg20.Stored          // the initiator's consumed presignatures
	own    []*big.Int             // the initiator's own shares
	shares map[PartyID][]*big.Int // the other signers' shares, at the initiator
	sigs   []*Signature           // the verified signatures, once verify ran
	// consumed is how many presignatures the initiator consumed (they are
	// gone whatever happens next).
	consumed int
}

var _ oneShotOp = (*onlineSession)(nil)

func newOnlineSession(e *Engine, prop *Proposal, reserved bool) *onlineSession {
	return &onlineSession{e: e, prop: prop, reserved: reserved, shares: make(map[PartyID][]*big.Int)}
}

// onlineRequest is a checked online proposal.
type onlineRequest struct {
	ids     []string
	digests [][32]byte
	pool    string
	epoch   uint64
	pub     *secp256k1.PublicKey
	tweak   *big.Int
	order   []PartyID // signers in presignature order (by share ID)
}

func encodeOnline(ids []string, digests [][]byte) ([]byte, error) {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(ids)))
	for i, id := range ids {
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: presignature ID %q", ErrBadRequest, id)
		}
		if len(digests[i]) != 32 {
			return nil, fmt.Errorf("%w: digest %d must be 32 bytes, not %d", ErrBadRequest, i, len(digests[i]))
		}
		out = append(out, b...)
		out = append(out, digests[i]...)
	}
	return out, nil
}

func decodeOnline(b []byte) ([]string, [][32]byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("short online request")
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > MaxOnlineBatch || uint64(len(b)) != 4+64*uint64(n) {
		return nil, nil, errors.New("bad online request length")
	}
	ids := make([]string, n)
	digests := make([][32]byte, n)
	seen := make(map[string]bool, n)
	for i := range ids {
		off := 4 + 64*i
		ids[i] = hex.EncodeToString(b[off : off+32])
		if seen[ids[i]] {
			return nil, nil, errors.New("a presignature is named twice")
		}
		seen[ids[i]] = true
		copy(digests[i][:], b[off+32:off+64])
	}
	return ids, digests, nil
}

// checkOnline checks an online proposal against this party's own view of
// the key, without unsealing the key share.
func (e *Engine) checkOnline(ctx context.Context, prop *Proposal) (*onlineRequest, error) {
	if len(prop.NewParties) != 0 || len(prop.OldParties) != 0 || prop.Threshold != 0 || prop.Count != 0 || prop.Epoch != 0 {
		return nil, fmt.Errorf("%w: online signing takes only signers, path and digests", ErrBadRequest)
	}
	ids, digests, err := decodeOnline(prop.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	km, err := e.meta(ctx, prop.KeyID)
	if err != nil {
		return nil, err
	}
	if len(prop.Parties) < km.info.Threshold || len(prop.Parties) < 2 {
		return nil, fmt.Errorf("%w: %d signers for a %d-of-%d key", ErrBadRequest, len(prop.Parties), km.info.Threshold, len(km.info.Parties))
	}
	for _, p := range prop.Parties {
		if km.shareIDs[p] == nil {
			return nil, fmt.Errorf("%w: signer %s is not in the committee of key %s", ErrNotInCommittee, p, prop.KeyID)
		}
	}
	pub, err := secp256k1.ParsePubKey(km.info.PublicKey)
	if err != nil {
		return nil, err
	}
	r := &onlineRequest{ids: ids, digests: digests, pub: pub}
	for _, d := range digests {
		m := new(big.Int).SetBytes(d[:])
		if m.Mod(m, secp256k1.S256().N).Sign() == 0 {
			return nil, fmt.Errorf("%w: a digest is zero modulo the group order", ErrBadRequest)
		}
	}
	if r.pub, r.tweak, err = derive(pub, km.info.ChainCode, prop.Path); err != nil {
		return nil, err
	}
	r.order = slices.Clone(prop.Parties)
	slices.SortFunc(r.order, func(a, b PartyID) int { return km.shareIDs[a].Cmp(km.shareIDs[b]) })
	// The presignatures must come from the proposer's own pool.
	r.pool, r.epoch = prop.poolSpec().poolKey(km.info.Epoch), km.info.Epoch
	if err := e.checkOwner(ctx, r.pool, ids, prop.Initiator); err != nil {
		return nil, err
	}
	return r, nil
}

// signShares consumes the presignatures durably, checks they are bound to
// this request's key and path, and computes this party's shares sᵢ. The
// caller clears the returned encodings.
func (e *Engine) signShares(ctx context.Context, r *onlineRequest, reserved bool) ([]gg20.Stored, []*big.Int, error) {
	sts, err := e.consume(ctx, r.pool, r.ids, reserved)
	if err != nil {
		return nil, nil, err
	}
	shares := make([]*big.Int, len(sts))
	want := r.pub.SerializeCompressed()
	for i, st := range sts {
		pub, err := st.PublicKey()
		if err == nil && string(pub) != string(want) {
			err = fmt.Errorf("presignature %s is for another key or path", shortHex(r.ids[i]))
		}
		if err == nil {
			shares[i], err = st.SignShare(r.digests[i][:])
		}
		if err != nil {
			clearStored(sts)
			return nil, nil, fmt.Errorf("%w: %w: %w", ErrProtocol, errSharesAfterConsume, err)
		}
	}
	return sts, shares, nil
}

// errSharesAfterConsume marks a failure of signShares after it consumed
// the presignatures.
var errSharesAfterConsume = errors.New("presignatures consumed, but no signature share computed")

func clearStored(sts []gg20.Stored) {
	for _, st := range sts {
		clear(st)
	}
}

func encodeShares(shares []*big.Int) []byte {
	out := make([]byte, 0, 32*len(shares))
	for _, s := range shares {
		var b [32]byte
		s.FillBytes(b[:])
		out = append(out, b[:]...)
	}
	return out
}

func decodeShares(b []byte, n int) ([]*big.Int, error) {
	if len(b) != 32*n {
		return nil, fmt.Errorf("%d bytes of shares for %d signatures", len(b), n)
	}
	out := make([]*big.Int, n)
	for i := range out {
		out[i] = new(big.Int).SetBytes(b[32*i : 32*i+32])
	}
	return out, nil
}

// check runs checkOnline and keeps the checked request.
func (o *onlineSession) check(ctx context.Context) error {
	r, err := o.e.checkOnline(ctx, o.prop)
	if err != nil {
		return err
	}
	o.req = r
	return nil
}

// wantReports is true: the initiator waits for every signer's shares.
func (o *onlineSession) wantReports() bool { return true }

// newProtocol is never called: a one-shot session runs no protocol.
func (o *onlineSession) newProtocol(context.Context) (protocol, error) {
	return nil, fmt.Errorf("%w: online signing runs no protocol rounds", ErrProtocol)
}

// respond, on a participant, consumes the presignatures and returns this
// party's signature shares.
func (o *onlineSession) respond(ctx context.Context) ([]byte, error) {
	sts, shares, err := o.e.signShares(ctx, o.req, false)
	if err != nil {
		return nil, err
	}
	clearStored(sts)
	// Recorded before the shares leave this party, or they do not leave.
	if err := o.e.presigEvent(ctx, o.event(PresignaturesUsed)); err != nil {
		clearShares(shares)
		return nil, o.notRecorded(err)
	}
	return encodeShares(shares), nil
}

// event describes the session's presignatures for Config.Presignatures.
func (o *onlineSession) event(c PresignatureChange) PresignatureEvent {
	ev := PresignatureEvent{Change: c, Session: o.prop.SessionID(), Spec: o.prop.poolSpec()}
	if o.req != nil {
		ev.Pool, ev.Epoch, ev.IDs, ev.Digests = o.req.pool, o.req.epoch, o.req.ids, o.req.digests
	}
	return ev
}

// notRecorded is the error of a session whose presignature use could not
// be recorded.
func (o *onlineSession) notRecorded(err error) error {
	return fmt.Errorf("%w: %s consumed %d presignatures but could not record their use, so it made no signature with them (%w); fix what keeps it from recording, then sign again",
		ErrNotRecorded, o.e.net.Self(), len(o.req.ids), err)
}

// clearShares zeroes signature shares that will not be sent.
func clearShares(shares []*big.Int) {
	for _, s := range shares {
		if s != nil {
			s.SetInt64(0)
		}
	}
}

// finish, on the initiator, consumes the presignatures and computes its
// own shares.
func (o *onlineSession) finish(ctx context.Context) ([]byte, error) {
	sts, own, err := o.e.signShares(ctx, o.req, o.reserved)
	if errors.Is(err, errSharesAfterConsume) {
		o.mu.Lock()
		o.consumed = len(o.req.ids) // gone, though no share came of them
		o.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	if err := o.e.presigEvent(ctx, o.event(PresignaturesUsed)); err != nil {
		clearStored(sts)
		clearShares(own)
		o.mu.Lock()
		o.consumed = len(o.req.ids)
		o.mu.Unlock()
		return nil, o.notRecorded(err)
	}
	o.mu.Lock()
	o.sts, o.own, o.consumed = sts, own, len(sts)
	o.mu.Unlock()
	return nil, nil
}

// consumedCount reports how many presignatures the initiator consumed.
func (o *onlineSession) consumedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.consumed
}

// report decodes and keeps one signer's shares; a malformed answer is
// blamed on its sender.
func (o *onlineSession) report(from PartyID, payload []byte) error {
	shares, err := decodeShares(payload, len(o.req.ids))
	if err != nil {
		return &CulpritError{Op: OpOnline, Parties: []PartyID{from}, Round: gg20.RoundOnline, Reason: fmt.Errorf("%w: %v", ErrMalformedMessage, err)}
	}
	o.mu.Lock()
	o.shares[from] = shares
	o.mu.Unlock()
	return nil
}

// verify combines and checks every signature and blames the signers of
// bad shares.
func (o *onlineSession) verify() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer clearStored(o.sts)
	sigs, blamed, err := o.e.combineAll(o.req, o.sts, o.own, o.shares)
	if err != nil {
		return err
	}
	if len(blamed) > 0 {
		return &CulpritError{Op: OpOnline, Parties: blamed, Round: gg20.RoundOnline, Reason: fmt.Errorf("%w: %w", ErrProtocol, gg20.ErrBadShare)}
	}
	o.sigs = sigs
	return nil
}

// combineAll adds the signature shares of every digest and checks each
// signature, on all cores, with the key's gg20.Verifier when it is ready
// (see verifierCache) or else dcrd's ECDSA verifier; it derives the
// recovery ID from R and names the signers of bad shares.
func (e *Engine) combineAll(r *onlineRequest, pss []gg20.Stored, own []*big.Int, shares map[PartyID][]*big.Int) ([]*Signature, []PartyID, error) {
	self := e.net.Self()
	pub := r.pub.SerializeCompressed()
	verifier := e.verifiers.ready(pub)
	if verifier == nil {
		e.warmVerifier(pub)
	}
	sigs := make([]*Signature, len(pss))
	errs := make([]error, len(pss))
	blames := make([][]PartyID, len(pss))
	work := func(i int) {
		defer func() {
			if p := recover(); p != nil {
				errs[i] = fmt.Errorf("%w: combining signature %d failed (%s)", ErrProtocol, i, trimPanic(p))
			}
		}()
		in := make([]*big.Int, len(r.order))
		for j, p := range r.order {
			if p == self {
				in[j] = own[i]
			} else {
				in[j] = shares[p][i]
			}
		}
		var rr, ss *big.Int
		var recID byte
		var err error
		if verifier != nil {
			rr, ss, recID, err = pss[i].CombineWith(verifier, r.digests[i][:], in)
		} else {
			rr, ss, recID, err = pss[i].Combine(r.digests[i][:], in)
		}
		if err != nil {
			var ce *gg20.CulpritError
			if errors.As(err, &ce) {
				for _, j := range ce.Culprits {
					if j >= 0 && j < len(r.order) {
						blames[i] = append(blames[i], r.order[j])
					}
				}
				return
			}
			errs[i] = fmt.Errorf("%w: %w", ErrProtocol, err)
			return
		}
		sig := &Signature{PublicKey: pub, Digest: r.digests[i], RecoveryID: recID}
		rr.FillBytes(sig.R[:])
		ss.FillBytes(sig.S[:])
		sigs[i] = sig
	}
	workers := min(runtime.GOMAXPROCS(0), len(pss))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				work(i)
			}
		}()
	}
	for i := range pss {
		next <- i
	}
	close(next)
	wg.Wait()
	var blamed []PartyID
	for i := range pss {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		for _, p := range blames[i] {
			if !slices.Contains(blamed, p) {
				blamed = append(blamed, p)
			}
		}
	}
	slices.Sort(blamed)
	return sigs, blamed, nil
}

// verifierCache keeps gg20.Verifiers for the keys signed under lately,
// least recently used dropped first. A verifier being built is in the
// cache already, so concurrent requests for one key build it once.
//
// Combining uses a key's verifier when it is ready and otherwise verifies
// the plain way while the verifier is built in the background: the tables
// cost about as much as 350 plain verifications to build and make each
// one after about four times cheaper, so a signing service pays for it once
// per key and process (PrepareOnline builds it up front).
type verifierCache struct {
	mu    sync.Mutex
	order []string // least recently used first
	m     map[string]*verifierEntry
}

type verifierEntry struct {
	ready chan struct{} // closed when v is set (nil if pub does not decode)
	v     *gg20.Verifier
}

// verifierCacheSize bounds the cache: each verifier takes about 3.4 MiB.
const verifierCacheSize = 8

// entry returns pub's entry and whether the caller must build it.
func (c *verifierCache) entry(pub []byte) (*verifierEntry, bool) {
	k := string(pub)
	c.mu.Lock()
	defer c.mu.Unlock()
	if en := c.touchLocked(k); en != nil {
		return en, false
	}
	if c.m == nil {
		c.m = make(map[string]*verifierEntry)
	}
	if len(c.order) == verifierCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	en := &verifierEntry{ready: make(chan struct{})}
	c.order = append(c.order, k)
	c.m[k] = en
	return en, true
}

func (en *verifierEntry) build(pub []byte) {
	defer close(en.ready)
	if v, err := gg20.NewVerifier(pub); err == nil {
		en.v = v
	}
}

// touchLocked returns k's entry, if any, and marks it used last.
func (c *verifierCache) touchLocked(k string) *verifierEntry {
	i := slices.Index(c.order, k)
	if i < 0 {
		return nil
	}
	c.order = append(slices.Delete(c.order, i, i+1), k)
	return c.m[k]
}

// ready returns pub's verifier if it has been built, without waiting, and
// marks it used last.
func (c *verifierCache) ready(pub []byte) *gg20.Verifier {
	c.mu.Lock()
	en := c.touchLocked(string(pub))
	c.mu.Unlock()
	if en == nil {
		return nil
	}
	select {
	case <-en.ready:
		return en.v
	default:
		return nil
	}
}

// get returns the verifier for pub, building it or waiting for the build
// under way; nil if pub does not decode.
func (c *verifierCache) get(ctx context.Context, pub []byte) (*gg20.Verifier, error) {
	en, mine := c.entry(pub)
	if mine {
		en.build(pub)
	}
	select {
	case <-en.ready:
		return en.v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// PrepareOnline builds, and keeps, what this party needs to check online
// signatures under the key (at the derivation path) quickly: a table of
// multiples of the (derived) public key, about 3.4 MiB and tens of
// milliseconds of CPU. Without it the first online signatures under a key
// are checked the plain way, about four times slower per signature, while
// the table is built in the background. A signing service can call it at
// start-up for the keys and paths it signs under in large batches; the
// engine keeps tables for the 8 keys used last.
func (e *Engine) PrepareOnline(ctx context.Context, keyID, path string) error {
	km, err := e.meta(ctx, keyID)
	if err != nil {
		return err
	}
	pub, err := secp256k1.ParsePubKey(km.info.PublicKey)
	if err != nil {
		return fmt.Errorf("tss: key %s: stored public key: %w", keyID, err)
	}
	if pub, _, err = derive(pub, km.info.ChainCode, path); err != nil {
		return err
	}
	v, err := e.verifiers.get(ctx, pub.SerializeCompressed())
	if err != nil {
		return fmt.Errorf("tss: prepare online signing for key %s: %w", keyID, err)
	}
	if v == nil {
		return fmt.Errorf("tss: prepare online signing for key %s: public key does not decode", keyID)
	}
	return nil
}

// warmVerifier has the verifier for pub built in the background unless it
// is cached or under way. The build is one of the engine's goroutines: Run
// waits for it.
func (e *Engine) warmVerifier(pub []byte) {
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		return
	}
	en, mine := e.verifiers.entry(pub)
	if !mine {
		e.mu.Unlock()
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		en.build(bytes.Clone(pub))
	}()
}
