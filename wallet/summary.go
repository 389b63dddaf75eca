package wallet

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// SummaryVersion is the version of the [Summary] JSON form. It changes when a
// field changes meaning or is removed; new optional fields keep the version.
const SummaryVersion = 1

// The kinds of payload a [Summary] describes.
const (
	KindBitcoinPSBT             = "bitcoin-psbt"
	KindEthereumTransaction     = "ethereum-transaction"
	KindEthereumPersonalMessage = "ethereum-personal-message"
	KindEthereumTypedData       = "ethereum-typed-data"
	KindRawDigest               = "raw-digest"
)

// Summary is a human-readable description of what a payload makes this key
// sign: for Bitcoin the inputs, outputs, amounts and fee; for Ethereum the
// chain ID, destination, value, fees and called contract function; for
// messages their text or typed content. It lists every digest that will be
// signed and the path and key that sign it.
//
// A Summary is computed from the raw payload alone (plus the public key
// data of the threshold key), so every site computes its own and approves or
// rejects what it sees, not what another site claims. Its JSON form is
// stable (see [SummaryVersion]): fields have fixed names, Bitcoin amounts are
// integers in satoshi, Ethereum amounts decimal strings in wei, keys and
// digests lowercase hex.
// Text renders it for a person.
type Summary struct {
	Version  int              `json:"version"`
	Kind     string           `json:"kind"`
	Bitcoin  *BitcoinSummary  `json:"bitcoin,omitempty"`
	Ethereum *EthereumSummary `json:"ethereum,omitempty"`
	Message  *MessageSummary  `json:"message,omitempty"`
	Digests  []DigestToSign   `json:"digests"`
	Warnings []string         `json:"warnings,omitempty"`
}

// SchemeBIP340 is [DigestToSign.Scheme] for a BIP-340 Schnorr signature of
// a Taproot key-path input.
const SchemeBIP340 = "bip340"

// DigestToSign is one signature a payload asks for.
type DigestToSign struct {
	// Input is the PSBT input index; absent for Ethereum payloads.
	Input *int `json:"input,omitempty"`
	// Scheme is empty for ECDSA and [SchemeBIP340] for a Taproot key-path
	// signature.
	Scheme string `json:"scheme,omitempty"`
	// Path is the derivation path of the signing key (empty for BIP-340:
	// the Schnorr key is not derived).
	Path hd.Path `json:"path"`
	// PublicKey is the 33-byte compressed ECDSA key at Path, or for
	// BIP-340 the 32-byte x-only Taproot output key the signature verifies
	// under.
	PublicKey HexBytes `json:"publicKey"`
	// InternalKey is the 32-byte x-only internal key of a BIP-340
	// signature, before the Taproot tweak.
	InternalKey HexBytes `json:"internalKey,omitempty"`
	// MerkleRoot is the script tree root the Taproot tweak commits to,
	// absent for a key-path-only output.
	MerkleRoot HexBytes `json:"merkleRoot,omitempty"`
	// Digest is the 32-byte value the threshold signature is made over.
	Digest HexBytes `json:"digest"`
}

// BitcoinSummary describes a PSBT.
type BitcoinSummary struct {
	Network string `json:"network"`
	// UnsignedTxID is the ID of the unsigned transaction. It is the final
	// ID when every input is segwit; legacy inputs change it when signed.
	UnsignedTxID string          `json:"unsignedTxid"`
	Version      int32           `json:"version"`
	LockTime     uint32          `json:"lockTime"`
	Inputs       []BitcoinInput  `json:"inputs"`
	Outputs      []BitcoinOutput `json:"outputs"`
	// TotalIn is the sum of the input amounts, absent if any is unknown.
	TotalIn *Amount `json:"totalInSat,omitempty"`
	// TotalOut is the sum of the output amounts.
	TotalOut Amount `json:"totalOutSat"`
	// Fee is TotalIn − TotalOut, absent if any input amount is unknown.
	Fee *Amount `json:"feeSat,omitempty"`
	// Sent is the sum of the outputs that do not pay back to this key.
	Sent Amount `json:"sentSat"`
}

// BitcoinInput is one input of a PSBT.
type BitcoinInput struct {
	Index    int    `json:"index"`
	Outpoint string `json:"outpoint"`
	// Amount is the value of the spent output, absent when the PSBT does
	// not carry it.
	Amount  *Amount  `json:"amountSat,omitempty"`
	Address string   `json:"address,omitempty"`
	Script  HexBytes `json:"script,omitempty"`
	// Ours is true for the inputs this key signs.
	Ours    bool        `json:"ours"`
	Path    hd.Path     `json:"path,omitempty"`
	Type    AddressType `json:"type,omitempty"`
	Sighash string      `json:"sighash,omitempty"`
}

// BitcoinOutput is one output of a PSBT.
type BitcoinOutput struct {
	Index   int      `json:"index"`
	Amount  Amount   `json:"amountSat"`
	Address string   `json:"address,omitempty"`
	Script  HexBytes `json:"script"`
	// Change is true when the output pays back to this key (found by a
	// PSBT BIP-32 derivation field or by script match with a known path).
	Change bool    `json:"change"`
	Path   hd.Path `json:"path,omitempty"`
}

// EthereumSummary describes an Ethereum transaction.
type EthereumSummary struct {
	TxType  string `json:"txType"`
	ChainID string `json:"chainId"`
	From    string `json:"from,omitempty"`
	Nonce   uint64 `json:"nonce"`
	// To is the EIP-55 destination, empty for a contract creation.
	To               string `json:"to,omitempty"`
	ContractCreation bool   `json:"contractCreation"`
	Value            Wei    `json:"valueWei"`
	GasLimit         uint64 `json:"gasLimit"`
	GasPrice         *Wei   `json:"gasPriceWei,omitempty"`
	MaxFeePerGas     *Wei   `json:"maxFeePerGasWei,omitempty"`
	MaxPriorityFee   *Wei   `json:"maxPriorityFeePerGasWei,omitempty"`
	// MaxFee is GasLimit times the highest gas price the sender may pay.
	MaxFee            Wei           `json:"maxFeeWei"`
	DataLength        int           `json:"dataLength"`
	Selector          HexBytes      `json:"selector,omitempty"`
	Call              *ContractCall `json:"call,omitempty"`
	AccessListEntries int           `json:"accessListEntries,omitempty"`
}

// ContractCall is a decoded call of a well-known contract function.
type ContractCall struct {
	Method string    `json:"method"`
	Args   []CallArg `json:"args"`
}

// CallArg is one decoded argument of a [ContractCall].
type CallArg struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// MessageSummary describes an EIP-191 personal message or EIP-712 typed data.
type MessageSummary struct {
	Standard string `json:"standard"`
	From     string `json:"from,omitempty"`
	// Text is the message when it is printable UTF-8.
	Text string `json:"text,omitempty"`
	// Hex is the raw message, for EIP-191.
	Hex HexBytes `json:"hex,omitempty"`
	// Domain, PrimaryType and Data describe EIP-712 typed data.
	Domain      *TypedDomain    `json:"domain,omitempty"`
	PrimaryType string          `json:"primaryType,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// TypedDomain is the EIP-712 domain of typed data.
type TypedDomain struct {
	Name              string `json:"name,omitempty"`
	Version           string `json:"version,omitempty"`
	ChainID           string `json:"chainId,omitempty"`
	VerifyingContract string `json:"verifyingContract,omitempty"`
	Salt              string `json:"salt,omitempty"`
}

// HexBytes is a byte string that appears in JSON as lowercase hex without a
// prefix.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("wallet: hex field: %w", err)
	}
	*h = b
	return nil
}

// Amount is a Bitcoin amount in satoshi. In JSON it is an integer.
type Amount int64

// String formats a as BTC with eight decimals, e.g. "0.00150000 BTC".
func (a Amount) String() string {
	sign := ""
	v := int64(a)
	if v < 0 {
		sign = "-"
		v = -v
	}
	return fmt.Sprintf("%s%d.%08d BTC", sign, v/1e8, v%1e8)
}

// Wei is an Ethereum amount in wei. In JSON it is a decimal string, because
// wei values exceed what JSON numbers hold exactly. The zero value is 0 wei.
type Wei struct{ v *big.Int }

func newWei(v *big.Int) Wei {
	if v == nil {
		return Wei{}
	}
	return Wei{v: new(big.Int).Set(v)}
}

func newWeiPtr(v *big.Int) *Wei {
	w := newWei(v)
	return &w
}

// Int returns the amount as a new big.Int.
func (w Wei) Int() *big.Int {
	if w.v == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(w.v)
}

// MarshalText implements encoding.TextMarshaler.
func (w Wei) MarshalText() ([]byte, error) { return []byte(w.Int().String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (w *Wei) UnmarshalText(text []byte) error {
	v, ok := new(big.Int).SetString(string(text), 10)
	if !ok {
		return fmt.Errorf("wallet: wei amount %q is not a decimal integer", text)
	}
	w.v = v
	return nil
}

// String formats w as ether with up to 18 decimals and no trailing zeros,
// e.g. "1.5 ETH".
func (w Wei) String() string {
	v := w.Int()
	sign := ""
	if v.Sign() < 0 {
		sign = "-"
		v.Neg(v)
	}
	ether, rem := new(big.Int).QuoRem(v, big.NewInt(1e18), new(big.Int))
	if rem.Sign() == 0 {
		return fmt.Sprintf("%s%s ETH", sign, ether)
	}
	frac := strings.TrimRight(fmt.Sprintf("%018s", rem.String()), "0")
	return fmt.Sprintf("%s%s.%s ETH", sign, ether, frac)
}

// JSON returns the stable JSON form of s.
func (s *Summary) JSON() ([]byte, error) {
	return json.Marshal(s)
}

// Text renders s for a person approving it.
func (s *Summary) Text() string {
	var b strings.Builder
	switch {
	case s.Bitcoin != nil:
		s.Bitcoin.text(&b)
	case s.Ethereum != nil:
		s.Ethereum.text(&b)
	case s.Message != nil:
		s.Message.text(&b)
	case s.Kind == KindRawDigest:
		b.WriteString("Raw digest: what it commits to cannot be shown\n")
	default:
		fmt.Fprintf(&b, "%s\n", s.Kind)
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "WARNING: %s\n", w)
	}
	fmt.Fprintf(&b, "Signatures (%d):\n", len(s.Digests))
	for _, d := range s.Digests {
		switch {
		case d.Scheme == SchemeBIP340 && d.Input != nil:
			root := "no script tree"
			if len(d.MerkleRoot) != 0 {
				root = fmt.Sprintf("merkle root %x", []byte(d.MerkleRoot))
			}
			fmt.Fprintf(&b, "  input %d: BIP-340 output key %x (internal key %x, %s) signs %x\n", *d.Input, []byte(d.PublicKey), []byte(d.InternalKey), root, []byte(d.Digest))
		case d.Input != nil:
			fmt.Fprintf(&b, "  input %d: key %x at %s signs %x\n", *d.Input, []byte(d.PublicKey), d.Path, []byte(d.Digest))
		default:
			fmt.Fprintf(&b, "  key %x at %s signs %x\n", []byte(d.PublicKey), d.Path, []byte(d.Digest))
		}
	}
	return b.String()
}

// String returns Text.
func (s *Summary) String() string { return s.Text() }

func (bs *BitcoinSummary) text(b *strings.Builder) {
	fmt.Fprintf(b, "Bitcoin transaction on %s (unsigned txid %s, version %d, locktime %d)\n",
		bs.Network, bs.UnsignedTxID, bs.Version, bs.LockTime)
	fmt.Fprintf(b, "Inputs (%d):\n", len(bs.Inputs))
	for _, in := range bs.Inputs {
		amount := "amount unknown"
		if in.Amount != nil {
			amount = in.Amount.String()
		}
		addr := in.Address
		if addr == "" {
			addr = "script " + hex.EncodeToString(in.Script)
		}
		owner := "not ours"
		if in.Ours {
			owner = fmt.Sprintf("ours, %s at %s, SIGHASH_%s", in.Type, in.Path, in.Sighash)
			if in.Type == P2TR {
				owner = fmt.Sprintf("ours, %s key path, SIGHASH_%s", in.Type, in.Sighash)
			}
		}
		fmt.Fprintf(b, "  #%d %s  %s  %s  [%s]\n", in.Index, in.Outpoint, amount, addr, owner)
	}
	fmt.Fprintf(b, "Outputs (%d):\n", len(bs.Outputs))
	for _, out := range bs.Outputs {
		addr := out.Address
		if addr == "" {
			addr = "script " + hex.EncodeToString(out.Script)
		}
		tag := ""
		if out.Change {
			tag = fmt.Sprintf("  [change to this key at %s]", out.Path)
		}
		fmt.Fprintf(b, "  #%d %s  %s%s\n", out.Index, addr, out.Amount, tag)
	}
	fmt.Fprintf(b, "Sent to others: %s\n", bs.Sent)
	if bs.Fee != nil {
		fmt.Fprintf(b, "Fee: %s\n", *bs.Fee)
	} else {
		fmt.Fprintf(b, "Fee: unknown (some input amounts are missing)\n")
	}
}

func (es *EthereumSummary) text(b *strings.Builder) {
	fmt.Fprintf(b, "Ethereum %s transaction on chain ID %s\n", es.TxType, es.ChainID)
	if es.From != "" {
		fmt.Fprintf(b, "From: %s\n", es.From)
	}
	if es.ContractCreation {
		fmt.Fprintf(b, "To: (contract creation)\n")
	} else {
		fmt.Fprintf(b, "To: %s\n", es.To)
	}
	fmt.Fprintf(b, "Value: %s (%s wei)\n", es.Value, es.Value.Int().String())
	fmt.Fprintf(b, "Nonce: %d, gas limit: %d\n", es.Nonce, es.GasLimit)
	if es.GasPrice != nil {
		fmt.Fprintf(b, "Gas price: %s wei\n", es.GasPrice.Int().String())
	}
	if es.MaxFeePerGas != nil {
		fmt.Fprintf(b, "Max fee per gas: %s wei, max priority fee: %s wei\n", es.MaxFeePerGas.Int().String(), es.MaxPriorityFee.Int().String())
	}
	fmt.Fprintf(b, "Max fee: %s\n", es.MaxFee)
	if es.DataLength > 0 {
		fmt.Fprintf(b, "Data: %d bytes", es.DataLength)
		if len(es.Selector) > 0 {
			fmt.Fprintf(b, ", selector 0x%x", []byte(es.Selector))
		}
		b.WriteString("\n")
	}
	if es.Call != nil {
		fmt.Fprintf(b, "Call: %s\n", es.Call.Method)
		for _, a := range es.Call.Args {
			fmt.Fprintf(b, "  %s (%s) = %s\n", a.Name, a.Type, a.Value)
		}
	}
	if es.AccessListEntries > 0 {
		fmt.Fprintf(b, "Access list: %d entries\n", es.AccessListEntries)
	}
}

func (ms *MessageSummary) text(b *strings.Builder) {
	fmt.Fprintf(b, "Ethereum %s message\n", ms.Standard)
	if ms.From != "" {
		fmt.Fprintf(b, "Signer: %s\n", ms.From)
	}
	if ms.Domain != nil {
		d := ms.Domain
		fmt.Fprintf(b, "Domain: name %q, version %q, chain ID %s, contract %s\n", d.Name, d.Version, d.ChainID, d.VerifyingContract)
		if d.Salt != "" {
			fmt.Fprintf(b, "Salt: %s\n", d.Salt)
		}
		fmt.Fprintf(b, "Primary type: %s\n", ms.PrimaryType)
		fmt.Fprintf(b, "Data: %s\n", ms.Data)
		return
	}
	if ms.Text != "" {
		fmt.Fprintf(b, "Text: %q\n", ms.Text)
	}
	fmt.Fprintf(b, "Hex: %x\n", []byte(ms.Hex))
}
