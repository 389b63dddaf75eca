package policy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// testNow is the site clock of the tests.
var testNow = time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)

// Addresses of the example treasury policy's lists, and one outside them.
const (
	coldBTC     = "bc1q0a2xmxuk2pcw773kg46rj2rkjv6sman0h6xe7v"
	exchangeBTC = "bc1qcwmfyj3u53rrzvkekuezkgda0vaunlcl9jhs4w"
	outsideBTC  = "bc1qqzvc5t7fxe87907q0uqjk57dl8ywp9zau243n8"
	coldETH     = "0xB07c007061F9D32670E068389B1C5b5A2c3BA963"
	outsideETH  = "0x306a3113E5E11311AE517E0096013b04EFE55da8"
	usdc        = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
)

// testKey is a threshold key as a site describes it: group key, chain code
// and committee. Its private key exists only so that tests can tell what
// the group key is; nothing here signs with it.
type testKey struct {
	key  policy.Key
	xpub wallet.ExtendedPublicKey
}

func newTestKey(t testing.TB, seed string) *testKey {
	t.Helper()
	h := sha256.Sum256([]byte("keyquorum policy test key " + seed))
	pub := secp256k1.PrivKeyFromBytes(h[:]).PubKey()
	cc := sha256.Sum256([]byte("chain code " + seed))
	id := sha256.Sum256(pub.SerializeCompressed())
	return &testKey{
		key: policy.Key{
			ID: hex.EncodeToString(id[:16]), PublicKey: pub.SerializeCompressed(), ChainCode: cc[:],
			Committee: []string{"12D3KooWsiteA", "12D3KooWsiteB", "12D3KooWsiteC"},
		},
		xpub: wallet.ExtendedPublicKey{Key: pub, ChainCode: cc[:]},
	}
}

func mustPath(t testing.TB, s string) hd.Path {
	t.Helper()
	p, err := hd.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (k *testKey) pub(t testing.TB, path string) *secp256k1.PublicKey {
	t.Helper()
	pub, err := k.xpub.PublicKey(context.Background(), mustPath(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// out is an output of a test PSBT: sat to addr, or change to the key at
// m/1/0 when addr is "".
type out struct {
	addr string
	sat  int64
}

// buildPSBT builds a mainnet PSBT with btcd's psbt package that spends
// P2WPKH outputs of k at m/0/0, m/0/1, ... (one per amount in inputs), with
// the whole funding transaction and a BIP-32 derivation field for every
// input, and BIP-32 derivation fields on change outputs.
func buildPSBT(t testing.TB, k *testKey, inputs []int64, outs []out) []byte {
	t.Helper()
	net, _ := wallet.Network("mainnet")
	funding := wire.NewMsgTx(2)
	funding.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("funding " + t.Name())), Index: 1}, []byte{0x51}, nil))
	for i, amt := range inputs {
		addr, err := wallet.BitcoinAddress(k.pub(t, "m/0/"+itoa(i)), wallet.P2WPKH, net)
		if err != nil {
			t.Fatal(err)
		}
		funding.AddTxOut(wire.NewTxOut(amt, payTo(t, addr)))
	}
	tx := wire.NewMsgTx(2)
	for i := range inputs {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: funding.TxHash(), Index: uint32(i)}, nil, nil))
	}
	for _, o := range outs {
		var addr btcutil.Address
		var err error
		if o.addr == "" {
			addr, err = wallet.BitcoinAddress(k.pub(t, "m/1/0"), wallet.P2WPKH, net)
		} else {
			addr, err = btcutil.DecodeAddress(o.addr, net)
		}
		if err != nil {
			t.Fatal(err)
		}
		tx.AddTxOut(wire.NewTxOut(o.sat, payTo(t, addr)))
	}
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		t.Fatal(err)
	}
	fp := wallet.PSBTFingerprint(k.xpub.Key)
	for i := range inputs {
		if err := u.AddInNonWitnessUtxo(funding, i); err != nil {
			t.Fatal(err)
		}
		if err := u.AddInWitnessUtxo(funding.TxOut[i], i); err != nil {
			t.Fatal(err)
		}
		if err := u.AddInBip32Derivation(fp, []uint32{0, uint32(i)}, k.pub(t, "m/0/"+itoa(i)).SerializeCompressed(), i); err != nil {
			t.Fatal(err)
		}
	}
	for i, o := range outs {
		if o.addr == "" {
			if err := u.AddOutBip32Derivation(fp, []uint32{1, 0}, k.pub(t, "m/1/0").SerializeCompressed(), i); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func payTo(t testing.TB, addr btcutil.Address) []byte {
	t.Helper()
	s, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func psbtIntent(t testing.TB, k *testKey, inputs []int64, outs []out) *policy.Intent {
	t.Helper()
	in, err := policy.NewPSBTIntent("mainnet", buildPSBT(t, k, inputs, outs))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// eip1559 returns an unsigned EIP-1559 transaction's encoding.
func eip1559(t testing.TB, chainID int64, nonce uint64, to string, value *big.Int, data []byte) []byte {
	t.Helper()
	addr := common.HexToAddress(to)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(chainID), Nonce: nonce, GasTipCap: big.NewInt(2e9), GasFeeCap: big.NewInt(40e9),
		Gas: 90_000, To: &addr, Value: value, Data: data,
	})
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// erc20 encodes an ERC-20 call with an address and an amount.
func erc20(signature, to string, amount *big.Int) []byte {
	data := append([]byte{}, crypto.Keccak256([]byte(signature))[:4]...)
	data = append(data, common.LeftPadBytes(common.HexToAddress(to).Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}

func ethIntent(t testing.TB, chainID int64, nonce uint64, to string, value *big.Int, data []byte) *policy.Intent {
	t.Helper()
	in, err := policy.NewEthereumTxIntent(uint64(chainID), mustPath(t, "m/44/60"), eip1559(t, chainID, nonce, to, value, data))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func ether(n float64) *big.Int {
	v, _ := new(big.Float).Mul(big.NewFloat(n), big.NewFloat(1e18)).Int(nil)
	return v
}

// permitJSON is an EIP-2612 permit for USDC.
const permitJSON = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
  "Permit": [{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]
 },
 "primaryType": "Permit",
 "domain": {"name":"USD Coin","version":"2","chainId":"1","verifyingContract":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
 "message": {"owner":"0xB07c007061F9D32670E068389B1C5b5A2c3BA963","spender":"0x306a3113E5E11311AE517E0096013b04EFE55da8","value":"1000000000","nonce":"0","deadline":"1900000000"}
}`

// mailJSON is the "Mail" example of EIP-712.
func mailJSON(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "wallet", "eip712_mail.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		TypedData json.RawMessage `json:"typedData"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.TypedData) == 0 {
		t.Fatalf("eip712_mail.json: %v", err)
	}
	return v.TypedData
}

func typedIntent(t testing.TB, js []byte) *policy.Intent {
	t.Helper()
	in, err := policy.NewTypedDataIntent(mustPath(t, "m/44/60"), js)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func messageIntent(t testing.TB, msg string) *policy.Intent {
	t.Helper()
	in, err := policy.NewPersonalMessageIntent(mustPath(t, "m/44/60"), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func rawIntent(t testing.TB) *policy.Intent {
	t.Helper()
	in, err := policy.NewRawDigestIntent(mustPath(t, "m/7"), sha256.Sum256([]byte("anything")))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func derive(t testing.TB, in *policy.Intent, k *testKey) *policy.Plan {
	t.Helper()
	p, err := policy.Derive(context.Background(), in, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
