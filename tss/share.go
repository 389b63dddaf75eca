package tss

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Store kinds this package writes.
const (
	kindShare        = "share"         // active key shares, one record per key, version = epoch
	kindPendingShare = "share.pending" // shares from a reshare, until the new committee proves it can sign
	kindPreParams    = "preparams"     // Paillier pre-parameters waiting for a keygen
)

const shareFormat = 1

// KeyInfo describes a threshold key. It holds nothing secret.
type KeyInfo struct {
	// ID names the key on every site.
	ID string `json:"key_id"`
	// Threshold is M: how many parties must cooperate to sign.
	Threshold int `json:"threshold"`
	// Parties is the committee, sorted.
	Parties []PartyID `json:"parties"`
	// PublicKey is the 33-byte compressed secp256k1 public key.
	PublicKey []byte `json:"public_key"`
	// ChainCode is the 32-byte BIP-32 chain code all parties derived
	// jointly at keygen, for non-hardened derivation.
	ChainCode []byte `json:"chain_code"`
	// Epoch counts the committees the key has had: 1 after keygen, +1 per
	// reshare.
	Epoch uint64 `json:"epoch"`
	// Created is when this party's share of the current epoch was made
	// (keygen for epoch 1); zero for shares stored by earlier versions.
	Created time.Time `json:"created,omitzero"`
}

// keyShare is what a party stores, sealed, for one key.
type keyShare struct {
	Format    int       `json:"format"`
	KeyID     string    `json:"key_id"`
	Threshold int       `json:"threshold"`
	Parties   []PartyID `json:"parties"`
	// ShareIDs are the tss-lib party keys (share indices), aligned with
	// Parties, in hex.
	ShareIDs  []string `json:"share_ids"`
	Self      PartyID  `json:"self"`
	PublicKey []byte   `json:"public_key"`
	ChainCode []byte   `json:"chain_code"`
	Epoch     uint64   `json:"epoch"`
	// Created is when this share was made (keygen, or the reshare that
	// began its epoch); zero in shares stored by earlier versions.
	Created time.Time                  `json:"created,omitzero"`
	Data    *keygen.LocalPartySaveData `json:"data"`
}

func (k *keyShare) info() *KeyInfo {
	return &KeyInfo{
		ID:        k.KeyID,
		Threshold: k.Threshold,
		Parties:   slices.Clone(k.Parties),
		PublicKey: slices.Clone(k.PublicKey),
		ChainCode: slices.Clone(k.ChainCode),
		Epoch:     k.Epoch,
		Created:   k.Created,
	}
}

// String describes the share by its public parts (key, epoch, committee,
// public key) and never prints its secrets: the share x_i, the Paillier
// and ring-Pedersen secrets and the rest of the tss-lib save data.
func (k keyShare) String() string {
	return fmt.Sprintf("tss.keyShare{KeyID: %q, Epoch: %d, %d-of-%d, Self: %s, PublicKey: %x, Data: [redacted]}",
		k.KeyID, k.Epoch, k.Threshold, len(k.Parties), k.Self, k.PublicKey)
}

// GoString is String, so that %#v does not print secrets either.
func (k keyShare) GoString() string { return k.String() }

// LogValue gives structured logs the share's public parts only, as String
// does.
func (k keyShare) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_id", k.KeyID),
		slog.Uint64("epoch", k.Epoch),
		slog.Int("threshold", k.Threshold),
		slog.Int("parties", len(k.Parties)),
		slog.String("self", string(k.Self)),
		slog.String("public_key", hex.EncodeToString(k.PublicKey)),
		slog.String("data", "[redacted]"),
	)
}

// shareID returns the tss-lib key of party p.
func (k *keyShare) shareID(p PartyID) (*big.Int, bool) {
	i := slices.Index(k.Parties, p)
	if i < 0 {
		return nil, false
	}
	v, ok := new(big.Int).SetString(k.ShareIDs[i], 16)
	return v, ok
}

// wipe overwrites the secret parts of the share.
func (k *keyShare) wipe() {
	if k == nil || k.Data == nil {
		return
	}
	wipeInt(k.Data.Xi)
	wipePreParams(&k.Data.LocalPreParams)
}

// validate checks a loaded share's internal consistency.
func (k *keyShare) validate() error {
	switch {
	case k.Format != shareFormat:
		return fmt.Errorf("share format %d is not supported", k.Format)
	case k.Data == nil || k.Data.Xi == nil || k.Data.ECDSAPub == nil:
		return errors.New("share has no key material")
	case len(k.Parties) != len(k.ShareIDs) || len(k.Parties) != len(k.Data.Ks):
		return errors.New("share committee lists disagree")
	case k.Threshold < 1 || k.Threshold > len(k.Parties):
		return errors.New("share threshold out of range")
	case !slices.Contains(k.Parties, k.Self):
		return errors.New("share does not include its own party")
	}
	// tss-lib's resharing leaves the new share as an unreduced sum of the
	// sub-shares it received (ecdsa/resharing round_4_new_step_2.go), which
	// GG18 tolerates and GG20 rejects as out of range. x mod q is the same
	// share; reduce it.
	q := tsslib.S256().Params().N
	if k.Data.Xi.Sign() < 0 || k.Data.Xi.Cmp(q) >= 0 {
		k.Data.Xi.Mod(k.Data.Xi, q)
	}
	if k.Data.Xi.Sign() == 0 {
		return errors.New("share is zero")
	}
	for i, p := range k.Parties {
		id, ok := new(big.Int).SetString(k.ShareIDs[i], 16)
		if !ok || !slices.ContainsFunc(k.Data.Ks, func(x *big.Int) bool { return x != nil && x.Cmp(id) == 0 }) {
			return fmt.Errorf("share index of %s is not in the key data", p)
		}
	}
	for _, x := range k.Data.BigXj {
		if x == nil {
			return errors.New("share lacks a public share")
		}
		x.SetCurve(tsslib.S256())
	}
	k.Data.ECDSAPub.SetCurve(tsslib.S256())
	pub, err := compressedPoint(k.Data.ECDSAPub.X(), k.Data.ECDSAPub.Y())
	if err != nil || string(pub) != string(k.PublicKey) {
		return errors.New("share public key does not match its key data")
	}
	return nil
}

// deriveShareID gives party p its tss-lib key (share index) for one key and
// epoch. A fresh epoch gives fresh indices, which tss-lib's resharing
// requires when a site sits in both committees.
func deriveShareID(keyID string, epoch uint64, p PartyID) (*big.Int, error) {
	h := sha256.New()
	h.Write([]byte("keyquorum/share-id/v1"))
	writeLenPrefixed(h, []byte(keyID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	h.Write(b[:])
	writeLenPrefixed(h, []byte(p))
	v := new(big.Int).SetBytes(h.Sum(nil))
	v.Mod(v, tsslib.S256().Params().N)
	if v.Sign() == 0 {
		return nil, errors.New("tss: derived share index is zero")
	}
	return v, nil
}

// loadShare unseals the active share of keyID. The caller must wipe it.
func (e *Engine) loadShare(ctx context.Context, keyID string) (*keyShare, error) {
	return e.loadShareKind(ctx, kindShare, keyID)
}

func (e *Engine) loadShareKind(ctx context.Context, kind, keyID string) (*keyShare, error) {
	data, _, err := e.cfg.Store.Get(ctx, kind, keyID)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s holds no share of key %s", ErrUnknownKey, e.net.Self(), keyID)
		}
		return nil, fmt.Errorf("tss: load share of key %s: %w", keyID, err)
	}
	defer clear(data)
	var k keyShare
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("tss: share of key %s does not decode: %w", keyID, err)
	}
	if err := k.validate(); err != nil {
		k.wipe()
		return nil, fmt.Errorf("tss: share of key %s: %w", keyID, err)
	}
	return &k, nil
}

// saveShare seals and writes a share as version k.Epoch of kind.
func (e *Engine) saveShare(ctx context.Context, kind string, k *keyShare) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("tss: encode share of key %s: %w", k.KeyID, err)
	}
	defer clear(data)
	if err := e.cfg.Store.Put(ctx, kind, k.KeyID, k.Epoch, data); err != nil {
		return fmt.Errorf("tss: store share of key %s: %w", k.KeyID, err)
	}
	return nil
}

// Key returns the description of a key this party holds a share of.
func (e *Engine) Key(ctx context.Context, keyID string) (*KeyInfo, error) {
	k, err := e.loadShare(ctx, keyID)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	return k.info(), nil
}

// Keys lists the keys this party holds active shares of.
func (e *Engine) Keys(ctx context.Context) ([]*KeyInfo, error) {
	ids, err := e.cfg.Store.List(ctx, kindShare)
	if err != nil {
		return nil, fmt.Errorf("tss: list keys: %w", err)
	}
	out := make([]*KeyInfo, 0, len(ids))
	for _, id := range ids {
		info, err := e.Key(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func compressedPoint(x, y *big.Int) ([]byte, error) {
	var fx, fy secp256k1.FieldVal
	if x == nil || y == nil || x.BitLen() > 256 || y.BitLen() > 256 {
		return nil, errNotOnCurve
	}
	if fx.SetByteSlice(x.Bytes()) || fy.SetByteSlice(y.Bytes()) {
		return nil, errNotOnCurve
	}
	pub := secp256k1.NewPublicKey(&fx, &fy)
	if !pub.IsOnCurve() {
		return nil, errNotOnCurve
	}
	return pub.SerializeCompressed(), nil
}

// keyMeta is the public part of a key share, cached so that online signing
// need not unseal the share.
type keyMeta struct {
	info     *KeyInfo
	shareIDs map[PartyID]*big.Int
}

type metaCache struct {
	mu sync.Mutex
	m  map[string]*keyMeta
}

// meta returns the public description of the active share of keyID.
func (e *Engine) meta(ctx context.Context, keyID string) (*keyMeta, error) {
	e.metas.mu.Lock()
	if km := e.metas.m[keyID]; km != nil {
		e.metas.mu.Unlock()
		return km, nil
	}
	e.metas.mu.Unlock()
	share, err := e.loadShare(ctx, keyID)
	if err != nil {
		return nil, err
	}
	defer share.wipe()
	km := &keyMeta{info: share.info(), shareIDs: make(map[PartyID]*big.Int)}
	for _, p := range share.Parties {
		id, _ := share.shareID(p)
		km.shareIDs[p] = id
	}
	e.metas.mu.Lock()
	defer e.metas.mu.Unlock()
	if e.metas.m == nil {
		e.metas.m = make(map[string]*keyMeta)
	}
	e.metas.m[keyID] = km
	return km, nil
}

// forgetMeta drops the cached description of keyID after its share changed.
func (e *Engine) forgetMeta(keyID string) {
	e.metas.mu.Lock()
	defer e.metas.mu.Unlock()
	delete(e.metas.m, keyID)
}

// ShareKind is the store kind of a party's active key shares: one record
// per key, its ID the key ID and its version the key's epoch.
const ShareKind = kindShare

// SingleUseKinds returns the store kinds whose records must never come
// back once used: presignature batches and Paillier pre-parameters. A
// backup leaves them out and a restore refuses them, because a restored
// copy could serve a second signature or keygen. (A presignature's HSM
// ledger would still refuse a used one; a pre-parameter set has no such
// guard.)
func SingleUseKinds() []string { return []string{kindPreParams, kindPresig} }
