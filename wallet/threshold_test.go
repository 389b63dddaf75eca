package wallet_test

// This file implements wallet.Signer with a real 2-of-3 tss-lib run inside
// the test process: one keygen per test binary, then GG18 signing by two of
// the three parties for every signature, with tss-lib's key-derivation delta
// set to the hd tweak of the requested path. The signing engine of package
// tss will replace it; wallet.Signer is the seam.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	tsscrypto "github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

const (
	committeeSize = 3
	signersNeeded = 2 // "2-of-3"; tss-lib's threshold t is signersNeeded-1
)

// thresholdKey is a 2-of-3 key made by tss-lib keygen, and a wallet.Signer
// that signs with two of its three parties.
type thresholdKey struct {
	parties [committeeSize]partyRef // sorted as tss-lib sorted them for keygen
	saves   [committeeSize]keygen.LocalPartySaveData
	xpub    wallet.ExtendedPublicKey
	next    atomic.Uint32 // rotates the signing pair
}

type partyRef struct {
	id, moniker string
	key         *big.Int
}

var (
	thresholdOnce sync.Once
	thresholdKeyV *thresholdKey
	thresholdErr  error
)

// sharedThresholdKey runs keygen once per test binary.
func sharedThresholdKey(t testing.TB) *thresholdKey {
	t.Helper()
	thresholdOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		thresholdKeyV, thresholdErr = runKeygen(ctx)
	})
	if thresholdErr != nil {
		t.Fatalf("2-of-3 keygen: %v", thresholdErr)
	}
	return thresholdKeyV
}

func loadPreParams(i int) (keygen.LocalPreParams, error) {
	var pp keygen.LocalPreParams
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "preparams", fmt.Sprintf("preparams-%02d.json", i)))
	if err != nil {
		return pp, err
	}
	if err := json.Unmarshal(raw, &pp); err != nil {
		return pp, fmt.Errorf("preparams %02d: %w", i, err)
	}
	if !pp.ValidateWithProof() {
		return pp, fmt.Errorf("preparams %02d are incomplete", i)
	}
	return pp, nil
}

func runKeygen(ctx context.Context) (*thresholdKey, error) {
	k := &thresholdKey{}
	ids := make(tss.UnSortedPartyIDs, committeeSize)
	for i := range ids {
		ids[i] = tss.NewPartyID(fmt.Sprintf("site-%d", i+1), fmt.Sprintf("site %d", i+1), big.NewInt(int64(i+1)))
	}
	sorted := tss.SortPartyIDs(ids)
	peers := tss.NewPeerContext(sorted)

	out := make(chan tss.Message, 64*committeeSize)
	end := make(chan *keygen.LocalPartySaveData, committeeSize)
	parties := make([]tss.Party, committeeSize)
	for i, pid := range sorted {
		pp, err := loadPreParams(i)
		if err != nil {
			return nil, err
		}
		k.parties[i] = partyRef{id: pid.Id, moniker: pid.Moniker, key: new(big.Int).SetBytes(pid.Key)}
		params := tss.NewParameters(tss.S256(), peers, pid, committeeSize, signersNeeded-1)
		parties[i] = keygen.NewLocalParty(params, out, end, pp)
	}
	results, err := runParties(ctx, parties, out, end)
	if err != nil {
		return nil, err
	}
	for _, save := range results {
		idx, err := save.OriginalIndex()
		if err != nil {
			return nil, err
		}
		k.saves[idx] = *save
	}
	pub := k.saves[0].ECDSAPub
	var x, y secp256k1.FieldVal
	x.SetByteSlice(pub.X().Bytes())
	y.SetByteSlice(pub.Y().Bytes())
	// The chain code is agreed at keygen; here it is simply random.
	chainCode := make([]byte, hd.ChainCodeLen)
	if _, err := rand.Read(chainCode); err != nil {
		return nil, err
	}
	k.xpub = wallet.ExtendedPublicKey{Key: secp256k1.NewPublicKey(&x, &y), ChainCode: chainCode}
	return k, nil
}

// runParties starts the parties and routes their messages through Go
// channels, serialized to wire bytes and parsed back as a network would,
// until every party has delivered its result on end.
func runParties[T any](ctx context.Context, parties []tss.Party, out chan tss.Message, end chan T) ([]T, error) {
	errCh := make(chan *tss.Error, 4*len(parties))
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Start(); err != nil {
				errCh <- err
			}
		}()
	}
	var results []T
	for len(results) < len(parties) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-errCh:
			return nil, err
		case r := <-end:
			results = append(results, r)
		case msg := <-out:
			for _, p := range parties {
				from := msg.GetFrom().Index
				if p.PartyID().Index == from {
					continue
				}
				if to := msg.GetTo(); to != nil && to[0].Index != p.PartyID().Index {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					deliver(p, msg, errCh)
				}()
			}
		}
	}
	return results, nil
}

func deliver(p tss.Party, msg tss.Message, errCh chan<- *tss.Error) {
	wire, _, err := msg.WireBytes()
	if err != nil {
		errCh <- p.WrapError(err)
		return
	}
	parsed, err := tss.ParseWireMessage(wire, msg.GetFrom(), msg.IsBroadcast())
	if err != nil {
		errCh <- p.WrapError(err)
		return
	}
	if _, terr := p.Update(parsed); terr != nil {
		errCh <- terr
	}
}

// PublicKey implements wallet.KeySource.
func (k *thresholdKey) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return k.xpub.PublicKey(ctx, path)
}

// signingPairs are the three 2-party subsets, used in turn.
var signingPairs = [3][2]int{{0, 1}, {1, 2}, {0, 2}}

// SignDigest implements wallet.Signer with a 2-of-3 tss-lib signing run.
func (k *thresholdKey) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	child, _, tweak, err := hd.Derive(k.xpub.Key, k.xpub.ChainCode, path)
	if err != nil {
		return nil, err
	}
	var delta *big.Int
	if tweak != ([32]byte{}) {
		delta = new(big.Int).SetBytes(tweak[:])
	}
	pair := signingPairs[(k.next.Add(1)-1)%3]

	ids := make(tss.UnSortedPartyIDs, 0, signersNeeded)
	orig := map[string]int{}
	for _, i := range pair {
		ref := k.parties[i]
		ids = append(ids, tss.NewPartyID(ref.id, ref.moniker, ref.key))
		orig[ref.id] = i
	}
	sorted := tss.SortPartyIDs(ids)
	peers := tss.NewPeerContext(sorted)
	out := make(chan tss.Message, 64*signersNeeded)
	end := make(chan *common.SignatureData, signersNeeded)
	m := new(big.Int).SetBytes(digest[:])
	parties := make([]tss.Party, len(sorted))
	for i, pid := range sorted {
		save, err := derivedSave(k.saves[orig[pid.Id]], delta, child)
		if err != nil {
			return nil, err
		}
		params := tss.NewParameters(tss.S256(), peers, pid, signersNeeded, signersNeeded-1)
		parties[i] = signing.NewLocalPartyWithKDD(m, params, save, delta, out, end, len(digest))
	}
	results, err := runParties(ctx, parties, out, end)
	if err != nil {
		return nil, fmt.Errorf("tss-lib signing by parties %v: %w", pair, err)
	}
	for _, r := range results[1:] {
		if string(r.R) != string(results[0].R) || string(r.S) != string(results[0].S) {
			return nil, errors.New("signing parties disagree on the signature")
		}
	}
	sd := results[0]
	sig := &wallet.Signature{}
	if len(sd.R) > 32 || len(sd.S) > 32 || len(sd.SignatureRecovery) != 1 {
		return nil, fmt.Errorf("malformed tss-lib signature data")
	}
	copy(sig.R[32-len(sd.R):], sd.R)
	copy(sig.S[32-len(sd.S):], sd.S)
	sig.RecoveryID = sd.SignatureRecovery[0]
	return sig, nil
}

// derivedSave returns a copy of save for signing under the child key
// child = X + delta·G: tss-lib expects the child public key and every
// party's public share X_j + delta·G (see its UpdatePublicKeyAndAdjustBigXj),
// and adds delta to the secret share itself. Fresh slices keep the shared
// keygen result unchanged.
func derivedSave(save keygen.LocalPartySaveData, delta *big.Int, child *secp256k1.PublicKey) (keygen.LocalPartySaveData, error) {
	if delta == nil {
		return save, nil
	}
	curve := tss.S256()
	gDelta := tsscrypto.ScalarBaseMult(curve, delta)
	out := save
	out.BigXj = make([]*tsscrypto.ECPoint, len(save.BigXj))
	for j, X := range save.BigXj {
		var err error
		if out.BigXj[j], err = X.Add(gDelta); err != nil {
			return out, err
		}
	}
	cx, cy := child.X(), child.Y()
	pub, err := tsscrypto.NewECPoint(curve, cx, cy)
	if err != nil {
		return out, err
	}
	out.ECDSAPub = pub
	return out, nil
}

// TestThreshold2of3_SignPSBT signs the mixed regtest PSBT (P2WPKH,
// P2SH-P2WPKH and P2PKH inputs of the threshold key next to an input of
// another party) with real 2-of-3 signatures, and verifies the final
// transaction with btcd's script engine.
func TestThreshold2of3_SignPSBT(t *testing.T) {
	checkMixedPSBTSigned(t, sharedThresholdKey(t))
}

// TestThreshold2of3_SignEthereum signs every supported Ethereum payload with
// real 2-of-3 signatures and lets go-ethereum recover the signer.
func TestThreshold2of3_SignEthereum(t *testing.T) {
	k := sharedThresholdKey(t)
	ctx := context.Background()
	path := mustPath(t, "m/0/3")
	for name, tx := range ethTxs() {
		t.Run(name, func(t *testing.T) {
			res, err := wallet.SignEthereumTx(ctx, k, path, tx, testChainID)
			if err != nil {
				t.Fatalf("SignEthereumTx: %v", err)
			}
			checkSignedEthTx(t, k, path, tx, res)
		})
	}
	t.Run("EIP-191 personal message at the group key", func(t *testing.T) {
		msg := []byte("keyquorum 2-of-3 proof of control")
		res, err := wallet.SignPersonalMessage(ctx, k, hd.Path{}, msg)
		if err != nil {
			t.Fatal(err)
		}
		checkMessageRecovers(t, res, wallet.EthereumAddress(k.xpub.Key))
	})
	t.Run("EIP-712 typed data", func(t *testing.T) {
		var v eip712Vector
		readVectors(t, "eip712_mail.json", &v)
		td, err := wallet.ParseTypedData(v.TypedData)
		if err != nil {
			t.Fatal(err)
		}
		res, err := wallet.SignTypedData(ctx, k, path, td)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%x", res.Digest) != v.Digest {
			t.Fatalf("digest %x, EIP-712 says %s", res.Digest, v.Digest)
		}
		child, _ := k.PublicKey(ctx, path)
		checkMessageRecovers(t, res, wallet.EthereumAddress(child))
	})
}
