package policy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/wallet"
)

// The types below are what rules see (FORMAT.md, "What rules see"). Field
// names come from the cel tags. Amounts in satoshi are exact integers;
// amounts in wei and token base units are doubles rounded up (toward
// +infinity), so that a limit written as "≤ x" is never passed by rounding.

type keyView struct {
	ID        string   `cel:"id"`
	Committee []string `cel:"committee"`
	PublicKey string   `cel:"public_key"`
}

type bitcoinView struct {
	Network      string          `cel:"network"`
	TxID         string          `cel:"txid"`
	Inputs       []bitcoinInput  `cel:"inputs"`
	Outputs      []bitcoinOutput `cel:"outputs"`
	Destinations []string        `cel:"destinations"`
	TotalInSat   int64           `cel:"total_in_sat"`
	TotalOutSat  int64           `cel:"total_out_sat"`
	SentSat      int64           `cel:"sent_sat"`
	ChangeSat    int64           `cel:"change_sat"`
	FeeSat       int64           `cel:"fee_sat"`
	VSize        int64           `cel:"vsize"`
	FeeRate      float64         `cel:"fee_rate"`
	LockTime     int64           `cel:"locktime"`
}

type bitcoinInput struct {
	Index     int64  `cel:"index"`
	Outpoint  string `cel:"outpoint"`
	Address   string `cel:"address"`
	AmountSat int64  `cel:"amount_sat"`
	Ours      bool   `cel:"ours"`
	Path      string `cel:"path"`
	Type      string `cel:"type"`
}

type bitcoinOutput struct {
	Index     int64  `cel:"index"`
	Address   string `cel:"address"`
	Script    string `cel:"script"`
	AmountSat int64  `cel:"amount_sat"`
	Change    bool   `cel:"change"`
	Path      string `cel:"path"`
}

type ethereumView struct {
	ChainID          int64    `cel:"chain_id"`
	TxType           string   `cel:"tx_type"`
	From             string   `cel:"from"`
	To               string   `cel:"to"`
	ContractCreation bool     `cel:"contract_creation"`
	Nonce            int64    `cel:"nonce"`
	ValueWei         float64  `cel:"value_wei"`
	GasLimit         int64    `cel:"gas_limit"`
	MaxFeeWei        float64  `cel:"max_fee_wei"`
	DataSize         int64    `cel:"data_size"`
	Selector         string   `cel:"selector"`
	Call             callView `cel:"call"`
	Destinations     []string `cel:"destinations"`
}

type callView struct {
	Name      string  `cel:"name"`
	Method    string  `cel:"method"`
	Token     string  `cel:"token"`
	From      string  `cel:"from"`
	To        string  `cel:"to"`
	Spender   string  `cel:"spender"`
	Amount    float64 `cel:"amount"`
	Unlimited bool    `cel:"unlimited"`
}

type typedDataView struct {
	PrimaryType string            `cel:"primary_type"`
	Domain      domainView        `cel:"domain"`
	Message     map[string]string `cel:"message"`
}

type domainView struct {
	Name              string `cel:"name"`
	Version           string `cel:"version"`
	ChainID           int64  `cel:"chain_id"`
	VerifyingContract string `cel:"verifying_contract"`
	Salt              string `cel:"salt"`
}

type messageView struct {
	Text string `cel:"text"`
	Hex  string `cel:"hex"`
	Size int64  `cel:"size"`
}

type rawView struct {
	Digest string `cel:"digest"`
}

type spendView struct {
	Asset       string  `cel:"asset"`
	Destination string  `cel:"destination"`
	Amount      float64 `cel:"amount"`
}

// viewTypes lists the struct types registered with CEL.
var viewTypes = []any{
	keyView{}, bitcoinView{}, bitcoinInput{}, bitcoinOutput{}, ethereumView{}, callView{},
	typedDataView{}, domainView{}, messageView{}, rawView{}, spendView{}, velocityView{},
}

// roundUp converts v to the smallest double not below it.
func roundUp(v *big.Int) float64 {
	f, acc := new(big.Float).SetMode(big.ToPositiveInf).SetInt(v).Float64()
	if acc == big.Below || math.IsInf(f, 0) {
		return math.Inf(1)
	}
	return f
}

// chainOf returns the chain variable's value for a plan.
func chainOf(p *Plan) string {
	s := p.Summary
	switch {
	case s.Bitcoin != nil:
		return "bitcoin:" + p.Intent.network
	case s.Ethereum != nil:
		return "ethereum:" + s.Ethereum.ChainID
	case s.Message != nil && s.Message.Domain != nil && s.Message.Domain.ChainID != "":
		return "ethereum:" + s.Message.Domain.ChainID
	case s.Message != nil:
		return "ethereum"
	}
	return ""
}

// activation builds the variables of one evaluation, except those that
// depend on the approvals, the clock and the velocity record.
func activation(p *Plan) map[string]any {
	s := p.Summary
	vars := map[string]any{
		"kind":     string(p.Intent.kind),
		"key":      keyView{ID: p.Key.ID, Committee: slices.Clone(p.Key.Committee), PublicKey: hex.EncodeToString(p.Key.PublicKey)},
		"chain":    chainOf(p),
		"warnings": append([]string{}, s.Warnings...),
	}
	var paths []string
	for _, d := range p.Digests {
		if ps := d.Path.String(); !slices.Contains(paths, ps) {
			paths = append(paths, ps)
		}
	}
	slices.Sort(paths)
	vars["paths"] = paths
	vars["path"] = ""
	if len(paths) == 1 {
		vars["path"] = paths[0]
	}
	spends := []spendView{}
	for _, sp := range p.Spends {
		spends = append(spends, spendView{Asset: sp.Asset, Destination: sp.Destination, Amount: roundUp(sp.Amount)})
	}
	vars["spends"] = spends

	switch p.Intent.kind {
	case KindBitcoinPSBT:
		vars["btc"] = bitcoinViewOf(p)
	case KindEthereumTx:
		vars["eth"] = ethereumViewOf(s.Ethereum)
	case KindTypedData:
		vars["typed"] = typedViewOf(s.Message)
	case KindPersonalMessage:
		vars["message"] = messageView{Text: s.Message.Text, Hex: hex.EncodeToString(s.Message.Hex), Size: int64(len(s.Message.Hex))}
	case KindRawDigest:
		vars["raw"] = rawView{Digest: hex.EncodeToString(p.Digests[0].Digest[:])}
	}
	return vars
}

func bitcoinViewOf(p *Plan) bitcoinView {
	bs := p.Summary.Bitcoin
	v := bitcoinView{
		Network: bs.Network, TxID: bs.UnsignedTxID, LockTime: int64(bs.LockTime),
		TotalOutSat: int64(bs.TotalOut), SentSat: int64(bs.Sent),
		Inputs: []bitcoinInput{}, Outputs: []bitcoinOutput{}, Destinations: []string{},
	}
	if bs.TotalIn != nil {
		v.TotalInSat = int64(*bs.TotalIn)
	}
	if bs.Fee != nil {
		v.FeeSat = int64(*bs.Fee)
	}
	for _, in := range bs.Inputs {
		bi := bitcoinInput{Index: int64(in.Index), Outpoint: in.Outpoint, Address: in.Address, Ours: in.Ours, Type: string(in.Type)}
		if in.Amount != nil {
			bi.AmountSat = int64(*in.Amount)
		}
		if in.Ours {
			bi.Path = in.Path.String()
		}
		v.Inputs = append(v.Inputs, bi)
	}
	for _, o := range bs.Outputs {
		bo := bitcoinOutput{Index: int64(o.Index), Address: o.Address, Script: hex.EncodeToString(o.Script), AmountSat: int64(o.Amount), Change: o.Change}
		if o.Change {
			bo.Path = o.Path.String()
			v.ChangeSat += int64(o.Amount)
		} else if d := outputDestination(o); !slices.Contains(v.Destinations, d) {
			v.Destinations = append(v.Destinations, d)
		}
		v.Outputs = append(v.Outputs, bo)
	}
	v.VSize = estimateVSize(p)
	if v.VSize > 0 {
		v.FeeRate = float64(v.FeeSat) / float64(v.VSize)
	}
	return v
}

// estimateVSize estimates the virtual size of the signed transaction: the
// unsigned transaction plus a typical signature for every input whose
// script type is known (72-byte signature with sighash byte, 33-byte key).
// Inputs of unknown script types add nothing, so the estimate is a lower
// bound for them and the fee rate derived from it an upper bound.
func estimateVSize(p *Plan) int64 {
	bs := p.Summary.Bitcoin
	weight := 4 * p.unsignedTxSize
	segwit := false
	for _, in := range bs.Inputs {
		switch scriptType(in.Script) {
		case "p2wpkh":
			weight += 1 + 1 + 72 + 1 + 33
			segwit = true
		case "p2sh":
			if in.Type == wallet.P2SHP2WPKH {
				weight += 4*23 + 1 + 1 + 72 + 1 + 33
				segwit = true
			}
		case "p2pkh":
			weight += 4 * (1 + 72 + 1 + 33)
		case "p2tr":
			weight += 1 + 1 + 64
			segwit = true
		}
	}
	if segwit {
		weight += 2
	}
	return (weight + 3) / 4
}

// scriptType classifies an output script by its template.
func scriptType(s []byte) string {
	switch {
	case len(s) == 22 && s[0] == 0x00 && s[1] == 0x14:
		return "p2wpkh"
	case len(s) == 23 && s[0] == 0xa9 && s[1] == 0x14 && s[22] == 0x87:
		return "p2sh"
	case len(s) == 25 && s[0] == 0x76 && s[1] == 0xa9 && s[2] == 0x14 && s[23] == 0x88 && s[24] == 0xac:
		return "p2pkh"
	case len(s) == 34 && s[0] == 0x51 && s[1] == 0x20:
		return "p2tr"
	}
	return ""
}

func ethereumViewOf(e *wallet.EthereumSummary) ethereumView {
	v := ethereumView{
		TxType: e.TxType, From: e.From, To: e.To, ContractCreation: e.ContractCreation,
		Nonce: int64(min(e.Nonce, math.MaxInt64)), ValueWei: roundUp(e.Value.Int()),
		GasLimit: int64(min(e.GasLimit, math.MaxInt64)), MaxFeeWei: roundUp(e.MaxFee.Int()),
		DataSize: int64(e.DataLength), Selector: hex.EncodeToString(e.Selector), Destinations: []string{},
	}
	if id, ok := new(big.Int).SetString(e.ChainID, 10); ok && id.IsInt64() {
		v.ChainID = id.Int64()
	}
	if c := e.Call; c != nil {
		name, _, _ := strings.Cut(c.Method, "(")
		v.Call = callView{Name: name, Method: c.Method, Token: e.To, From: callArg(c, "from"), To: callArg(c, "to"), Spender: callArg(c, "spender")}
		if amount, ok := new(big.Int).SetString(callArg(c, "amount"), 10); ok {
			v.Call.Amount = roundUp(amount)
			v.Call.Unlimited = name == "approve" && amount.Cmp(maxUint256) == 0
		}
	}
	add := func(d string) {
		if d != "" && !slices.Contains(v.Destinations, d) {
			v.Destinations = append(v.Destinations, d)
		}
	}
	switch {
	case e.ContractCreation:
		add("contract-creation")
	case v.Call.Name == "transfer" || v.Call.Name == "transferFrom":
		if e.Value.Int().Sign() > 0 {
			add(e.To)
		}
		add(v.Call.To)
	case v.Call.Name == "approve":
		if e.Value.Int().Sign() > 0 {
			add(e.To)
		}
		add(v.Call.Spender)
	default:
		add(e.To)
	}
	return v
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func typedViewOf(m *wallet.MessageSummary) typedDataView {
	v := typedDataView{PrimaryType: m.PrimaryType, Message: map[string]string{}}
	if d := m.Domain; d != nil {
		v.Domain = domainView{Name: d.Name, Version: d.Version, VerifyingContract: d.VerifyingContract, Salt: d.Salt}
		if d.VerifyingContract != "" {
			v.Domain.VerifyingContract = checksumAddress(d.VerifyingContract)
		}
		if id, ok := new(big.Int).SetString(d.ChainID, 10); ok && id.IsInt64() {
			v.Domain.ChainID = id.Int64()
		}
	}
	// The message was decoded from at most MaxTypedDataSize bytes of JSON.
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.UseNumber()
	var msg any
	if dec.Decode(&msg) == nil {
		flatten(v.Message, "", msg)
	}
	return v
}

// flatten writes the leaves of a decoded JSON value into out, keyed by
// their path: object members joined with ".", array elements by index
// ("details.token", "items.0.to"). Numbers keep their JSON text, addresses
// are written in EIP-55 form, booleans and null as "true", "false", "null".
func flatten(out map[string]string, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(out, join(k), e)
		}
	case []any:
		for i, e := range x {
			flatten(out, join(strconv.Itoa(i)), e)
		}
	case string:
		if ethAddrRE.MatchString(x) {
			x = checksumAddress(x)
		}
		out[prefix] = x
	case json.Number:
		out[prefix] = x.String()
	case bool:
		out[prefix] = strconv.FormatBool(x)
	case nil:
		out[prefix] = "null"
	}
}
