package main

import (
	"context"
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
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyquorum/keyquorum/wallet"
)

// kqnode example makes test transactions to try the signing commands
// without a Bitcoin or Ethereum node:
//
//	kqnode example psbt   --home DIR --key ID [--network regtest] [--amount SAT] [--fee SAT] [--to ADDR] [--json]
//	kqnode example eth-tx --chain-id N --to 0xADDR --value WEI [--nonce N] [--gas N] [--max-fee-per-gas WEI]
//	                      [--max-priority-fee-per-gas WEI] [--data HEX] [--json]
//
// Without --json each prints the transaction alone on stdout (base64 PSBT,
// hex transaction), ready for `> FILE` and `--psbt @FILE` / `--tx @FILE`,
// and what it is on stderr.

// Defaults of the example transactions.
const (
	// exampleFundingSat is the made-up output the example PSBT spends
	// (raised to amount + fee when they exceed it).
	exampleFundingSat = 1_000_000
	exampleAmountSat  = 50_000
	exampleFeeSat     = 1_000
	exampleGas        = 21_000
	// exampleGasWithData is the gas limit of a transaction with --data.
	exampleGasWithData = 100_000
	exampleMaxFee      = "30000000000" // 30 gwei
	exampleTip         = "1000000000"  // 1 gwei
	// maxMoneySat is the Bitcoin supply limit (21 million BTC).
	maxMoneySat = 21_000_000 * 100_000_000
)

// exampleFundingTag is the signature script of the made-up funding
// transaction: it spends nothing (the null outpoint) and says what it is.
var exampleFundingTag = []byte("keyquorum example: this output exists on no chain")

// examplePSBTResult is what kqnode example psbt prints with --json.
type examplePSBTResult struct {
	PSBT     string `json:"psbt"`
	Network  string `json:"network"`
	TestOnly bool   `json:"test_only"`
	Note     string `json:"note"`
	// Funding is the made-up outpoint the PSBT spends, TXID:INDEX, and
	// FundingSat its amount.
	Funding    string `json:"funding_outpoint"`
	FundingSat int64  `json:"funding_sat"`
	From       string `json:"from_address"`
	To         string `json:"to_address"`
	AmountSat  int64  `json:"amount_sat"`
	FeeSat     int64  `json:"fee_sat"`
	ChangeSat  int64  `json:"change_sat"`
}

// exampleEthResult is what kqnode example eth-tx prints with --json.
type exampleEthResult struct {
	Tx      string `json:"tx"`
	ChainID string `json:"chain_id"`
	Note    string `json:"note"`
}

func cmdExample(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode example psbt|eth-tx ... (kqnode example SUBCOMMAND -h for each)"
	e.json = slices.Contains(args, "--json") || slices.Contains(args, "-json")
	if len(args) == 0 {
		return usageErrorf("example: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintf(e.stdout, "usage: %s\n", usage)
		return errHelp
	case "psbt":
		return cmdExamplePSBT(ctx, e, args[1:])
	case "eth-tx":
		return cmdExampleEthTx(e, args[1:])
	}
	return usageErrorf("example: unknown subcommand %q\nusage: %s", args[0], usage)
}

// parseExampleFlags parses a helper's flags, noting --json first so that a
// flag error is reported as JSON too.
func parseExampleFlags(e *env, f *flagSet, jsonOut *bool, args []string) error {
	e.json = slices.ContainsFunc(args, func(a string) bool {
		return a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true"
	})
	if err := f.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *jsonOut
	return nil
}

func cmdExamplePSBT(ctx context.Context, e *env, args []string) error {
	f := newFlagSet("example psbt", "kqnode example psbt --home DIR --key ID [--network regtest] [--amount SAT] [--fee SAT] [--to ADDR] [--json]")
	home := f.String("home", "", "home of a running site that holds the key (required)")
	key := f.String("key", "", "key ID whose address the made-up output pays (required)")
	network := f.String("network", "regtest", "Bitcoin test network: regtest, testnet or signet")
	amount := f.Int64("amount", exampleAmountSat, "satoshi to send to --to")
	fee := f.Int64("fee", exampleFeeSat, "fee in satoshi")
	to := f.String("to", "", "address to pay (default: an address nobody holds a key for, a witness program of zeros)")
	jsonOut := f.Bool("json", false, "print exactly one JSON object on stdout (also on failure)")
	timeout := f.Duration("timeout", time.Minute, "give up waiting for the site after this long")
	operatorKey := f.String("operator-key", "", "the operator's SSH key (default $"+envOperatorKey+"), as for the other client commands")
	if err := parseExampleFlags(e, f, jsonOut, args); err != nil {
		return err
	}
	if *home == "" || *key == "" {
		return usageErrorf("example psbt: --home and --key are required\nusage: %s", f.synopsis)
	}
	params, err := exampleNetwork(*network)
	if err != nil {
		return err
	}
	if *amount <= 0 || *amount > maxMoneySat {
		return usageErrorf("example psbt: --amount %d: want a positive number of satoshi, at most %d", *amount, int64(maxMoneySat))
	}
	if *fee < 0 || *fee > maxMoneySat-*amount {
		return usageErrorf("example psbt: --fee %d: want zero or more satoshi, with --amount at most %d", *fee, int64(maxMoneySat))
	}
	dest, err := exampleDestination(*to, params)
	if err != nil {
		return err
	}
	signer, err := loadOperatorKey(*operatorKey)
	if err != nil {
		return err
	}
	c, err := newClient(*home, *timeout, signer)
	if err != nil {
		return err
	}
	from, err := keyAddress(ctx, c, *key, params)
	if err != nil {
		return err
	}
	packet, err := examplePSBT(params, from, dest, *amount, *fee)
	if err != nil {
		return err
	}
	b64, err := packet.B64Encode()
	if err != nil {
		return fmt.Errorf("example psbt: encode: %w", err)
	}
	funding := packet.UnsignedTx.TxIn[0].PreviousOutPoint
	fundingSat := packet.Inputs[0].WitnessUtxo.Value
	note := fmt.Sprintf("TEST TRANSACTION: it spends %s (%s to %s of key %s), a made-up output that exists on no chain, so no network accepts it once signed",
		funding, wallet.Amount(fundingSat), from, *key)
	if e.json {
		return printJSON(e.stdout, examplePSBTResult{PSBT: b64, Network: *network, TestOnly: true, Note: note,
			Funding: funding.String(), FundingSat: fundingSat, From: from.EncodeAddress(), To: dest.EncodeAddress(),
			AmountSat: *amount, FeeSat: *fee, ChangeSat: fundingSat - *amount - *fee})
	}
	fmt.Fprintf(e.stderr, "kqnode example psbt: %s; it pays %s to %s, fee %s\n", note, wallet.Amount(*amount), dest, wallet.Amount(*fee))
	_, err = fmt.Fprintln(e.stdout, b64)
	return err
}

// exampleNetwork accepts the test networks only: the example spends an
// output that does not exist, which has no place on mainnet.
func exampleNetwork(name string) (*chaincfg.Params, error) {
	switch name {
	case "regtest", "testnet", "signet":
		return wallet.Network(name)
	}
	return nil, usageErrorf("example psbt: --network %q: want regtest, testnet or signet (example transactions are for test networks)", name)
}

// exampleDestination decodes --to for params, or returns the P2WPKH
// address of twenty zero bytes, whose key nobody holds.
func exampleDestination(to string, params *chaincfg.Params) (btcutil.Address, error) {
	if to == "" {
		return btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), params)
	}
	a, err := btcutil.DecodeAddress(to, params)
	if err != nil {
		return nil, usageErrorf("example psbt: --to %q: not a Bitcoin address: %v", to, err)
	}
	if !a.IsForNet(params) {
		return nil, usageErrorf("example psbt: --to %q: not an address of %s", to, params.Name)
	}
	return a, nil
}

// keyAddress asks the site for the key's public key and returns its P2WPKH
// address at m, the btc_address keygen printed.
func keyAddress(ctx context.Context, c *client, keyID string, params *chaincfg.Params) (btcutil.Address, error) {
	var st statusResult
	if err := c.call(ctx, pathStatus, nil, &st); err != nil {
		return nil, err
	}
	if st.Status == nil {
		return nil, fmt.Errorf("example psbt: the site at %s sent no status", c.home.dir)
	}
	for _, k := range st.Keys {
		if k.KeyID != keyID {
			continue
		}
		raw, err := hex.DecodeString(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("example psbt: public key of key %s from the site: %w", keyID, err)
		}
		pub, err := secp256k1.ParsePubKey(raw)
		if err != nil {
			return nil, fmt.Errorf("example psbt: public key of key %s from the site: %w", keyID, err)
		}
		return wallet.BitcoinAddress(pub, wallet.P2WPKH, params)
	}
	return nil, &apiError{body: errorBody{Code: codeUnknownKey,
		Error: fmt.Sprintf("example psbt: the site at %s holds no share of key %s (kqnode status --home %s lists its keys)", c.home.dir, keyID, c.home.dir)}}
}

// examplePSBT returns a PSBT that pays amount to dest and the rest, less
// fee, back to from, spending a made-up output paid to from: output 0 of a
// transaction that spends the null outpoint with exampleFundingTag as its
// signature script. Its input carries the whole funding transaction, as
// every site requires (CVE-2020-14199), and the spent output.
func examplePSBT(params *chaincfg.Params, from, dest btcutil.Address, amount, fee int64) (*psbt.Packet, error) {
	if amount <= 0 || fee < 0 || amount > maxMoneySat-fee {
		return nil, fmt.Errorf("%w: example PSBT: amount %d and fee %d satoshi", errBadRequest, amount, fee)
	}
	fromScript, err := txscript.PayToAddrScript(from)
	if err != nil {
		return nil, fmt.Errorf("example psbt: script of %s: %w", from, err)
	}
	destScript, err := txscript.PayToAddrScript(dest)
	if err != nil {
		return nil, fmt.Errorf("example psbt: script of %s: %w", dest, err)
	}
	funding := max(int64(exampleFundingSat), amount+fee)
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: wire.MaxPrevOutIndex}, exampleFundingTag, nil))
	prev.AddTxOut(wire.NewTxOut(funding, fromScript))
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(amount, destScript))
	if change := funding - amount - fee; change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, fromScript))
	}
	packet, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return nil, fmt.Errorf("example psbt: %w", err)
	}
	packet.Inputs[0].WitnessUtxo = prev.TxOut[0]
	packet.Inputs[0].NonWitnessUtxo = prev
	return packet, nil
}

func cmdExampleEthTx(e *env, args []string) error {
	f := newFlagSet("example eth-tx", "kqnode example eth-tx --chain-id N --to 0xADDR --value WEI [--nonce N] [--gas N] [--max-fee-per-gas WEI] [--max-priority-fee-per-gas WEI] [--data HEX] [--json]")
	chainID := f.String("chain-id", "", "chain ID, decimal (required)")
	to := f.String("to", "", "destination address, 0x and 40 hex digits; mixed case must be a valid EIP-55 checksum (required)")
	value := f.String("value", "", "value in wei, decimal (required; 0 for a contract call)")
	nonce := f.Uint64("nonce", 0, "the sender's nonce")
	gas := f.Uint64("gas", 0, fmt.Sprintf("gas limit (default %d, or %d with --data)", exampleGas, exampleGasWithData))
	maxFee := f.String("max-fee-per-gas", exampleMaxFee, "EIP-1559 max fee per gas, wei")
	tip := f.String("max-priority-fee-per-gas", exampleTip, "EIP-1559 max priority fee per gas, wei")
	data := f.String("data", "", "call data, hex (for example an ERC-20 transfer)")
	jsonOut := f.Bool("json", false, "print exactly one JSON object on stdout (also on failure)")
	if err := parseExampleFlags(e, f, jsonOut, args); err != nil {
		return err
	}
	if *chainID == "" || *to == "" || *value == "" {
		return usageErrorf("example eth-tx: --chain-id, --to and --value are required\nusage: %s", f.synopsis)
	}
	id, ok := new(big.Int).SetString(*chainID, 10)
	if !ok || id.Sign() <= 0 || !id.IsUint64() {
		return usageErrorf("example eth-tx: --chain-id %q: want a positive decimal number", *chainID)
	}
	dest, err := ethAddress(*to)
	if err != nil {
		return err
	}
	val, err := weiFlag("value", *value)
	if err != nil {
		return err
	}
	feeCap, err := weiFlag("max-fee-per-gas", *maxFee)
	if err != nil {
		return err
	}
	tipCap, err := weiFlag("max-priority-fee-per-gas", *tip)
	if err != nil {
		return err
	}
	if tipCap.Cmp(feeCap) > 0 {
		return usageErrorf("example eth-tx: --max-priority-fee-per-gas %s is above --max-fee-per-gas %s", tipCap, feeCap)
	}
	input, err := hex.DecodeString(strings.TrimPrefix(*data, "0x"))
	if err != nil {
		return usageErrorf("example eth-tx: --data: not hex: %v", err)
	}
	limit := *gas
	if limit == 0 {
		limit = exampleGas
		if len(input) > 0 {
			limit = exampleGasWithData
		}
	}
	raw, err := exampleEthTx(id, *nonce, dest, val, limit, tipCap, feeCap, input)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("an unsigned EIP-1559 transaction on chain ID %s: nonce %d, to %s, value %s wei, gas limit %d",
		id, *nonce, dest.Hex(), val, limit)
	if e.json {
		return printJSON(e.stdout, exampleEthResult{Tx: hex.EncodeToString(raw), ChainID: id.String(), Note: note})
	}
	fmt.Fprintf(e.stderr, "kqnode example eth-tx: %s\n", note)
	_, err = fmt.Fprintln(e.stdout, hex.EncodeToString(raw))
	return err
}

// ethAddress parses a 0x-prefixed address. An address in mixed case
// carries an EIP-55 checksum, which must match: a mistyped character is
// an error, not another destination.
func ethAddress(s string) (common.Address, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 40 || !common.IsHexAddress(s) {
		return common.Address{}, usageErrorf("example eth-tx: --to %q: want an address, 0x and 40 hex digits", s)
	}
	a := common.HexToAddress(s)
	if h != strings.ToLower(h) && h != strings.ToUpper(h) && a.Hex() != s {
		return common.Address{}, usageErrorf("example eth-tx: --to %q: the EIP-55 checksum does not match (mistyped? the checksummed form of these digits is %s)", s, a.Hex())
	}
	return a, nil
}

// weiFlag parses a non-negative decimal amount of wei.
func weiFlag(name, s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 256 {
		return nil, usageErrorf("example eth-tx: --%s %q: want a decimal number of wei, 0 or more", name, s)
	}
	return v, nil
}

// exampleEthTx returns the EIP-2718 encoding of an unsigned EIP-1559
// transaction, what kqnode sign-eth --tx takes.
func exampleEthTx(chainID *big.Int, nonce uint64, to common.Address, value *big.Int, gas uint64, tip, feeCap *big.Int, data []byte) ([]byte, error) {
	if chainID == nil || chainID.Sign() <= 0 || value == nil || tip == nil || feeCap == nil {
		return nil, errors.New("example eth-tx: chain ID, value and fees are required")
	}
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, To: &to, Value: value,
		Gas: gas, GasTipCap: tip, GasFeeCap: feeCap, Data: data})
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("example eth-tx: encode: %w", err)
	}
	return raw, nil
}
