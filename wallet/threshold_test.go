package wallet_test

// This file implements wallet.Signer with keyquorum's own threshold engine:
// three sites, each with its own SoftHSM2 token and sealed store, run a
// 2-of-3 keygen once per test binary over the in-memory network, then every
// signature is made by two of them, alternating GG18 signing and GG20
// presigning plus one-round online signing, under the requested derivation
// path.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// thresholdKey is a 2-of-3 key of a running committee and a wallet.Signer
// that signs with two of its three parties.
type thresholdKey struct {
	committee *sitetest.Committee
	key       *tss.KeyInfo
	xpub      wallet.ExtendedPublicKey
	next      atomic.Uint32 // rotates the signing pair and the protocol
}

var (
	thresholdOnce sync.Once
	thresholdKeyV *thresholdKey
	thresholdErr  error
)

// sharedThresholdKey runs keygen once per test binary; the committee lives
// until the binary's tests end (see TestMain).
func sharedThresholdKey(t testing.TB) *thresholdKey {
	t.Helper()
	thresholdOnce.Do(func() { thresholdKeyV, thresholdErr = runKeygen() })
	if thresholdErr != nil {
		t.Fatalf("2-of-3 keygen: %v", thresholdErr)
	}
	return thresholdKeyV
}

func runKeygen() (*thresholdKey, error) {
	c := sitetest.NewCommittee(sitetest.Binary(), 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		return nil, err
	}
	pub, err := secp256k1.ParsePubKey(info.PublicKey)
	if err != nil {
		return nil, err
	}
	return &thresholdKey{committee: c, key: info, xpub: wallet.ExtendedPublicKey{Key: pub, ChainCode: info.ChainCode}}, nil
}

// PublicKey implements wallet.KeySource.
func (k *thresholdKey) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return k.xpub.PublicKey(ctx, path)
}

// signingPairs are the three 2-party subsets, used in turn.
var signingPairs = [3][2]int{{0, 1}, {1, 2}, {0, 2}}

// SignDigest implements wallet.Signer with a 2-of-3 run of the engine.
func (k *thresholdKey) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	n := k.next.Add(1) - 1
	pair := signingPairs[n%3]
	a, b := k.committee.Parties[pair[0]], k.committee.Parties[pair[1]]
	signers := []tss.PartyID{a.ID, b.ID}
	var sig *tss.Signature
	var err error
	if n%2 == 0 {
		sig, err = a.Engine.Sign(ctx, tss.SignRequest{KeyID: k.key.ID, Digest: digest[:], Signers: signers, Path: path.String()})
	} else {
		if _, err = b.Engine.Presign(ctx, tss.PresignRequest{KeyID: k.key.ID, Signers: signers, Path: path.String(), Count: 1}); err == nil {
			sig, err = b.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: k.key.ID, Signers: signers, Path: path.String(), Digests: [][]byte{digest[:]}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("threshold signing by parties %v: %w", pair, err)
	}
	return &wallet.Signature{R: sig.R, S: sig.S, RecoveryID: sig.RecoveryID}, nil
}
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
