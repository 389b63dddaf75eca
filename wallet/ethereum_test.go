package wallet_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

var (
	testChainID = big.NewInt(11155111) // Sepolia
	tokenAddr   = common.HexToAddress("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
	recipient   = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
)

// erc20Call encodes a call of an (address,uint256) ERC-20 function.
func erc20Call(signature string, to common.Address, amount *big.Int) []byte {
	data := append([]byte{}, crypto.Keccak256([]byte(signature))[:4]...)
	data = append(data, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}

// ethTxs returns one unsigned transaction of each supported type.
func ethTxs() map[string]*types.Transaction {
	return map[string]*types.Transaction{
		"legacy": types.NewTx(&types.LegacyTx{
			Nonce: 3, GasPrice: big.NewInt(30e9), Gas: 21000, To: &recipient, Value: big.NewInt(1e17),
		}),
		"eip2930": types.NewTx(&types.AccessListTx{
			ChainID: testChainID, Nonce: 4, GasPrice: big.NewInt(31e9), Gas: 60000, To: &tokenAddr,
			Data:       erc20Call("transfer(address,uint256)", recipient, big.NewInt(2500000)),
			AccessList: types.AccessList{{Address: tokenAddr, StorageKeys: []common.Hash{{1}}}},
		}),
		"eip1559": types.NewTx(&types.DynamicFeeTx{
			ChainID: testChainID, Nonce: 5, GasTipCap: big.NewInt(2e9), GasFeeCap: big.NewInt(40e9), Gas: 21000,
			To: &recipient, Value: big.NewInt(1234567890123456789),
		}),
	}
}

// checkSignedEthTx verifies a signed transaction with go-ethereum alone.
func checkSignedEthTx(t *testing.T, s wallet.Signer, path hd.Path, unsigned *types.Transaction, res *wallet.SignedEthereumTx) {
	t.Helper()
	pub, err := s.PublicKey(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	want := wallet.EthereumAddress(pub)
	var decoded types.Transaction
	if err := decoded.UnmarshalBinary(res.Raw); err != nil {
		t.Fatalf("raw transaction does not decode: %v", err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(testChainID), &decoded)
	if err != nil || from != want {
		t.Fatalf("go-ethereum recovers sender %s (%v), want %s", from.Hex(), err, want.Hex())
	}
	if decoded.Hash() != res.Hash || common.BytesToHash(crypto.Keccak256(res.Raw)) != res.Hash {
		t.Fatal("Hash is not the hash of Raw")
	}
	if decoded.Type() != unsigned.Type() || decoded.Nonce() != unsigned.Nonce() || decoded.Value().Cmp(unsigned.Value()) != 0 {
		t.Fatal("signed transaction differs from the unsigned one")
	}
	if unsigned.Type() == types.LegacyTxType && (!decoded.Protected() || decoded.ChainId().Cmp(testChainID) != 0) {
		t.Fatal("legacy transaction is not EIP-155 protected for the chain")
	}
}

func TestSignEthereumTx_EachTypeRecoversSender(t *testing.T) {
	k := newLocalKey(t, "", nil)
	path := mustPath(t, "m/0/3")
	for name, tx := range ethTxs() {
		t.Run(name, func(t *testing.T) {
			res, err := wallet.SignEthereumTx(context.Background(), k, path, tx, testChainID)
			if err != nil {
				t.Fatalf("SignEthereumTx: %v", err)
			}
			checkSignedEthTx(t, k, path, tx, res)
			if res.Summary.Ethereum.TxType != name {
				t.Fatalf("summary type %q, want %q", res.Summary.Ethereum.TxType, name)
			}
		})
	}
}

type eip155Vector struct {
	ChainID     int64  `json:"chainId"`
	Nonce       uint64 `json:"nonce"`
	GasPriceWei string `json:"gasPriceWei"`
	GasLimit    uint64 `json:"gasLimit"`
	To          string `json:"to"`
	ValueWei    string `json:"valueWei"`
	SigningHash string `json:"signingHash"`
	PrivateKey  string `json:"privateKey"`
	V           int64  `json:"v"`
	R           string `json:"r"`
	S           string `json:"s"`
	SignedTx    string `json:"signedTx"`
}

func bigDec(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad decimal %q", s)
	}
	return v
}

// TestSignEthereumTx_EIP155Vector reproduces the example of EIP-155: the
// signing hash, and (RFC 6979 nonces being deterministic) the exact signed
// transaction.
func TestSignEthereumTx_EIP155Vector(t *testing.T) {
	var v eip155Vector
	readVectors(t, "eip155.json", &v)
	to := common.HexToAddress(v.To)
	tx := types.NewTx(&types.LegacyTx{
		Nonce: v.Nonce, GasPrice: bigDec(t, v.GasPriceWei), Gas: v.GasLimit, To: &to, Value: bigDec(t, v.ValueWei),
	})
	chainID := big.NewInt(v.ChainID)
	digest, err := wallet.EthereumTxDigest(tx, chainID)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(digest[:]); got != v.SigningHash {
		t.Fatalf("signing hash %s, EIP-155 says %s", got, v.SigningHash)
	}
	k := newLocalKey(t, v.PrivateKey, nil)
	res, err := wallet.SignEthereumTx(context.Background(), k, hd.Path{}, tx, chainID)
	if err != nil {
		t.Fatal(err)
	}
	gotV, gotR, gotS := res.Tx.RawSignatureValues()
	if gotV.Int64() != v.V || gotR.Cmp(bigDec(t, v.R)) != 0 || gotS.Cmp(bigDec(t, v.S)) != 0 {
		t.Fatalf("v,r,s = %v,%v,%v; EIP-155 says %d,%s,%s", gotV, gotR, gotS, v.V, v.R, v.S)
	}
	if got := hex.EncodeToString(res.Raw); got != v.SignedTx {
		t.Fatalf("signed tx %s, EIP-155 says %s", got, v.SignedTx)
	}
}

type eip712Vector struct {
	PrivateKeyPreimage string          `json:"privateKeyPreimage"`
	Address            string          `json:"address"`
	Digest             string          `json:"digest"`
	V                  byte            `json:"v"`
	R                  string          `json:"r"`
	S                  string          `json:"s"`
	TypedData          json.RawMessage `json:"typedData"`
}

// TestSignTypedData_EIP712MailVector reproduces the "Mail" example of
// EIP-712: digest, signer address and (RFC 6979) signature.
func TestSignTypedData_EIP712MailVector(t *testing.T) {
	var v eip712Vector
	readVectors(t, "eip712_mail.json", &v)
	td, err := wallet.ParseTypedData(v.TypedData)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := wallet.TypedDataDigest(td)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(digest[:]); got != v.Digest {
		t.Fatalf("digest %s, EIP-712 says %s", got, v.Digest)
	}
	k := newLocalKey(t, hex.EncodeToString(crypto.Keccak256([]byte(v.PrivateKeyPreimage))), nil)
	res, err := wallet.SignTypedData(context.Background(), k, hd.Path{}, td)
	if err != nil {
		t.Fatal(err)
	}
	if res.From.Hex() != v.Address {
		t.Fatalf("signer %s, EIP-712 says %s", res.From.Hex(), v.Address)
	}
	want := v.R + v.S + hex.EncodeToString([]byte{v.V})
	if got := hex.EncodeToString(res.Bytes65[:]); got != want {
		t.Fatalf("signature %s, EIP-712 says %s", got, want)
	}
	ms := res.Summary.Message
	if ms.Domain.Name != "Ether Mail" || ms.Domain.ChainID != "1" || ms.PrimaryType != "Mail" || !bytes.Contains(ms.Data, []byte("Hello, Bob!")) {
		t.Fatalf("summary %+v", ms)
	}
}

func TestSignPersonalMessage_RecoversWithGoEthereum(t *testing.T) {
	k := newLocalKey(t, "", nil)
	path := mustPath(t, "m/0/9")
	msg := []byte("Withdraw 10 ETH to 0x000000000000000000000000000000000000dEaD")
	res, err := wallet.SignPersonalMessage(context.Background(), k, path, msg)
	if err != nil {
		t.Fatal(err)
	}
	hash := accounts.TextHash(msg)
	if !bytes.Equal(hash, res.Digest[:]) {
		t.Fatalf("digest %x, accounts.TextHash %x", res.Digest, hash)
	}
	if v := res.Bytes65[64]; v != 27 && v != 28 {
		t.Fatalf("V = %d, want 27 or 28", v)
	}
	sig := res.Bytes65
	sig[64] -= 27
	pub, err := crypto.SigToPub(hash, sig[:])
	if err != nil {
		t.Fatal(err)
	}
	child, _ := k.PublicKey(context.Background(), path)
	if crypto.PubkeyToAddress(*pub) != wallet.EthereumAddress(child) || res.From != wallet.EthereumAddress(child) {
		t.Fatalf("go-ethereum recovers %s, want %s", crypto.PubkeyToAddress(*pub).Hex(), wallet.EthereumAddress(child).Hex())
	}
	if res.Summary.Message.Text != string(msg) {
		t.Fatalf("summary text %q", res.Summary.Message.Text)
	}
	bin, _ := wallet.SummarizePersonalMessage(context.Background(), k, path, []byte{0, 1, 2, 0xff})
	if bin.Message.Text != "" || len(bin.Message.Hex) != 4 {
		t.Fatal("binary message must be summarized as hex only")
	}
}

func TestSignEthereumTx_Refusals(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	txs := ethTxs()
	signed, err := wallet.SignEthereumTx(ctx, k, hd.Path{}, txs["eip1559"], testChainID)
	if err != nil {
		t.Fatal(err)
	}
	blob := types.NewTx(&types.BlobTx{ChainID: uint256.MustFromBig(testChainID), Gas: 21000, To: recipient,
		BlobHashes: []common.Hash{{1}}, GasFeeCap: uint256.NewInt(1), GasTipCap: uint256.NewInt(1), BlobFeeCap: uint256.NewInt(1)})

	tests := []struct {
		name    string
		signer  wallet.Signer
		path    hd.Path
		tx      *types.Transaction
		chainID *big.Int
		match   error
	}{
		{"no chain ID", k, nil, txs["legacy"], nil, wallet.ErrChainID},
		{"zero chain ID", k, nil, txs["legacy"], big.NewInt(0), wallet.ErrChainID},
		{"typed tx for another chain", k, nil, txs["eip1559"], big.NewInt(1), wallet.ErrChainID},
		{"blob transaction", k, nil, blob, testChainID, wallet.ErrUnsupportedTxType},
		{"already signed", k, nil, signed.Tx, testChainID, wallet.ErrInvalidTransaction},
		{"no transaction", k, nil, nil, testChainID, wallet.ErrInvalidTransaction},
		{"hardened path", k, hd.Path{hd.HardenedOffset}, txs["legacy"], testChainID, hd.ErrHardened},
		{"signer uses another key", otherKeySigner(t, k), nil, txs["legacy"], testChainID, wallet.ErrInvalidSignature},
		{"signer fails", failingSigner{k}, nil, txs["legacy"], testChainID, errSignerDown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wallet.SignEthereumTx(ctx, tc.signer, tc.path, tc.tx, tc.chainID)
			if !errors.Is(err, tc.match) {
				t.Fatalf("err = %v, want %v", err, tc.match)
			}
		})
	}
}

func TestSummarizeEthereumTx_DecodesERC20Calls(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	maxUint := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	tests := []struct {
		name     string
		data     []byte
		method   string
		args     []string
		warnings int
	}{
		{"transfer", erc20Call("transfer(address,uint256)", recipient, big.NewInt(2500000)),
			"transfer(address,uint256)", []string{recipient.Hex(), "2500000"}, 0},
		{"unlimited approve", erc20Call("approve(address,uint256)", recipient, maxUint),
			"approve(address,uint256)", []string{recipient.Hex(), maxUint.String()}, 1},
		{"truncated transfer", erc20Call("transfer(address,uint256)", recipient, big.NewInt(1))[:40], "", nil, 1},
		{"unknown selector", []byte{1, 2, 3, 4, 5}, "", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := types.NewTx(&types.DynamicFeeTx{ChainID: testChainID, Gas: 90000, GasFeeCap: big.NewInt(10), GasTipCap: big.NewInt(1), To: &tokenAddr, Data: tc.data})
			s, err := wallet.SummarizeEthereumTx(ctx, k, hd.Path{}, tx, testChainID)
			if err != nil {
				t.Fatal(err)
			}
			es := s.Ethereum
			if !bytes.Equal(es.Selector, tc.data[:4]) {
				t.Fatalf("selector %x", []byte(es.Selector))
			}
			if len(s.Warnings) != tc.warnings {
				t.Fatalf("warnings %q, want %d", s.Warnings, tc.warnings)
			}
			if tc.method == "" {
				if es.Call != nil {
					t.Fatalf("decoded %+v, want nothing", es.Call)
				}
				return
			}
			if es.Call == nil || es.Call.Method != tc.method || len(es.Call.Args) != len(tc.args) {
				t.Fatalf("call %+v", es.Call)
			}
			for i, a := range tc.args {
				if es.Call.Args[i].Value != a {
					t.Fatalf("arg %d = %s, want %s", i, es.Call.Args[i].Value, a)
				}
			}
			if es.MaxFee.Int().Int64() != 900000 {
				t.Fatalf("max fee %s, want 900000 wei", es.MaxFee.Int())
			}
		})
	}
}

func TestSummarizeEthereumTx_TextAndJSON(t *testing.T) {
	k := newLocalKey(t, "", nil)
	tx := ethTxs()["eip1559"]
	s, err := wallet.SummarizeEthereumTx(context.Background(), k, mustPath(t, "m/0/3"), tx, testChainID)
	if err != nil {
		t.Fatal(err)
	}
	text := s.Text()
	for _, want := range []string{"eip1559", "chain ID 11155111", recipient.Hex(), "1.234567890123456789 ETH", "at m/0/3"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	js, _ := s.JSON()
	for _, want := range []string{`"valueWei":"1234567890123456789"`, `"chainId":"11155111"`, `"maxFeeWei":"840000000000000"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
	var back wallet.Summary
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("summary JSON does not decode: %v", err)
	}
	again, _ := back.JSON()
	if !bytes.Equal(js, again) {
		t.Fatalf("JSON round trip differs:\n%s\n%s", js, again)
	}
}

func TestParseEthereumTx_RoundTripsUnsignedTransactions(t *testing.T) {
	for name, tx := range ethTxs() {
		raw, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := wallet.ParseEthereumTx(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back.Hash() != tx.Hash() {
			t.Fatalf("%s: round trip changes the transaction", name)
		}
	}
	if _, err := wallet.ParseEthereumTx([]byte{0x02, 0xc0}); !errors.Is(err, wallet.ErrInvalidTransaction) {
		t.Fatalf("err = %v, want ErrInvalidTransaction", err)
	}
}

func TestTypedData_Refusals(t *testing.T) {
	if _, err := wallet.ParseTypedData([]byte(`{"types":`)); !errors.Is(err, wallet.ErrTypedData) {
		t.Fatalf("err = %v, want ErrTypedData", err)
	}
	var v eip712Vector
	readVectors(t, "eip712_mail.json", &v)
	td, _ := wallet.ParseTypedData(v.TypedData)
	td.PrimaryType = "Letter"
	if _, err := wallet.TypedDataDigest(td); !errors.Is(err, wallet.ErrTypedData) {
		t.Fatalf("unknown primary type: err = %v, want ErrTypedData", err)
	}
}

func FuzzParseEthereumTx(f *testing.F) {
	for _, tx := range ethTxs() {
		raw, _ := tx.MarshalBinary()
		f.Add(raw)
	}
	k := newLocalKey(f, "", nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := wallet.ParseEthereumTx(raw)
		if err != nil {
			return
		}
		_, _ = wallet.SummarizeEthereumTx(context.Background(), k.xpub, hd.Path{}, tx, testChainID)
	})
}

func FuzzParseTypedData(f *testing.F) {
	var v eip712Vector
	readVectors(f, "eip712_mail.json", &v)
	f.Add([]byte(v.TypedData))
	k := newLocalKey(f, "", nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		td, err := wallet.ParseTypedData(raw)
		if err != nil {
			return
		}
		_, _ = wallet.SummarizeTypedData(context.Background(), k.xpub, hd.Path{}, td)
	})
}

// checkMessageRecovers checks with go-ethereum that res recovers to want.
func checkMessageRecovers(t *testing.T, res *wallet.SignedMessage, want common.Address) {
	t.Helper()
	sig := res.Bytes65
	if sig[64] != 27 && sig[64] != 28 {
		t.Fatalf("V = %d, want 27 or 28", sig[64])
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(res.Digest[:], sig[:])
	if err != nil {
		t.Fatal(err)
	}
	if got := crypto.PubkeyToAddress(*pub); got != want || res.From != want {
		t.Fatalf("go-ethereum recovers %s, want %s", got.Hex(), want.Hex())
	}
}
