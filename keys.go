package keyquorum

import (
	"context"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// Keygen creates a new threshold key with the committee req.Parties (which
// must include this site), of which any req.Threshold sites can sign
// ("2-of-3" is Threshold 2 with three parties). Every party needs a ready
// Paillier pre-parameter set ([tss.ErrNoPreParams] otherwise; [Node.Status] shows
// the pool). Every party has stored its share, sealed, before Keygen
// returns the key.
func (n *Node) Keygen(ctx context.Context, req tss.KeygenRequest) (*tss.KeyInfo, error) {
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
	info, err := n.eng.Keygen(ctx, req)
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

// PublicKey returns the public key of keyID at the BIP-32 non-hardened
// derivation path ("" or "m" for the key itself, "m/0/7" for a child).
// It needs no other site.
func (n *Node) PublicKey(ctx context.Context, keyID, path string) (*secp256k1.PublicKey, error) {
	p, err := hd.ParsePath(orRoot(path))
	if err != nil {
		return nil, fmt.Errorf("keyquorum: %w: %w", tss.ErrBadRequest, err)
	}
	xpub, err := n.extendedKey(ctx, keyID)
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
		for _, p := range signers {
			if err := p.Validate(); err != nil {
				return nil, fmt.Errorf("%w: signer %q: %w", tss.ErrBadRequest, p, err)
			}
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
	// this set can use them. Empty means this site plus the first M-1
	// other committee members in sorted order (the same default Sign uses).
	Signers []tss.PartyID
	// Path is the BIP-32 derivation path they are for ("" or "m" for the
	// key itself). A presignature signs only under its path.
	Path string
	// Count is how many to make. Default 1.
	Count int
}

// Presign makes GG20 presignatures for (key, signers, path) with the other
// signers and leaves each signer its part, sealed in its store. A
// presignature is used at most once: Sign consumes one per signature and an
// aborted online round burns it. It returns how many were made and the
// pool's state on this site afterwards.
func (n *Node) Presign(ctx context.Context, req PresignRequest) (*tss.PresignResult, tss.PoolStatus, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, tss.PoolStatus{}, err
	}
	defer done()
	h := n.ops.start("presign", req.KeyID, req.Signers)
	res, st, err := n.presign(ctx, req, h)
	h.end(err)
	if err != nil {
		return res, st, fmt.Errorf("keyquorum: presign for key %q: %w", req.KeyID, err)
	}
	return res, st, nil
}

func (n *Node) presign(ctx context.Context, req PresignRequest, h op) (*tss.PresignResult, tss.PoolStatus, error) {
	path, err := canonicalPath(req.Path)
	if err != nil {
		return nil, tss.PoolStatus{}, err
	}
	signers, err := n.signers(ctx, req.KeyID, req.Signers)
	if err != nil {
		return nil, tss.PoolStatus{}, err
	}
	if req.Count <= 0 {
		req.Count = 1
	}
	h.update("", signers, fmt.Sprintf("%d presignatures, path %q", req.Count, orRoot(path)))
	res, err := n.eng.Presign(ctx, tss.PresignRequest{KeyID: req.KeyID, Signers: signers, Path: path, Count: req.Count})
	if err != nil {
		return res, tss.PoolStatus{}, err
	}
	st, err := n.eng.PoolStatus(ctx, res.Pool)
	return res, st, err
}

// PoolStatus reports this site's view of the presignature pool for (key,
// signers, path); empty signers mean the default set.
func (n *Node) PoolStatus(ctx context.Context, spec tss.PoolSpec) (tss.PoolStatus, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return tss.PoolStatus{}, err
	}
	defer done()
	if spec.Path, err = canonicalPath(spec.Path); err != nil {
		return tss.PoolStatus{}, err
	}
	if spec.Signers, err = n.signers(ctx, spec.KeyID, spec.Signers); err != nil {
		return tss.PoolStatus{}, err
	}
	return n.eng.PoolStatus(ctx, spec)
}

// PrepareOnline builds this site's tables for checking GG20 online
// signatures under the key at path ("" or "m" for the key itself) now, so
// that the first large batch it initiates does not check its signatures
// the slower plain way while the tables are built in the background (see
// [tss.Engine.PrepareOnline]). Each key and path costs about 3.4 MiB.
func (n *Node) PrepareOnline(ctx context.Context, keyID, path string) error {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	if path, err = canonicalPath(path); err != nil {
		return err
	}
	return n.eng.PrepareOnline(ctx, keyID, path)
}
