package keyquorum

import (
	"context"
	"fmt"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// KeygenRequest asks for a new threshold key.
type KeygenRequest struct {
	// Parties is the committee; it must include this site.
	Parties []tss.PartyID
	// Threshold is M, the number of sites required to sign ("2-of-3" has
	// Threshold 2 with three parties).
	Threshold int
}

// Keygen creates a new threshold key with the committee req.Parties (which
// must include this site), of which any req.Threshold sites can sign
// ("2-of-3" is Threshold 2 with three parties). Every party needs a ready
// Paillier pre-parameter set ([tss.ErrNoPreParams] otherwise; [Node.Status] shows
// the pool). Every party has stored its share, sealed, before Keygen
// returns the key.
func (n *Node) Keygen(ctx context.Context, req KeygenRequest) (*tss.KeyInfo, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	for _, p := range req.Parties {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("keyquorum: keygen: party %q: %w: %w", p, tss.ErrBadRequest, err)
		}
	}
	h := n.ops.start("keygen", "", tss.SortParties(req.Parties))
	h.update("", nil, fmt.Sprintf("%d-of-%d", req.Threshold, len(req.Parties)))
	info, err := n.eng.Keygen(ctx, tss.KeygenRequest{Parties: req.Parties, Threshold: req.Threshold})
	if err == nil {
		h.update(info.ID, nil, "")
	}
	h.end(err)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: keygen %d-of-%d: %w", req.Threshold, len(req.Parties), err)
	}
	n.log.Info("key generated", "key", info.ID, "threshold", info.Threshold, "parties", len(info.Parties))
	return info, nil
}

// Key returns the description of a key this site holds a share of
// ([tss.ErrUnknownKey] if none).
func (n *Node) Key(ctx context.Context, keyID string) (*tss.KeyInfo, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	info, err := n.eng.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: key %q on %s: %w", keyID, n.party, err)
	}
	return info, nil
}

// Keys lists the keys this site holds shares of.
func (n *Node) Keys(ctx context.Context) ([]*tss.KeyInfo, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	return n.eng.Keys(ctx)
}

// KeyPathRequest names a key and a BIP-32 non-hardened derivation path under
// it.
type KeyPathRequest struct {
	// KeyID names the key.
	KeyID string
	// Path is the derivation path: "" or "m" for the key itself, "m/0/7"
	// for a child.
	Path string
}

// PublicKey returns the public key of req.KeyID at req.Path. It needs no
// other site.
func (n *Node) PublicKey(ctx context.Context, req KeyPathRequest) (*secp256k1.PublicKey, error) {
	p, err := hd.ParsePath(orRoot(req.Path))
	if err != nil {
		return nil, fmt.Errorf("keyquorum: %w: %w", tss.ErrBadRequest, err)
	}
	xpub, err := n.extendedKey(ctx, req.KeyID)
	if err != nil {
		return nil, err
	}
	return xpub.PublicKey(ctx, p)
}

// extendedKey returns keyID's group key and chain code.
func (n *Node) extendedKey(ctx context.Context, keyID string) (wallet.ExtendedPublicKey, error) {
	info, err := n.Key(ctx, keyID)
	if err != nil {
		return wallet.ExtendedPublicKey{}, err
	}
	return ExtendedPublicKey(info)
}

// ExtendedPublicKey returns the BIP-32 view of a threshold key (group key
// and chain code), from which every site derives child keys and addresses
// without any secret.
func ExtendedPublicKey(info *tss.KeyInfo) (wallet.ExtendedPublicKey, error) {
	pub, err := secp256k1.ParsePubKey(info.PublicKey)
	if err != nil {
		return wallet.ExtendedPublicKey{}, fmt.Errorf("keyquorum: key %s has a malformed public key: %w", info.ID, err)
	}
	return wallet.ExtendedPublicKey{Key: pub, ChainCode: info.ChainCode}, nil
}

// orRoot maps the empty path to "m".
func orRoot(path string) string {
	if path == "" {
		return "m"
	}
	return path
}

// canonicalPath returns the form of a derivation path the engine binds
// presignatures to: "" for the key itself, the canonical "m/i/j" otherwise,
// so that "m" and "" name the same pool.
func canonicalPath(path string) (string, error) {
	p, err := hd.ParsePath(orRoot(path))
	if err != nil {
		return "", fmt.Errorf("%w: %w", tss.ErrBadRequest, err)
	}
	if len(p) == 0 {
		return "", nil
	}
	return p.String(), nil
}

// signers validates an explicit signer set, or picks the default one the
// engine also uses: this site plus the first M-1 other committee members
// in sorted order. The result is sorted.
func (n *Node) signers(ctx context.Context, keyID string, signers []tss.PartyID) ([]tss.PartyID, error) {
	if len(signers) > 0 {
		if err := n.checkSigners(signers); err != nil {
			return nil, err
		}
		return tss.SortParties(signers), nil
	}
	info, err := n.eng.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := []tss.PartyID{n.party}
	for _, p := range info.Parties {
		if len(out) == info.Threshold {
			break
		}
		if p != n.party {
			out = append(out, p)
		}
	}
	return tss.SortParties(out), nil
}

// PresignRequest asks for GG20 presignatures.
type PresignRequest struct {
	// KeyID names the key.
	KeyID string
	// Signers is the signer set the presignatures are for; only exactly
	// this set can use them. Empty means this site plus M-1 co-signers
	// that are up (connected ones first, the others dialed; see
	// SignOptions.Signers).
	Signers []tss.PartyID
	// Path is the BIP-32 derivation path they are for ("" or "m" for the
	// key itself). A presignature signs only under its path.
	Path string
	// Count is how many to make. Default 1.
	Count int
}

// PresignResult reports what a Presign call made.
type PresignResult struct {
	// Made is how many presignatures were made and stored on every signer.
	Made int `json:"made"`
	// Pool is the pool's state on this site afterwards.
	Pool PoolStatus `json:"pool"`
}

// Presign makes GG20 presignatures for (key, signers, path) with the other
// signers and leaves each signer its part, sealed in its store. A
// presignature is used at most once: Sign consumes one per signature and an
// aborted online round burns it. On error the result still says how many
// were made.
func (n *Node) Presign(ctx context.Context, req PresignRequest) (*PresignResult, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	h := n.ops.start("presign", req.KeyID, req.Signers)
	res, err := n.presign(ctx, req, h)
	h.end(err)
	if err != nil {
		return res, fmt.Errorf("keyquorum: presign for key %q: %w", req.KeyID, err)
	}
	return res, nil
}

func (n *Node) presign(ctx context.Context, req PresignRequest, h op) (*PresignResult, error) {
	path, err := canonicalPath(req.Path)
	if err != nil {
		return nil, err
	}
	var signers []tss.PartyID
	if len(req.Signers) > 0 {
		signers, err = n.signers(ctx, req.KeyID, req.Signers)
	} else {
		signers, err = n.chooseSigners(ctx, req.KeyID, path, false, nil)
	}
	if err != nil {
		return nil, err
	}
	if req.Count <= 0 {
		req.Count = tss.DefaultPresignCount
	}
	h.update("", signers, fmt.Sprintf("%d presignatures, path %q", req.Count, orRoot(path)))
	made, err := n.eng.Presign(ctx, tss.PresignRequest{KeyID: req.KeyID, Signers: signers, Path: path, Count: req.Count})
	res := &PresignResult{}
	if made != nil {
		res.Made = made.Made
	}
	if err != nil {
		return res, err
	}
	res.Pool, err = n.poolStatus(ctx, made.Pool)
	return res, err
}

// PoolRequest names a presignature pool: a key, a signer set, a path and
// the pool's initiator.
type PoolRequest struct {
	// KeyID names the key.
	KeyID string
	// Signers is the signer set; empty means the default set (this site
	// plus the first M-1 other committee members in sorted order).
	Signers []tss.PartyID
	// Path is the derivation path ("" or "m" for the key itself).
	Path string
	// Initiator is the site whose pool to report: only the site that made
	// presignatures spends them (tss.PoolSpec). Empty means this site.
	Initiator tss.PartyID
}

// PoolStatus reports this site's view of the presignature pool req names.
func (n *Node) PoolStatus(ctx context.Context, req PoolRequest) (PoolStatus, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return PoolStatus{}, err
	}
	defer done()
	spec := tss.PoolSpec{KeyID: req.KeyID, Initiator: req.Initiator}
	if spec.Path, err = canonicalPath(req.Path); err != nil {
		return PoolStatus{}, err
	}
	if spec.Signers, err = n.signers(ctx, req.KeyID, req.Signers); err != nil {
		return PoolStatus{}, err
	}
	return n.poolStatus(ctx, spec)
}

// poolStatus reads one pool from the engine, in the form Status reports it.
func (n *Node) poolStatus(ctx context.Context, spec tss.PoolSpec) (PoolStatus, error) {
	st, err := n.eng.PoolStatus(ctx, spec)
	if err != nil {
		return PoolStatus{}, err
	}
	if spec.Initiator == "" {
		spec.Initiator = n.party
	}
	return PoolStatus{Signers: spec.Signers, Path: orRoot(spec.Path), Initiator: spec.Initiator,
		Target: n.pools.target(spec, n.party, n.cfg.PoolTarget), PoolStatus: st}, nil
}

// PrepareOnline builds this site's tables for checking GG20 online
// signatures under req.KeyID at req.Path now, so that the first large
// batch it initiates does not check its signatures the slower plain way
// while the tables are built in the background (see
// [tss.Engine.PrepareOnline]). Each key and path costs about 3.4 MiB.
func (n *Node) PrepareOnline(ctx context.Context, req KeyPathRequest) error {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	path, err := canonicalPath(req.Path)
	if err != nil {
		return err
	}
	return n.eng.PrepareOnline(ctx, req.KeyID, path)
}

// checkSigners checks the party IDs of an explicit signer set.
func (n *Node) checkSigners(signers []tss.PartyID) error {
	for _, p := range signers {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: signer %q: %w", tss.ErrBadRequest, p, err)
		}
	}
	return nil
}

// checkCommittee checks that an explicit signer set can sign with keyID:
// it includes this site, every member is in the key's committee, and there
// are enough of them.
func (n *Node) checkCommittee(ctx context.Context, keyID string, signers []tss.PartyID) error {
	info, err := n.eng.Key(ctx, keyID)
	if err != nil {
		return err
	}
	set := tss.SortParties(signers)
	if !slices.Contains(set, n.party) {
		return fmt.Errorf("%w: the signers must include this site (%s)", tss.ErrBadRequest, n.party)
	}
	for _, p := range set {
		if !slices.Contains(info.Parties, p) {
			return fmt.Errorf("%w: signer %s is not in the committee of key %s", tss.ErrNotInCommittee, p, keyID)
		}
	}
	if len(slices.Compact(set)) < info.Threshold {
		return fmt.Errorf("%w: key %s is %d-of-%d; %d signers are not enough", tss.ErrBadRequest, keyID, info.Threshold, len(info.Parties), len(set))
	}
	return nil
}
