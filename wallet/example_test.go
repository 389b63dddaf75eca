package wallet_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// memorySigner is an ordinary in-memory key that implements wallet.Signer.
// It stands in for the threshold signer in these examples: in keyquorum the
// signer is the signing engine, and no process ever holds the whole key.
type memorySigner struct {
	key  *secp256k1.PrivateKey
	tree wallet.ExtendedPublicKey
}

func newMemorySigner(seed string) *memorySigner {
	k := sha256.Sum256([]byte("key " + seed))
	c := sha256.Sum256([]byte("chain code " + seed))
	key := secp256k1.PrivKeyFromBytes(k[:])
	return &memorySigner{key: key, tree: wallet.ExtendedPublicKey{Key: key.PubKey(), ChainCode: c[:]}}
}

func (m *memorySigner) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return m.tree.PublicKey(ctx, path)
}

func (m *memorySigner) SignDigest(_ context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	// A threshold signer adds the tweak to each share; here it is added
	// to the one key.
	_, _, tweak, err := hd.Derive(m.tree.Key, m.tree.ChainCode, path)
	if err != nil {
		return nil, err
	}
	var eps secp256k1.ModNScalar
	eps.SetBytes(&tweak)
	child := new(secp256k1.ModNScalar).Set(&m.key.Key)
	child.Add(&eps)
	compact := ecdsa.SignCompact(secp256k1.NewPrivateKey(child), digest[:], true)
	sig := &wallet.Signature{RecoveryID: compact[0] - 31}
	copy(sig.R[:], compact[1:33])
	copy(sig.S[:], compact[33:])
	return sig, nil
}

// ExampleSignPSBT spends a regtest P2WPKH output of the key at m/0/0.
func ExampleSignPSBT() {
	ctx := context.Background()
	signer := newMemorySigner("example") // stand-in for the 2-of-3 signer
	net := &chaincfg.RegressionNetParams

	// Output 0 of prevTx paid 0.01 BTC to the key's address at m/0/0.
	path, _ := hd.ParsePath("m/0/0")
	pub, _ := signer.PublicKey(ctx, path)
	addr, _ := wallet.BitcoinAddress(pub, wallet.P2WPKH, net)
	script, _ := txscript.PayToAddrScript(addr)
	prevTx := wire.NewMsgTx(2)
	prevTx.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, []byte{txscript.OP_TRUE}, nil))
	prevTx.AddTxOut(wire.NewTxOut(1_000_000, script))

	// Pay 0.0099 BTC to a destination, leaving 0.0001 BTC as fee.
	dest, err := btcutil.DecodeAddress("bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202", net)
	if err != nil {
		fmt.Println(err)
		return
	}
	destScript, _ := txscript.PayToAddrScript(dest)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prevTx.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(990_000, destScript))
	packet, _ := psbt.NewFromUnsignedTx(tx)
	packet.Inputs[0].WitnessUtxo = prevTx.TxOut[0]

	res, err := wallet.SignPSBT(ctx, signer, packet, wallet.PSBTOptions{Net: net, Paths: []hd.Path{path}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(res.Plan.Summary.Text())
	fmt.Println("complete:", res.Complete, "txid:", res.Tx.TxHash())
	// Output:
	// Bitcoin transaction on regtest (unsigned txid ef793a779cb020e8f76d669f153273e4a1e2d8c90420b2678d9d5e8a341c13ea, version 2, locktime 0)
	// Inputs (1):
	//   #0 27110552565bc1c2200226374d18853432e8fc2ca86109bca017bb3e3feef1e9:0  0.01000000 BTC  bcrt1qwywuxge3tj387n2alrz0re6yk4lsma0spzpfsk  [ours, p2wpkh at m/0/0, SIGHASH_ALL]
	// Outputs (1):
	//   #0 bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202  0.00990000 BTC
	// Sent to others: 0.00990000 BTC
	// Fee: 0.00010000 BTC
	// Signatures (1):
	//   input 0: key 0275fe7eb9e5b6627e4c88a48abc0f43137d12a1f068546af7cec6982ea93ff724 at m/0/0 signs 06a7d3a6fdb067369597292910e39ebe3a11833e2ee2d40206cdfdad30d63978
	// complete: true txid: ef793a779cb020e8f76d669f153273e4a1e2d8c90420b2678d9d5e8a341c13ea
}

// ExampleSignEthereumTx signs an EIP-1559 transfer with the key at m/0/0.
func ExampleSignEthereumTx() {
	ctx := context.Background()
	signer := newMemorySigner("example") // stand-in for the 2-of-3 signer
	path, _ := hd.ParsePath("m/0/0")

	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	chainID := big.NewInt(1)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: chainID, Nonce: 0, To: &to, Value: big.NewInt(5e16),
		Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9),
	})
	res, err := wallet.SignEthereumTx(ctx, signer, path, tx, chainID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("from:", res.From.Hex())
	fmt.Println("hash:", res.Hash.Hex())
	fmt.Printf("raw: %d bytes, type %d\n", len(res.Raw), res.Raw[0])
	fmt.Print(res.Summary.Text())
	// Output:
	// from: 0xB2513364B04ed74cBEf24F54e4931b74bAF2040E
	// hash: 0x99a25e7d78bd0641ee3a2cf671b041f01b0bf55c8fd3e96828fa67a2862d0d0d
	// raw: 117 bytes, type 2
	// Ethereum eip1559 transaction on chain ID 1
	// From: 0xB2513364B04ed74cBEf24F54e4931b74bAF2040E
	// To: 0x000000000000000000000000000000000000dEaD
	// Value: 0.05 ETH (50000000000000000 wei)
	// Nonce: 0, gas limit: 21000
	// Max fee per gas: 30000000000 wei, max priority fee: 1000000000 wei
	// Max fee: 0.00063 ETH
	// Signatures (1):
	//   key 0275fe7eb9e5b6627e4c88a48abc0f43137d12a1f068546af7cec6982ea93ff724 at m/0/0 signs 45a13d609f3b9897b484daeb7e39f8fbc53eb9c918657e4e56a822e794f6338d
}

// ExampleBitcoinAddress shows the addresses of one derived key.
func ExampleBitcoinAddress() {
	ctx := context.Background()
	tree := newMemorySigner("example").tree // only public data is needed
	path, _ := hd.ParsePath("m/0/1")
	pub, _ := tree.PublicKey(ctx, path)
	for _, typ := range wallet.AddressTypes {
		addr, _ := wallet.BitcoinAddress(pub, typ, &chaincfg.MainNetParams)
		fmt.Printf("%-12s %s\n", typ, addr)
	}
	fmt.Printf("%-12s %s\n", "ethereum", wallet.EthereumAddress(pub).Hex())
	// Output:
	// p2wpkh       bc1qcu2wgsu3re5phl0akxshd365mrh9ajjp9d52sx
	// p2sh-p2wpkh  32349hAGbSnVfKcV4MHZT2pBw8aAVviCGN
	// p2pkh        1K9eVkcbKG76csyMh25z9hvuBi2uJrwMNi
	// ethereum     0xc87F6B2774D6Dbc8892e06816bA87fC0ecc74d75
}

// ExampleSignPersonalMessage signs an EIP-191 message with the group key.
func ExampleSignPersonalMessage() {
	signer := newMemorySigner("example") // stand-in for the 2-of-3 signer
	res, err := wallet.SignPersonalMessage(context.Background(), signer, hd.Path{}, []byte("hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("signer %s\nsignature %x\n", res.From.Hex(), res.Bytes65)
	// Output:
	// signer 0x54721D12E3Ceb770444179db6ebf109882DFC07E
	// signature 3b4052a95917b2668f7641a8b99bccc3305a2314272e5445be8d1d208c17bf185082af3aaab169ae98a8bb95e4e2b4373e219c061f33c14e43f1c385f5db111f1b
}
