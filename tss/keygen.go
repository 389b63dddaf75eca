package tss

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
)

// MaxParties bounds a committee's size.
const MaxParties = 64

// KeygenRequest asks for a new threshold key.
type KeygenRequest struct {
	// Parties is the committee; it must include this party.
	Parties []PartyID
	// Threshold is M, the number of parties required to sign ("2-of-3"
	// has Threshold 2).
	Threshold int
}

// keygenSpecs are the messages of tss-lib keygen. Every message after
// round 1 is checked against the sender's round-1 moduli, so it waits for
// that message.
var keygenSpecs = []msgSpec{
	{name: "binance.tsslib.ecdsa.keygen.KGRound1Message", broadcast: true},
	{name: "binance.tsslib.ecdsa.keygen.KGRound2Message1", after: "binance.tsslib.ecdsa.keygen.KGRound1Message"},
	{name: "binance.tsslib.ecdsa.keygen.KGRound2Message2", broadcast: true, after: "binance.tsslib.ecdsa.keygen.KGRound1Message"},
	{name: "binance.tsslib.ecdsa.keygen.KGRound3Message", broadcast: true, after: "binance.tsslib.ecdsa.keygen.KGRound1Message"},
}

// Keygen runs distributed key generation with the committee and returns the
// new key. Every party stores its share sealed before Keygen returns; the
// call fails unless every party reports the same public key.
func (e *Engine) Keygen(ctx context.Context, req KeygenRequest) (*KeyInfo, error) {
	var id [16]byte
	if _, err := io.ReadFull(e.cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("tss: read randomness: %w", err)
	}
	prop := &Proposal{
		Op:        OpKeygen,
		KeyID:     hex.EncodeToString(id[:]),
		Parties:   SortParties(req.Parties),
		Threshold: req.Threshold,
	}
	op := newKeygenSession(e, prop)
	if err := e.propose(ctx, prop, op); err != nil {
		return nil, err
	}
	if op.info == nil {
		return nil, fmt.Errorf("%w: keygen ended without a key", ErrProtocol)
	}
	return op.info, nil
}

// keygenSession is a keygen session: tss-lib keygen, then every party
// stores its share and reports the public key and chain code, which the
// initiator checks against its own.
type keygenSession struct {
	e    *Engine
	prop *Proposal

	// set up by newProtocol, owned by the session goroutine
	end    chan *keygen.LocalPartySaveData
	result *keygen.LocalPartySaveData
	pp     *keygen.LocalPreParams

	mu       sync.Mutex
	info     *KeyInfo           // this party's new key, once stored
	reported map[PartyID][]byte // at the initiator: what each party reported
}

var _ sessionOp = (*keygenSession)(nil)

func newKeygenSession(e *Engine, prop *Proposal) *keygenSession {
	return &keygenSession{e: e, prop: prop, end: make(chan *keygen.LocalPartySaveData, 1), reported: make(map[PartyID][]byte)}
}

// check refuses a committee or threshold keygen cannot serve, a key ID
// this party already holds, and a keygen this party has no pre-parameters
// for.
func (k *keygenSession) check(ctx context.Context) error {
	e, prop := k.e, k.prop
	n := len(prop.Parties)
	switch {
	case n < 2 || n > MaxParties:
		return fmt.Errorf("%w: a committee has 2 to %d parties, not %d", ErrBadRequest, MaxParties, n)
	case prop.Threshold < 2 || prop.Threshold > n:
		// M = 1 would give every party the whole key, and tss-lib's VSS
		// refuses a degree-0 polynomial.
		return fmt.Errorf("%w: threshold %d-of-%d is not supported; M must be 2 to %d", ErrBadRequest, prop.Threshold, n, n)
	case len(prop.Payload) != 0 || prop.Path != "" || prop.Count != 0 || len(prop.NewParties) != 0:
		return fmt.Errorf("%w: keygen takes no payload, path, count or new parties", ErrBadRequest)
	}
	if err := validKeyID(prop.KeyID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := e.cfg.Store.Versions(ctx, kindShare, prop.KeyID); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			return fmt.Errorf("%w: key %s already exists here", ErrBadRequest, prop.KeyID)
		}
		return fmt.Errorf("tss: check key %s: %w", prop.KeyID, err)
	}
	if e.cfg.PreParams == nil {
		return fmt.Errorf("%w: %s has no pre-parameter pool", ErrNoPreParams, e.net.Self())
	}
	if ready, err := e.cfg.PreParams.Ready(ctx); err != nil || ready == 0 {
		return fmt.Errorf("%w: %s has none ready; retry when its pool has refilled", ErrNoPreParams, e.net.Self())
	}
	return nil
}

// wantReports is true: every party reports the key it stored.
func (k *keygenSession) wantReports() bool { return true }

// newProtocol reserves a pre-parameter set and builds tss-lib's keygen
// party with it.
func (k *keygenSession) newProtocol(ctx context.Context) (_ protocol, err error) {
	e, prop := k.e, k.prop
	// The set is reserved here and consumed only when round 1, which
	// carries its Paillier key, is about to leave (preParamsGuard).
	lease, err := e.reservePreParams(ctx)
	if err != nil {
		return nil, fmt.Errorf("tss: keygen on %s: %w", e.net.Self(), err)
	}
	k.pp = lease.pp
	defer func() {
		if err != nil {
			lease.release()
			wipePreParams(k.pp)
		}
	}()
	members, self, err := committeeMembers(prop.KeyID, 1, prop.Parties, e.net.Self(), roleMain)
	if err != nil {
		return nil, err
	}
	ids := tsslib.SortPartyIDs(memberIDs(members))
	rnd, err := e.sessionRand(OpKeygen)
	if err != nil {
		return nil, err
	}
	params := tsslib.NewParameters(tsslib.S256(), tsslib.NewPeerContext(ids), self.id, len(ids), prop.Threshold-1)
	params.SetRand(rnd)
	params.SetPartialKeyRand(rnd)
	proto := newTSSLibProtocol(OpKeygen, e.net.Self(), members, keygenSpecs,
		newKeygenValidator(tsslib.S256(), prop.Threshold-1, e.net.Self(), k.pp.PaillierSK.N, k.pp.NTildei))
	var party tsslib.Party
	if err := proto.call(func() *tsslib.Error {
		party = keygen.NewLocalParty(params, proto.out, k.end, *k.pp)
		return nil
	}); err != nil {
		return nil, err
	}
	proto.local[roleMain] = party
	proto.finished = func(role) bool {
		if k.result != nil {
			return true
		}
		select {
		case k.result = <-k.end:
			return true
		default:
			return false
		}
	}
	proto.onWipe = func() {
		wipePreParams(k.pp)
		if k.result != nil {
			(&keyShare{Data: k.result}).wipe()
		}
	}
	return &preParamsGuard{protocol: proto, ctx: ctx, lease: lease, role: roleMain}, nil
}

// finish stores this party's new share sealed and returns the public key
// and chain code it reports.
func (k *keygenSession) finish(ctx context.Context) ([]byte, error) {
	e, prop, result := k.e, k.prop, k.result
	if err := checkModProofsAfterKeygen(result); err != nil {
		return nil, err
	}
	pub, err := compressedPoint(result.ECDSAPub.X(), result.ECDSAPub.Y())
	if err != nil {
		return nil, fmt.Errorf("%w: keygen produced an invalid public key", ErrProtocol)
	}
	sid := prop.SessionID()
	share := &keyShare{
		Format:    shareFormat,
		KeyID:     prop.KeyID,
		Threshold: prop.Threshold,
		Parties:   slices.Clone(prop.Parties),
		Self:      e.net.Self(),
		PublicKey: pub,
		ChainCode: chainCode(sid, pub),
		Epoch:     1,
		Created:   time.Now().UTC().Truncate(time.Second),
		Data:      result,
	}
	for _, p := range prop.Parties {
		id, err := deriveShareID(prop.KeyID, 1, p)
		if err != nil {
			return nil, err
		}
		share.ShareIDs = append(share.ShareIDs, id.Text(16))
	}
	if err := share.validate(); err != nil {
		return nil, fmt.Errorf("%w: keygen result: %w", ErrProtocol, err)
	}
	if err := e.saveShare(ctx, kindShare, share); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.info = share.info()
	k.mu.Unlock()
	e.log.Info("key generated", "key", prop.KeyID, "threshold", prop.Threshold, "parties", len(prop.Parties))
	return append(slices.Clone(pub), share.ChainCode...), nil
}

// report records what one party reports; verify compares.
func (k *keygenSession) report(from PartyID, payload []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reported[from] = slices.Clone(payload)
	return nil
}

// verify blames every party that reported another public key or chain
// code than this party stored.
func (k *keygenSession) verify() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.info == nil {
		return fmt.Errorf("%w: keygen ended without a key", ErrProtocol)
	}
	return mismatchedReports(OpKeygen, k.reported, append(slices.Clone(k.info.PublicKey), k.info.ChainCode...))
}

// mismatchedReports blames every party whose report of a new key differs
// from want, what this party stored.
func mismatchedReports(op Operation, reported map[PartyID][]byte, want []byte) error {
	var bad []PartyID
	for p, got := range reported {
		if !bytes.Equal(got, want) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return &CulpritError{Op: op, Parties: bad, Reason: fmt.Errorf("%w: reported a different public key", ErrProtocol)}
	}
	return nil
}

// committeeMembers builds the tss-lib party IDs of a committee for one key
// and epoch, and returns this site's member.
func committeeMembers(keyID string, epoch uint64, parties []PartyID, self PartyID, r role) ([]*member, *member, error) {
	return buildMembers(parties, self, r, func(p PartyID) (*big.Int, error) { return deriveShareID(keyID, epoch, p) })
}

// buildMembers makes one tss-lib party ID per party, keyed by shareID, and
// returns this site's member among them.
func buildMembers(parties []PartyID, self PartyID, r role, shareID func(PartyID) (*big.Int, error)) ([]*member, *member, error) {
	var members []*member
	var mine *member
	for _, p := range parties {
		key, err := shareID(p)
		if err != nil {
			return nil, nil, err
		}
		m := &member{site: p, role: r, id: tsslib.NewPartyID(string(p), string(p), key)}
		members = append(members, m)
		if p == self {
			mine = m
		}
	}
	if mine == nil {
		return nil, nil, fmt.Errorf("%w: %s is not a party of this session", ErrNotInCommittee, self)
	}
	return members, mine, nil
}

func memberIDs(ms []*member) tsslib.UnSortedPartyIDs {
	out := make(tsslib.UnSortedPartyIDs, len(ms))
	for i, m := range ms {
		out[i] = m.id
	}
	return out
}

// chainCode derives the key's BIP-32 chain code from the keygen session ID
// and the jointly generated public key, so no single party chooses it.
func chainCode(sid SessionID, pub []byte) []byte {
	h := sha256.New()
	h.Write([]byte("keyquorum/chain-code/v1"))
	h.Write(sid[:])
	h.Write(pub)
	return h.Sum(nil)
}

// checkModProofsAfterKeygen re-checks that no party's Paillier modulus is
// suspicious in the saved result: the same modulus twice would mean a
// party replayed another's pre-parameters.
func checkModProofsAfterKeygen(d *keygen.LocalPartySaveData) error {
	seen := make(map[string]bool)
	for _, pk := range d.PaillierPKs {
		if pk == nil || pk.N == nil {
			return fmt.Errorf("%w: keygen result lacks a Paillier key", ErrProtocol)
		}
		k := pk.N.Text(16)
		if seen[k] {
			return fmt.Errorf("%w: two parties use the same Paillier modulus", ErrProtocol)
		}
		seen[k] = true
	}
	return nil
}

func wipePreParams(pp *keygen.LocalPreParams) {
	if pp == nil {
		return
	}
	wipeInt(pp.P)
	wipeInt(pp.Q)
	wipeInt(pp.Alpha)
	wipeInt(pp.Beta)
	if pp.PaillierSK != nil {
		wipeInt(pp.PaillierSK.LambdaN)
		wipeInt(pp.PaillierSK.PhiN)
		wipeInt(pp.PaillierSK.P)
		wipeInt(pp.PaillierSK.Q)
	}
}
