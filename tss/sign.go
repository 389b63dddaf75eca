package tss

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// SignRequest asks for a threshold signature over a digest.
type SignRequest struct {
	// KeyID names the key.
	KeyID string
	// Digest is the 32-byte message digest to sign (for example a Bitcoin
	// sighash or a Keccak-256 transaction hash).
	Digest []byte
	// Signers are the parties that sign; they must include this party and
	// number at least the key's threshold M. Empty means "the first M
	// parties of the committee, starting with this one".
	Signers []PartyID
	// Path is an optional BIP-32 non-hardened derivation path ("m/0/7");
	// the signature then verifies under the derived key.
	Path string
	// Evidence is passed to every party's Policy (for example approvals).
	Evidence []byte
}

// signSpecs are the messages of tss-lib's GG18 signing. Each opening of a
// commitment is checked against the sender's commitment, so it waits for
// that message.
var signSpecs = []msgSpec{
	{name: "binance.tsslib.ecdsa.signing.SignRound1Message1"},
	{name: "binance.tsslib.ecdsa.signing.SignRound1Message2", broadcast: true},
	{name: "binance.tsslib.ecdsa.signing.SignRound2Message"},
	{name: "binance.tsslib.ecdsa.signing.SignRound3Message", broadcast: true},
	{name: "binance.tsslib.ecdsa.signing.SignRound4Message", broadcast: true, after: "binance.tsslib.ecdsa.signing.SignRound1Message2"},
	{name: "binance.tsslib.ecdsa.signing.SignRound5Message", broadcast: true},
	{name: "binance.tsslib.ecdsa.signing.SignRound6Message", broadcast: true, after: "binance.tsslib.ecdsa.signing.SignRound5Message"},
	{name: "binance.tsslib.ecdsa.signing.SignRound7Message", broadcast: true},
	{name: "binance.tsslib.ecdsa.signing.SignRound8Message", broadcast: true, after: "binance.tsslib.ecdsa.signing.SignRound7Message"},
	{name: "binance.tsslib.ecdsa.signing.SignRound9Message", broadcast: true},
}

// Sign runs classic (GG18) threshold signing with the signers and returns
// a signature that has been verified under the (derived) public key.
func (e *Engine) Sign(ctx context.Context, req SignRequest) (*Signature, error) {
	signers, err := e.defaultSigners(ctx, req.KeyID, req.Signers)
	if err != nil {
		return nil, err
	}
	prop := &Proposal{
		Op:       OpSign,
		KeyID:    req.KeyID,
		Parties:  signers,
		Payload:  slices.Clone(req.Digest),
		Path:     req.Path,
		Evidence: slices.Clone(req.Evidence),
	}
	op := newSignSession(e, prop)
	if err := e.propose(ctx, prop, op); err != nil {
		return nil, err
	}
	sig := op.signature()
	if sig == nil {
		return nil, fmt.Errorf("%w: signing ended without a signature", ErrProtocol)
	}
	return sig, nil
}

// defaultSigners validates an explicit signer list or picks the first M
// parties of the committee starting with this one.
func (e *Engine) defaultSigners(ctx context.Context, keyID string, signers []PartyID) ([]PartyID, error) {
	if len(signers) > 0 {
		return SortParties(signers), nil
	}
	if err := validKeyID(keyID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	info, err := e.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := []PartyID{e.net.Self()}
	for _, p := range info.Parties {
		if len(out) == info.Threshold {
			break
		}
		if p != e.net.Self() {
			out = append(out, p)
		}
	}
	return SortParties(out), nil
}

// signingTarget is what a signing session signs with: the message as a
// scalar, the derivation tweak and the (derived) public key.
type signingTarget struct {
	digest [32]byte
	m      *big.Int
	tweak  *big.Int // nil for the root key
	pub    *secp256k1.PublicKey
}

// checkSigning checks what every signing proposal must satisfy against the
// party's own share: it knows the key, the signers are in the committee and
// are enough, the digest is 32 bytes and not zero mod n, and the path is a
// valid non-hardened path. It returns the share (caller wipes) and target.
func (e *Engine) checkSigning(ctx context.Context, prop *Proposal) (*keyShare, *signingTarget, error) {
	if len(prop.NewParties) != 0 || prop.Threshold != 0 || prop.Count != 0 {
		return nil, nil, fmt.Errorf("%w: signing takes no threshold, count or new parties", ErrBadRequest)
	}
	share, err := e.loadSigningShare(ctx, prop)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*keyShare, *signingTarget, error) {
		share.wipe()
		return nil, nil, err
	}
	for _, p := range prop.Parties {
		if !slices.Contains(share.Parties, p) {
			return fail(fmt.Errorf("%w: signer %s is not in the committee of key %s", ErrNotInCommittee, p, prop.KeyID))
		}
	}
	if len(prop.Parties) < share.Threshold {
		return fail(fmt.Errorf("%w: key %s is %d-of-%d; %d signers are not enough", ErrBadRequest, prop.KeyID, share.Threshold, len(share.Parties), len(prop.Parties)))
	}
	t, err := newSigningTarget(share, prop.Payload, prop.Path)
	if err != nil {
		return fail(err)
	}
	return share, t, nil
}

// loadSigningShare loads the share a signing session uses: the active one,
// or the share of the proposal's epoch (the pending share of a reshare
// being confirmed).
func (e *Engine) loadSigningShare(ctx context.Context, prop *Proposal) (*keyShare, error) {
	if prop.Epoch == 0 {
		return e.loadShare(ctx, prop.KeyID)
	}
	share, err := e.loadShareVersion(ctx, kindPendingShare, prop.KeyID, prop.Epoch)
	if err == nil {
		return share, nil
	}
	share, aerr := e.loadShare(ctx, prop.KeyID)
	if aerr != nil {
		return nil, err
	}
	if share.Epoch != prop.Epoch {
		share.wipe()
		return nil, fmt.Errorf("%w: %s holds key %s at epoch %d, not %d", ErrUnknownKey, e.net.Self(), prop.KeyID, share.Epoch, prop.Epoch)
	}
	return share, nil
}

func newSigningTarget(share *keyShare, digest []byte, path string) (*signingTarget, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("%w: digest must be 32 bytes, not %d", ErrBadRequest, len(digest))
	}
	t := &signingTarget{}
	copy(t.digest[:], digest)
	// bits2int for a 256-bit curve is the identity; reduce once and use
	// the same m everywhere (tss-lib rejects m ≥ n rather than reducing).
	t.m = new(big.Int).SetBytes(digest)
	t.m.Mod(t.m, tsslib.S256().Params().N)
	if t.m.Sign() == 0 {
		return nil, fmt.Errorf("%w: digest is zero modulo the group order", ErrBadRequest)
	}
	pub, err := secp256k1.ParsePubKey(share.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("tss: key %s has a bad public key: %w", share.KeyID, err)
	}
	if t.pub, t.tweak, err = derive(pub, share.ChainCode, path); err != nil {
		return nil, err
	}
	return t, nil
}

// derive returns the public key at the non-hardened BIP-32 path under pub
// (chain code chainCode) and its additive tweak; for "" or "m" it returns
// pub itself and a nil tweak. A bad or hardened path is ErrBadRequest.
func derive(pub *secp256k1.PublicKey, chainCode []byte, path string) (*secp256k1.PublicKey, *big.Int, error) {
	if path == "" {
		return pub, nil, nil
	}
	p, err := hd.ParsePath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if len(p) == 0 {
		return pub, nil, nil
	}
	child, _, tweak, err := hd.Derive(pub, chainCode, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: derive %s: %w", ErrBadRequest, path, err)
	}
	return child, new(big.Int).SetBytes(tweak[:]), nil
}

// applyTweak moves a share's public data to the derived key: y' = y + εG
// and X_j' = X_j + εG (every party adds ε to its x_i, so Σλ_j(x_j+ε) =
// x+ε). tss-lib adds ε to x_i itself (its key-derivation delta).
func applyTweak(share *keyShare, t *signingTarget) error {
	if t.tweak == nil {
		return nil
	}
	ec := tsslib.S256()
	gd := crypto.ScalarBaseMult(ec, t.tweak)
	pub, err := crypto.NewECPoint(ec, t.pub.X(), t.pub.Y())
	if err != nil {
		return fmt.Errorf("%w: derived key: %v", ErrProtocol, err)
	}
	share.Data.ECDSAPub = pub
	for j, x := range share.Data.BigXj {
		nx, err := x.Add(gd)
		if err != nil {
			return fmt.Errorf("%w: derived public share: %v", ErrProtocol, err)
		}
		share.Data.BigXj[j] = nx
	}
	return nil
}

// signerMembers builds the tss-lib party IDs of the signers from the
// share's committee.
func signerMembers(share *keyShare, signers []PartyID, self PartyID) ([]*member, *member, error) {
	return buildMembers(signers, self, roleMain, func(p PartyID) (*big.Int, error) {
		key, ok := share.shareID(p)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotInCommittee, p)
		}
		return key, nil
	})
}

// signSession is a classic (GG18) signing session. Participants report
// nothing: each verifies the signature it computed itself.
type signSession struct {
	e    *Engine
	prop *Proposal

	target *signingTarget // set by check

	// set up by newProtocol, owned by the session goroutine
	end    chan *common.SignatureData
	result *common.SignatureData

	mu  sync.Mutex
	sig *Signature // the verified signature, once finish ran
}

var _ sessionOp = (*signSession)(nil)

func newSignSession(e *Engine, prop *Proposal) *signSession {
	return &signSession{e: e, prop: prop, end: make(chan *common.SignatureData, 1)}
}

// check runs the checks of checkSigning and keeps the signing target; the
// share is unsealed again when the session starts.
func (g *signSession) check(ctx context.Context) error {
	share, target, err := g.e.checkSigning(ctx, g.prop)
	if err != nil {
		return err
	}
	share.wipe() // unsealed again when the session starts
	g.target = target
	return nil
}

// wantReports is false: signers report nothing.
func (g *signSession) wantReports() bool { return false }

// newProtocol unseals the share and builds tss-lib's signing party.
func (g *signSession) newProtocol(ctx context.Context) (protocol, error) {
	share, err := g.e.loadSigningShare(ctx, g.prop)
	if err != nil {
		return nil, err
	}
	rnd, err := g.e.sessionRand(OpSign)
	if err != nil {
		share.wipe()
		return nil, err
	}
	proto, err := newSignProtocol(share, g.prop, g.target, g.e.net.Self(), g.end, rnd)
	if err != nil {
		share.wipe()
		return nil, err
	}
	proto.finished = func(role) bool {
		if g.result != nil {
			return true
		}
		select {
		case g.result = <-g.end:
			return true
		default:
			return false
		}
	}
	return proto, nil
}

// finish checks the signature under the (derived) public key and keeps it.
func (g *signSession) finish(context.Context) ([]byte, error) {
	pub := g.target.pub.SerializeCompressed()
	sig, err := newSignature(new(big.Int).SetBytes(g.result.R), new(big.Int).SetBytes(g.result.S), pub, g.target.digest)
	if err != nil {
		return nil, fmt.Errorf("tss: sign with key %s: %w", g.prop.KeyID, err)
	}
	g.mu.Lock()
	g.sig = sig
	g.mu.Unlock()
	return nil, nil
}

// report ignores a report: signers send none.
func (g *signSession) report(PartyID, []byte) error { return nil }

// verify has nothing to compare: finish verified the signature.
func (g *signSession) verify() error { return nil }

// signature returns the signature once the session succeeded, else nil.
func (g *signSession) signature() *Signature {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sig
}

func newSignProtocol(share *keyShare, prop *Proposal, target *signingTarget, self PartyID, end chan *common.SignatureData, rnd io.Reader) (*tssLibProtocol, error) {
	if err := applyTweak(share, target); err != nil {
		return nil, err
	}
	members, mine, err := signerMembers(share, prop.Parties, self)
	if err != nil {
		return nil, err
	}
	ids := tsslib.SortPartyIDs(memberIDs(members))
	params := tsslib.NewParameters(tsslib.S256(), tsslib.NewPeerContext(ids), mine.id, len(ids), share.Threshold-1)
	params.SetRand(rnd)
	validator, err := newSignValidator(share, members, self)
	if err != nil {
		return nil, err
	}
	proto := newTSSLibProtocol(OpSign, self, members, signSpecs, validator)
	var party tsslib.Party
	if err := proto.call(func() *tsslib.Error {
		party = signing.NewLocalPartyWithKDD(target.m, params, *share.Data, target.tweak, proto.out, end, 32)
		return nil
	}); err != nil {
		validator.wipe()
		return nil, err
	}
	proto.local[roleMain] = party
	proto.onWipe = func() {
		share.wipe()
		validator.wipe()
	}
	return proto, nil
}
