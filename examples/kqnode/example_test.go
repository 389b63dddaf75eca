package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/wallet"
)

// TestExample_BadInputIsUsageError: every bad flag of the example helpers
// is a usage error (exit 2, code bad_request) that names the flag, found
// before the helper touches --home (which here is no site home: reaching
// it would fail with exit 1).
func TestExample_BadInputIsUsageError(t *testing.T) {
	home := filepath.Join(t.TempDir(), "no-site-here")
	psbtArgs := func(extra ...string) []string {
		return append([]string{"example", "psbt", "--home", home, "--key", "00112233445566778899aabbccddeeff"}, extra...)
	}
	eth := func(extra ...string) []string {
		args := []string{"example", "eth-tx", "--chain-id", "1337", "--to", "0x000000000000000000000000000000000000dEaD", "--value", "1"}
		return append(args, extra...)
	}
	cases := []struct {
		name string
		args []string
		want string // in the message
	}{
		{"no subcommand", []string{"example"}, "subcommand"},
		{"unknown subcommand", []string{"example", "tx"}, `"tx"`},
		{"psbt without key", []string{"example", "psbt", "--home", home}, "--key"},
		{"psbt unknown network", psbtArgs("--network", "bitcoin"), "--network"},
		{"psbt mainnet", psbtArgs("--network", "mainnet"), "test networks"},
		{"psbt amount 0", psbtArgs("--amount", "0"), "--amount"},
		{"psbt negative amount", psbtArgs("--amount", "-5"), "--amount"},
		{"psbt amount not a number", psbtArgs("--amount", "1btc"), "amount"},
		{"psbt amount over the supply", psbtArgs("--amount", "2100000000000001"), "--amount"},
		{"psbt negative fee", psbtArgs("--fee", "-1"), "--fee"},
		{"psbt bad address", psbtArgs("--to", "bcrt1qnotanaddress"), "--to"},
		{"psbt address of another network", psbtArgs("--to", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"), "--to"},
		{"eth without value", []string{"example", "eth-tx", "--chain-id", "1", "--to", "0x000000000000000000000000000000000000dEaD"}, "--value"},
		{"eth chain ID 0", eth("--chain-id", "0"), "--chain-id"},
		{"eth short address", eth("--to", "0xdead"), "--to"},
		{"eth address without 0x", eth("--to", "000000000000000000000000000000000000dEaD"), "--to"},
		{"eth bad checksum", eth("--to", "0x000000000000000000000000000000000000DeaD"), "EIP-55"},
		{"eth negative value", eth("--value", "-1"), "--value"},
		{"eth value in ether", eth("--value", "0.01"), "--value"},
		{"eth tip above fee cap", eth("--max-fee-per-gas", "1", "--max-priority-fee-per-gas", "2"), "--max-priority-fee-per-gas"},
		{"eth data not hex", eth("--data", "0xzz"), "--data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(tc.args, "--json"), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
			}
			var eb errorBody
			if err := json.Unmarshal(stdout.Bytes(), &eb); err != nil || eb.Code != codeBadRequest {
				t.Fatalf("stdout %q (%v), want a bad_request error body", stdout.String(), err)
			}
			if !strings.HasPrefix(stderr.String(), "kqnode example") || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.want)
			}
			if _, err := os.Stat(home); err == nil {
				t.Errorf("the helper created %s", home)
			}
		})
	}
}

// TestCLI_ExampleTransactionsSignedWithSummary follows the README: kqnode
// example makes a PSBT and Ethereum transactions, sign-psbt and sign-eth
// sign them, and both print the summary of what the site signed (as text
// and in --json) which matches the transactions; the signatures verify
// with btcd's script engine and go-ethereum.
func TestCLI_ExampleTransactionsSignedWithSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writePeers(t, root, sites), testPolicyFile(t), sites)
	key := keygen2of3(t, c, a, b, sc)

	t.Run("PSBT", func(t *testing.T) {
		// The README's lines: example psbt > spend.psbt, sign-psbt --psbt @spend.psbt.
		args := []string{"example", "psbt", "--home", sc.home, "--key", key.KeyID, "--amount", "50000"}
		r := c.run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "TEST TRANSACTION") || !strings.Contains(r.stderr, "exists on no chain") {
			t.Fatalf("example psbt: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		file := filepath.Join(root, "spend.psbt")
		if err := os.WriteFile(file, []byte(r.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		var ex examplePSBTResult
		c.ok(t, nil, &ex, args...)
		if ex.PSBT != strings.TrimSpace(r.stdout) || !ex.TestOnly || ex.From != key.BTCAddress ||
			ex.To != "bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202" || ex.AmountSat != 50000 || ex.FeeSat != 1000 || ex.ChangeSat != ex.FundingSat-51000 {
			t.Fatalf("example psbt --json: %+v", ex)
		}
		// A key the site does not hold.
		eb := c.fails(t, nil, 1, codeUnknownKey, "example", "psbt", "--home", sc.home, "--key", strings.Repeat("ab", 16))
		if !strings.Contains(eb.Error, "kqnode status --home "+sc.home) {
			t.Errorf("unknown key: %s does not say how to list the keys", eb.Error)
		}
		// Human output: the result lines, then the summary as text.
		r = c.run(t, nil, "sign-psbt", "--home", sc.home, "--key", key.KeyID, "--signers", b.peerID+","+sc.peerID, "--psbt", "@"+file)
		if r.code != 0 {
			t.Fatalf("sign-psbt: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		t.Logf("sign-psbt prints:\n%s", r.stdout)
		for _, want := range []string{
			"complete:     true", summaryHeading, "Bitcoin transaction on regtest",
			fmt.Sprintf("0.%08d BTC  %s", ex.FundingSat, key.BTCAddress),
			"#0 " + ex.To + "  0.00050000 BTC\n",
			fmt.Sprintf("#1 %s  0.%08d BTC  [change to this key at m]", key.BTCAddress, ex.ChangeSat),
			"Sent to others: 0.00050000 BTC", "Fee: 0.00001000 BTC", "fee_rate_sat_vb:",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("sign-psbt output lacks %q", want)
			}
		}

		// --json, with --to and --fee: the summary as an object.
		destAddr, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0x11}, 20), &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		dest := destAddr.EncodeAddress()
		c.ok(t, nil, &ex, "example", "psbt", "--home", a.home, "--key", key.KeyID, "--amount", "50000", "--fee", "1500", "--to", dest)
		if ex.From != key.BTCAddress || ex.To != dest || ex.AmountSat != 50000 || ex.FeeSat != 1500 || ex.ChangeSat != ex.FundingSat-51500 {
			t.Fatalf("example psbt --to --fee --json: %+v", ex)
		}
		raw, err := base64.StdEncoding.DecodeString(ex.PSBT)
		if err != nil {
			t.Fatal(err)
		}
		packet, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
		if err != nil {
			t.Fatal(err)
		}
		prev := packet.Inputs[0].WitnessUtxo
		var res signPSBTResult
		c.ok(t, nil, &res, "sign-psbt", "--home", a.home, "--key", key.KeyID, "--psbt", ex.PSBT, "--signers", a.peerID+","+b.peerID)
		var s wallet.Summary
		if err := json.Unmarshal(res.Summary, &s); err != nil || s.Bitcoin == nil {
			t.Fatalf("summary %s: %v", res.Summary, err)
		}
		bs := s.Bitcoin
		if s.Kind != wallet.KindBitcoinPSBT || bs.Network != "regtest" || len(bs.Inputs) != 1 || len(bs.Outputs) != 2 ||
			bs.Inputs[0].Address != key.BTCAddress || !bs.Inputs[0].Ours || bs.Inputs[0].Amount == nil || int64(*bs.Inputs[0].Amount) != prev.Value ||
			bs.Outputs[0].Address != dest || bs.Outputs[0].Amount != 50000 || bs.Outputs[0].Change ||
			bs.Outputs[1].Address != key.BTCAddress || int64(bs.Outputs[1].Amount) != ex.ChangeSat || !bs.Outputs[1].Change ||
			bs.Fee == nil || *bs.Fee != 1500 || bs.Sent != 50000 || bs.UnsignedTxID != packet.UnsignedTx.TxHash().String() {
			t.Fatalf("summary does not describe the PSBT: %s", res.Summary)
		}
		txRaw, _ := hex.DecodeString(res.TxHex)
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(txRaw)); err != nil || tx.TxHash().String() != res.TxID {
			t.Fatalf("tx_hex/txid: %v", err)
		}
		if !res.Complete || res.VSize < int64(tx.SerializeSizeStripped()) || res.VSize > int64(tx.SerializeSize()) ||
			math.Abs(res.FeeRate*float64(res.VSize)-1500) > 0.01*float64(res.VSize) {
			t.Fatalf("vsize %d, fee rate %v for a fee of 1500 sat and a %d-byte transaction", res.VSize, res.FeeRate, len(txRaw))
		}
		fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
		vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
			txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("btcd's script engine rejects the input: %v", err)
		}
	})

	t.Run("Ethereum", func(t *testing.T) {
		const to = "0x000000000000000000000000000000000000dEaD"
		args := []string{"example", "eth-tx", "--chain-id", "1337", "--to", to, "--value", "10000000000000000", "--nonce", "0"}
		r := c.run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "unsigned EIP-1559") {
			t.Fatalf("example eth-tx: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		file := filepath.Join(root, "tx.hex")
		if err := os.WriteFile(file, []byte(r.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		var ex exampleEthResult
		c.ok(t, nil, &ex, args...)
		unsignedRaw, err := hex.DecodeString(ex.Tx)
		if err != nil || ex.Tx != strings.TrimSpace(r.stdout) || ex.ChainID != "1337" {
			t.Fatalf("example eth-tx --json: %+v (%v)", ex, err)
		}
		var unsigned types.Transaction
		if err := unsigned.UnmarshalBinary(unsignedRaw); err != nil {
			t.Fatal(err)
		}
		if unsigned.Type() != types.DynamicFeeTxType || unsigned.ChainId().Int64() != 1337 || unsigned.To().Hex() != to ||
			unsigned.Value().String() != "10000000000000000" || unsigned.Nonce() != 0 || unsigned.Gas() != 21000 {
			t.Fatalf("example eth-tx made %s", ex.Tx)
		}

		r = c.run(t, nil, "sign-eth", "--home", sc.home, "--key", key.KeyID, "--tx", "@"+file, "--chain-id", "1337", "--signers", a.peerID+","+sc.peerID)
		if r.code != 0 {
			t.Fatalf("sign-eth: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		t.Logf("sign-eth prints:\n%s", r.stdout)
		for _, want := range []string{
			summaryHeading, "Ethereum eip1559 transaction on chain ID 1337", "From: " + key.ETHAddress, "To: " + to,
			"Value: 0.01 ETH (10000000000000000 wei)", "Nonce: 0, gas limit: 21000",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("sign-eth output lacks %q", want)
			}
		}
		var res signEthResult
		c.ok(t, nil, &res, "sign-eth", "--home", sc.home, "--key", key.KeyID, "--tx", "@"+file, "--chain-id", "1337", "--signers", b.peerID+","+sc.peerID)
		checkEthSummary(t, res, key, &unsigned, to)

		// An ERC-20 transfer: the summary decodes the call.
		token := "0x1111111111111111111111111111111111111111"
		recipient := common.HexToAddress("0x2222222222222222222222222222222222222222")
		data := append(crypto.Keccak256([]byte("transfer(address,uint256)"))[:4], common.LeftPadBytes(recipient.Bytes(), 32)...)
		data = append(data, common.LeftPadBytes(big.NewInt(123456789).Bytes(), 32)...)
		c.ok(t, nil, &ex, "example", "eth-tx", "--chain-id", "1337", "--to", token, "--value", "0", "--nonce", "5", "--data", hex.EncodeToString(data))
		unsignedRaw, _ = hex.DecodeString(ex.Tx)
		if err := unsigned.UnmarshalBinary(unsignedRaw); err != nil || !bytes.Equal(unsigned.Data(), data) || unsigned.Gas() != exampleGasWithData {
			t.Fatalf("example eth-tx --data: %v", err)
		}
		r = c.run(t, nil, "sign-eth", "--home", a.home, "--key", key.KeyID, "--tx", ex.Tx, "--chain-id", "1337", "--signers", a.peerID+","+b.peerID)
		if r.code != 0 || !strings.Contains(r.stdout, "Call: transfer(address,uint256)") ||
			!strings.Contains(r.stdout, "to (address) = "+recipient.Hex()) || !strings.Contains(r.stdout, "amount (uint256) = 123456789") {
			t.Fatalf("sign-eth of an ERC-20 transfer: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		c.ok(t, nil, &res, "sign-eth", "--home", a.home, "--key", key.KeyID, "--tx", ex.Tx, "--chain-id", "1337", "--signers", a.peerID+","+b.peerID)
		s := checkEthSummary(t, res, key, &unsigned, token)
		if s.Ethereum.Call == nil || s.Ethereum.Call.Method != "transfer(address,uint256)" || len(s.Ethereum.Call.Args) != 2 ||
			s.Ethereum.Call.Args[0].Value != recipient.Hex() || s.Ethereum.Call.Args[1].Value != "123456789" {
			t.Fatalf("summary of an ERC-20 transfer: %s", res.Summary)
		}
	})
}

// checkEthSummary checks that a sign-eth result's summary describes the
// unsigned transaction and that the signed transaction is it, sent by the
// key's address.
func checkEthSummary(t *testing.T, res signEthResult, key keygenResult, unsigned *types.Transaction, to string) *wallet.Summary {
	t.Helper()
	var s wallet.Summary
	if err := json.Unmarshal(res.Summary, &s); err != nil || s.Ethereum == nil {
		t.Fatalf("summary %s: %v", res.Summary, err)
	}
	es := s.Ethereum
	if s.Kind != wallet.KindEthereumTransaction || es.ChainID != "1337" || es.To != to || es.From != key.ETHAddress ||
		es.Value.Int().Cmp(unsigned.Value()) != 0 || es.Nonce != unsigned.Nonce() || es.GasLimit != unsigned.Gas() || es.TxType != "eip1559" {
		t.Fatalf("summary does not describe the transaction: %s", res.Summary)
	}
	raw, _ := hex.DecodeString(res.RawTx)
	var signed types.Transaction
	if err := signed.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.NewLondonSigner(big.NewInt(1337)), &signed)
	if err != nil || from.Hex() != key.ETHAddress || signed.To().Hex() != to || signed.Value().Cmp(unsigned.Value()) != 0 ||
		signed.Nonce() != unsigned.Nonce() || !bytes.Equal(signed.Data(), unsigned.Data()) || "0x"+res.Hash != signed.Hash().Hex() {
		t.Fatalf("signed transaction from %s (%v), result %+v", from.Hex(), err, res)
	}
	return &s
}
