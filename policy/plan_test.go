package policy_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
)

// TestDerive_MultiInputPSBTIsOneIntentWithOneDigestPerInput checks that a
// two-input PSBT yields both BIP-143 digests, the same ones wallet signs,
// and that change is recognised by its derivation path.
func TestDerive_MultiInputPSBTIsOneIntentWithOneDigestPerInput(t *testing.T) {
	k := newTestKey(t, "plan")
	raw := buildPSBT(t, k, []int64{50_000_000, 30_000_000}, []out{{coldBTC, 70_000_000}, {"", 9_990_000}})
	in, err := policy.NewPSBTIntent("mainnet", raw)
	if err != nil {
		t.Fatal(err)
	}
	plan := derive(t, in, k)
	packet, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	net, _ := wallet.Network("mainnet")
	want, err := wallet.PlanPSBT(context.Background(), k.xpub, packet, wallet.PSBTOptions{Net: net})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Digests) != 2 || len(want.Inputs) != 2 {
		t.Fatalf("%d digests, want 2", len(plan.Digests))
	}
	for i, d := range plan.Digests {
		if d.Digest != want.Inputs[i].Digest || d.Input != i || !d.Path.Equal(want.Inputs[i].Path) {
			t.Fatalf("digest %d = %x at %s, wallet says %x at %s", i, d.Digest, d.Path, want.Inputs[i].Digest, want.Inputs[i].Path)
		}
		if !plan.Covers(d.Digest, d.Path) {
			t.Fatalf("plan does not cover its own digest %d", i)
		}
		if plan.Covers(d.Digest, mustPath(t, "m/0/9")) {
			t.Fatal("plan covers its digest under another path")
		}
	}
	if plan.Covers([32]byte{1}, plan.Digests[0].Path) {
		t.Fatal("plan covers a digest it did not derive")
	}
	if len(plan.Spends) != 1 || plan.Spends[0].Destination != coldBTC || plan.Spends[0].Amount.Int64() != 70_000_000 || plan.Spends[0].Asset != "btc:mainnet" {
		t.Fatalf("spends %+v: change must not count", plan.Spends)
	}
	if plan.Summary.Bitcoin.Sent != 70_000_000 || !plan.Summary.Bitcoin.Outputs[1].Change {
		t.Fatalf("summary %+v", plan.Summary.Bitcoin)
	}
	again := derive(t, in, k)
	if again.SummaryHash != plan.SummaryHash || again.IntentHash != plan.IntentHash {
		t.Fatal("deriving twice gives different hashes")
	}
}

func TestDerive_ChangedOutputChangesBothHashes(t *testing.T) {
	k := newTestKey(t, "plan")
	a := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}, {"", 9_990_000}}), k)
	b := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{outsideBTC, 40_000_000}, {"", 9_990_000}}), k)
	if a.IntentHash == b.IntentHash || a.SummaryHash == b.SummaryHash {
		t.Fatal("a changed output leaves a hash unchanged")
	}
	other := newTestKey(t, "other")
	other.key.Committee = k.key.Committee
	m := messageIntent(t, "hello")
	if derive(t, m, k).SummaryHash == derive(t, m, other).SummaryHash {
		t.Fatal("the summary hash does not depend on the key")
	}
}

func TestDerive_EthereumDigestsAndSpends(t *testing.T) {
	k := newTestKey(t, "plan")
	raw := eip1559(t, 1, 3, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(250e6)))
	in, err := policy.NewEthereumTxIntent(1, mustPath(t, "m/44/60"), raw)
	if err != nil {
		t.Fatal(err)
	}
	plan := derive(t, in, k)
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	want := types.LatestSignerForChainID(big.NewInt(1)).Hash(tx)
	if len(plan.Digests) != 1 || plan.Digests[0].Digest != want || plan.Digests[0].Input != -1 {
		t.Fatalf("digest %x, go-ethereum says %x", plan.Digests[0].Digest, want)
	}
	if len(plan.Spends) != 1 || plan.Spends[0].Asset != "erc20:1:"+usdc || plan.Spends[0].Destination != coldETH || plan.Spends[0].Amount.Int64() != 250e6 {
		t.Fatalf("spends %+v", plan.Spends)
	}

	value := derive(t, ethIntent(t, 1, 4, coldETH, ether(2), nil), k)
	if len(value.Spends) != 1 || value.Spends[0].Asset != "eth:1" || value.Spends[0].Amount.Cmp(ether(2)) != 0 {
		t.Fatalf("spends %+v", value.Spends)
	}
}

func TestDerive_MessageTypedDataAndRawDigests(t *testing.T) {
	k := newTestKey(t, "plan")
	msg := derive(t, messageIntent(t, "hello"), k)
	if msg.Digests[0].Digest != [32]byte(accounts.TextHash([]byte("hello"))) {
		t.Fatal("personal message digest is not EIP-191")
	}
	var td apitypes.TypedData
	td, err := wallet.ParseTypedData(mailJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	if typed := derive(t, typedIntent(t, mailJSON(t)), k); typed.Digests[0].Digest != [32]byte(h) {
		t.Fatal("typed data digest is not EIP-712")
	}
	in := rawIntent(t)
	if raw := derive(t, in, k); !bytes.Equal(raw.Digests[0].Digest[:], in.Payload()) || raw.Summary.Kind != wallet.KindRawDigest {
		t.Fatal("raw digest plan does not sign the digest")
	}
	if len(msg.Spends) != 0 {
		t.Fatal("a message moves no value")
	}
}

func TestDerive_PSBTOfAnotherKeyHasNothingToSign(t *testing.T) {
	k, other := newTestKey(t, "plan"), newTestKey(t, "other")
	in := psbtIntent(t, other, []int64{50_000_000}, []out{{coldBTC, 40_000_000}})
	if _, err := policy.Derive(context.Background(), in, k.key); !errors.Is(err, policy.ErrNothingToSign) {
		t.Fatalf("err = %v, want ErrNothingToSign", err)
	}
}

func TestDerive_RefusesBadKeys(t *testing.T) {
	k := newTestKey(t, "plan")
	in := messageIntent(t, "hello")
	bad := map[string]func(*policy.Key){
		"empty ID":             func(k *policy.Key) { k.ID = "" },
		"ID with a space":      func(k *policy.Key) { k.ID = "a b" },
		"uncompressed key":     func(k *policy.Key) { k.PublicKey = k.PublicKey[:32] },
		"short chain code":     func(k *policy.Key) { k.ChainCode = k.ChainCode[:31] },
		"no committee":         func(k *policy.Key) { k.Committee = nil },
		"unsorted committee":   func(k *policy.Key) { k.Committee = []string{"b", "a"} },
		"repeated member":      func(k *policy.Key) { k.Committee = []string{"a", "a"} },
		"member with a space":  func(k *policy.Key) { k.Committee = []string{"a b"} },
		"not a curve point":    func(k *policy.Key) { k.PublicKey = append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...) },
		"member is empty text": func(k *policy.Key) { k.Committee = []string{""} },
	}
	for name, change := range bad {
		t.Run(name, func(t *testing.T) {
			key := k.key
			key.Committee = append([]string{}, key.Committee...)
			change(&key)
			if _, err := policy.Derive(context.Background(), in, key); !errors.Is(err, policy.ErrKey) {
				t.Fatalf("err = %v, want ErrKey", err)
			}
		})
	}
}

// TestKeyCache_SamePlansAndStillBounded: a cached Derive gives the same
// plans as Derive, with a cache so small it keeps being emptied, and the
// derivation budget still holds for a hostile PSBT.
func TestKeyCache_SamePlansAndStillBounded(t *testing.T) {
	k := newTestKey(t, "cache")
	intents := []*policy.Intent{
		psbtIntent(t, k, []int64{50_000_000, 30_000_000, 10_000_000}, []out{{coldBTC, 80_000_000}, {"", 9_990_000}}),
		messageIntent(t, "hello"),
		ethIntent(t, 1, 0, coldETH, ether(1), nil),
	}
	for _, size := range []int{0, 2} {
		cache := policy.NewKeyCache(size)
		for round := 0; round < 2; round++ {
			for _, in := range intents {
				want := derive(t, in, k)
				got, err := cache.Derive(context.Background(), in, k.key)
				if err != nil {
					t.Fatal(err)
				}
				if got.SummaryHash != want.SummaryHash || len(got.Digests) != len(want.Digests) || got.Digests[0].Digest != want.Digests[0].Digest {
					t.Fatalf("cache size %d, round %d: cached plan differs", size, round)
				}
			}
		}
	}
	// Another key with the same paths must not hit the first key's entries.
	other := newTestKey(t, "cache-other")
	cache := policy.NewKeyCache(0)
	a, _ := cache.Derive(context.Background(), intents[1], k.key)
	b, _ := cache.Derive(context.Background(), intents[1], other.key)
	if a.Digests[0].PublicKey[1] == b.Digests[0].PublicKey[1] && string(a.Digests[0].PublicKey) == string(b.Digests[0].PublicKey) {
		t.Fatal("two keys share a cached child key")
	}
}
