package main

// The checks in this file use the chains' own libraries and decred's
// secp256k1 package directly; none of keyquorum's code verifies what
// keyquorum signed.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

type keygenOut struct {
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	ChainCode  string `json:"chain_code"`
	BTCAddress string `json:"btc_address"`
	ETHAddress string `json:"eth_address"`
}

type presignOut struct {
	Made  int `json:"made"`
	Ready int `json:"ready"`
}

type signOut struct {
	R         string   `json:"r"`
	S         string   `json:"s"`
	V         int      `json:"v"`
	DER       string   `json:"der"`
	PublicKey string   `json:"public_key"`
	Protocol  string   `json:"protocol"`
	Signers   []string `json:"signers"`
}

func peerList(sites []*site) string {
	var ids []string
	for _, s := range sites {
		ids = append(ids, s.peerID)
	}
	return strings.Join(ids, ",")
}

func siteNames(sites []*site) string {
	var n []string
	for _, s := range sites {
		n = append(n, s.name)
	}
	return strings.Join(n, "+")
}

// signDigest asks site via for a signature of SHA-256(msg) by signers with
// protocol, and verifies it under the key's public key with decred's
// secp256k1 package.
func (d *demo) signDigest(ctx context.Context, via *site, key *keygenOut, msg string, signers []*site, protocol string) (string, error) {
	digest := digestOf(msg)
	var sig signOut
	start := time.Now()
	if err := d.client(ctx, via, &sig, "sign", "--key", key.KeyID, "--digest", hex.EncodeToString(digest[:]),
		"--signers", peerList(signers), "--protocol", protocol); err != nil {
		return "", err
	}
	took := time.Since(start)
	if sig.Protocol != protocol {
		return "", fmt.Errorf("signed with %s, asked for %s", sig.Protocol, protocol)
	}
	if sig.PublicKey != key.PublicKey {
		return "", fmt.Errorf("signature is under %s, not the key's %s", sig.PublicKey, key.PublicKey)
	}
	pubBytes, err := hex.DecodeString(key.PublicKey)
	if err != nil {
		return "", err
	}
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	der, err := hex.DecodeString(sig.DER)
	if err != nil {
		return "", err
	}
	parsed, err := secpecdsa.ParseDERSignature(der)
	if err != nil {
		return "", fmt.Errorf("DER signature: %w", err)
	}
	if !parsed.Verify(digest[:], pub) {
		return "", errors.New("the signature does NOT verify under the key")
	}
	return fmt.Sprintf("%s signature by sites %s in %s: %s…\nverified with github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa",
		protocol, siteNames(signers), took.Round(time.Millisecond), sig.DER[:32]), nil
}

// demoPSBT spends a (made-up, never broadcast) 0.5 BTC regtest output paid
// to the key's address: amount to a fixed address, the rest less the fee as
// change back to the key. It returns the PSBT (base64) and the spent output.
func demoPSBT(key *keygenOut, amount int64) (string, *wire.TxOut, error) {
	net := &chaincfg.RegressionNetParams
	addr, err := btcutil.DecodeAddress(key.BTCAddress, net)
	if err != nil {
		return "", nil, fmt.Errorf("btc_address %q: %w", key.BTCAddress, err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return "", nil, err
	}
	fund := wire.NewMsgTx(2)
	fund.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, []byte{txscript.OP_TRUE}, nil))
	fund.AddTxOut(wire.NewTxOut(50_000_000, script))
	dest, err := btcutil.DecodeAddress("bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202", net)
	if err != nil {
		return "", nil, err
	}
	destScript, err := txscript.PayToAddrScript(dest)
	if err != nil {
		return "", nil, err
	}
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: fund.TxHash(), Index: 0}, nil, nil))
	spend.AddTxOut(wire.NewTxOut(amount, destScript))
	spend.AddTxOut(wire.NewTxOut(50_000_000-amount-10_000, script)) // change back to the key
	packet, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		return "", nil, err
	}
	// Every site checks the amount against the whole funding transaction.
	packet.Inputs[0].WitnessUtxo = fund.TxOut[0]
	packet.Inputs[0].NonWitnessUtxo = fund
	var buf bytes.Buffer
	if err := packet.Serialize(&buf); err != nil {
		return "", nil, err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), fund.TxOut[0], nil
}

// checkBitcoinTx runs btcd's script engine on input 0 of a signed
// transaction spending prev.
func checkBitcoinTx(txHex, txid string, prev *wire.TxOut) (int, error) {
	raw, err := hex.DecodeString(txHex)
	if err != nil {
		return 0, err
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return 0, fmt.Errorf("tx_hex: %w", err)
	}
	if tx.TxHash().String() != txid {
		return 0, fmt.Errorf("txid %s does not match the transaction (%s)", txid, tx.TxHash())
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
	if err != nil {
		return 0, err
	}
	if err := vm.Execute(); err != nil {
		return 0, fmt.Errorf("btcd's script engine rejects the signed input: %w", err)
	}
	return len(raw), nil
}

// signEthereum signs an EIP-1559 transfer and has go-ethereum recover its
// sender.
func (d *demo) signEthereum(ctx context.Context, via *site, key *keygenOut, signers []*site) (string, error) {
	chainID := big.NewInt(1337)
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 0, To: &to, Value: big.NewInt(1e17),
		Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9)})
	unsigned, err := tx.MarshalBinary()
	if err != nil {
		return "", err
	}
	var res struct {
		RawTx string `json:"raw_tx"`
		Hash  string `json:"hash"`
		From  string `json:"from"`
	}
	start := time.Now()
	if err := d.client(ctx, via, &res, "sign-eth", "--key", key.KeyID, "--tx", hex.EncodeToString(unsigned),
		"--chain-id", chainID.String(), "--signers", peerList(signers)); err != nil {
		return "", err
	}
	took := time.Since(start)
	raw, err := hex.DecodeString(res.RawTx)
	if err != nil {
		return "", err
	}
	var signed types.Transaction
	if err := signed.UnmarshalBinary(raw); err != nil {
		return "", fmt.Errorf("raw_tx: %w", err)
	}
	from, err := types.Sender(types.NewLondonSigner(chainID), &signed)
	if err != nil {
		return "", fmt.Errorf("go-ethereum cannot recover the sender: %w", err)
	}
	if from != common.HexToAddress(key.ETHAddress) || res.From != key.ETHAddress {
		return "", fmt.Errorf("sender %s (reported %s), want the key's address %s", from.Hex(), res.From, key.ETHAddress)
	}
	if signed.Hash().Hex() != "0x"+res.Hash {
		return "", fmt.Errorf("hash %s does not match the transaction (%s)", res.Hash, signed.Hash().Hex())
	}
	return fmt.Sprintf("tx %s from %s, signed by sites %s in %s\nsender recovered with go-ethereum types.Sender(LondonSigner)",
		signed.Hash().Hex(), from.Hex(), siteNames(signers), took.Round(time.Millisecond)), nil
}

// expectRefusal asks a site to sign with a stopped site and checks that it
// fails with an error naming that site.
func (d *demo) expectRefusal(ctx context.Context, via *site, key *keygenOut, missing *site) (string, error) {
	digest := digestOf("keyquorum demo: must not be signed")
	var sig signOut
	start := time.Now()
	err := d.client(ctx, via, &sig, "sign", "--key", key.KeyID, "--digest", hex.EncodeToString(digest[:]),
		"--signers", peerList([]*site{via, missing}), "--protocol", "gg18")
	took := time.Since(start)
	if err == nil {
		return "", errors.New("a signature was made without a quorum")
	}
	var ke *kqError
	if !errors.As(err, &ke) {
		return "", fmt.Errorf("unexpected failure: %w", err)
	}
	if ke.Code != "unreachable" && ke.Code != "timeout" {
		return "", fmt.Errorf("failed with code %q, want unreachable or timeout: %w", ke.Code, err)
	}
	if !slices.Contains(ke.Sites, missing.peerID) {
		return "", fmt.Errorf("the error names %v, not the stopped site %s: %w", ke.Sites, missing.peerID, err)
	}
	first, _, _ := strings.Cut(ke.Msg, "\n")
	return fmt.Sprintf("refused after %s with code %q naming site %s (%s):\n%s",
		took.Round(time.Millisecond), ke.Code, missing.name, missing.peerID, first), nil
}
