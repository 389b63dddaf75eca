package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// summaryHashTag is the domain tag of the summary hash.
const summaryHashTag = "keyquorum/summary/v1\x00"

// Key describes the threshold key a request is for, as the site itself
// knows it (from its own key store, never from the request).
type Key struct {
	// ID names the key on every site.
	ID string
	// PublicKey is the 33-byte compressed group public key.
	PublicKey []byte
	// ChainCode is the key's 32-byte BIP-32 chain code.
	ChainCode []byte
	// Committee lists the party IDs of the key's committee, sorted and
	// distinct. Approvals name it, so an approval given for one committee
	// is void after the key is reshared to another.
	Committee []string
}

// validToken reports whether s is 1 to 128 bytes of printable ASCII
// without spaces: key IDs, party IDs and approver names.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// check validates k and returns the parsed public key.
func (k Key) check() (*secp256k1.PublicKey, error) {
	if !validToken(k.ID) {
		return nil, fmt.Errorf("%w: key ID %q must be 1 to 128 printable ASCII characters without spaces", ErrKey, k.ID)
	}
	pub, err := secp256k1.ParsePubKey(k.PublicKey)
	if err != nil || len(k.PublicKey) != 33 {
		return nil, fmt.Errorf("%w: key %s: public key must be 33 bytes compressed secp256k1", ErrKey, k.ID)
	}
	if len(k.ChainCode) != hd.ChainCodeLen {
		return nil, fmt.Errorf("%w: key %s: chain code is %d bytes, want %d", ErrKey, k.ID, len(k.ChainCode), hd.ChainCodeLen)
	}
	if len(k.Committee) == 0 || len(k.Committee) > 255 {
		return nil, fmt.Errorf("%w: key %s: committee of %d parties", ErrKey, k.ID, len(k.Committee))
	}
	for i, p := range k.Committee {
		if !validToken(p) {
			return nil, fmt.Errorf("%w: key %s: party ID %q must be 1 to 128 printable ASCII characters without spaces", ErrKey, k.ID, p)
		}
		if i > 0 && k.Committee[i-1] >= p {
			return nil, fmt.Errorf("%w: key %s: committee is not sorted and distinct", ErrKey, k.ID)
		}
	}
	return pub, nil
}

// clone returns a deep copy of k.
func (k Key) clone() Key {
	return Key{ID: k.ID, PublicKey: slices.Clone(k.PublicKey), ChainCode: slices.Clone(k.ChainCode), Committee: slices.Clone(k.Committee)}
}

// Digest is one signature an intent asks of the key.
type Digest struct {
	// Digest is the 32-byte value the threshold signature is made over.
	Digest [32]byte
	// Path is the derivation path of the signing key.
	Path hd.Path
	// PublicKey is the 33-byte compressed key at Path.
	PublicKey []byte
	// Input is the PSBT input index, or -1 for other kinds.
	Input int
}

// Spend is value an intent moves to a destination, as velocity counts it.
type Spend struct {
	// Asset names what moves: "btc:<network>" in satoshi,
	// "eth:<chain ID>" in wei, "erc20:<chain ID>:<token address>" in the
	// token's base units.
	Asset string
	// Destination is a Bitcoin address ("script:<hex>" for an output
	// without one), an EIP-55 Ethereum address, or "contract-creation".
	Destination string
	// Amount is positive.
	Amount *big.Int
}

// Plan is what a site derives from an intent for one of its keys: every
// digest to sign, the summary its people approve, and the value it moves.
// Derive computes it from the intent and the site's own key data alone, so
// every site holds its own Plan and never relies on another site's.
type Plan struct {
	// Intent is the parsed intent.
	Intent *Intent
	// IntentHash is Intent.Hash().
	IntentHash [32]byte
	// Key is the key the plan is for.
	Key Key
	// Summary describes the intent for a person (wallet's stable form).
	Summary *wallet.Summary
	// SummaryJSON is the summary's canonical encoding, Summary.JSON().
	SummaryJSON []byte
	// SummaryHash is SHA-256 over the domain tag "keyquorum/summary/v1"
	// and a zero byte, followed by SummaryJSON. Approvals name it.
	SummaryHash [32]byte
	// Digests lists every signature the intent asks for, in input order.
	Digests []Digest
	// Spends lists the value the intent moves, per asset and destination.
	Spends []Spend

	// unsignedTxSize is the size of a PSBT's unsigned transaction.
	unsignedTxSize int64
}

// Covers reports whether the plan asks for a signature of digest under the
// key at path. A site joins a signing session only for a digest its own
// plan covers.
func (p *Plan) Covers(digest [32]byte, path hd.Path) bool {
	for _, d := range p.Digests {
		if d.Digest == digest && d.Path.Equal(path) {
			return true
		}
	}
	return false
}

// Derive computes, with package wallet, every digest a parsed intent asks
// the key to sign, the summary and the spends, from the intent and the
// site's own description of the key. It performs
// no I/O; ctx only reaches wallet's KeySource interface.
//
// For a PSBT, an input is the key's when a BIP-32 derivation field or one
// of the intent's paths proves it (wallet.PlanPSBT); inputs of the key must
// carry their whole previous transaction (CVE-2020-14199) and request
// SIGHASH_ALL; outputs proven the same way are change. A PSBT with no input
// of the key fails with ErrNothingToSign. The BIP-32 derivations are
// bounded by MaxDerivationSteps.
//
// Derive repeats every BIP-32 derivation on every call; a site that signs
// often keeps a KeyCache and calls its Derive method instead.
func Derive(ctx context.Context, in *Intent, key Key) (*Plan, error) {
	return derive(ctx, in, key, nil)
}

func derive(ctx context.Context, in *Intent, key Key, cache *KeyCache) (*Plan, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: no intent", ErrIntent)
	}
	pub, err := key.check()
	if err != nil {
		return nil, err
	}
	keys := newBudgetKeys(pub, key.ChainCode, cache)
	var (
		summary *wallet.Summary
		txSize  int64
	)
	switch in.kind {
	case KindBitcoinPSBT:
		summary, txSize, err = summarizePSBT(ctx, keys, in)
	case KindEthereumTx:
		tx, perr := wallet.ParseEthereumTx(in.payload)
		if perr != nil {
			return nil, fmt.Errorf("%w: %w", ErrIntent, perr)
		}
		summary, err = wallet.SummarizeEthereumTx(ctx, keys, in.paths[0], tx, chainIDInt(in.chainID))
	case KindTypedData:
		td, perr := wallet.ParseTypedData(in.payload)
		if perr != nil {
			return nil, fmt.Errorf("%w: %w", ErrIntent, perr)
		}
		summary, err = wallet.SummarizeTypedData(ctx, keys, in.paths[0], td)
	case KindPersonalMessage:
		summary, err = wallet.SummarizePersonalMessage(ctx, keys, in.paths[0], in.payload)
	case KindRawDigest:
		summary, err = wallet.SummarizeDigest(ctx, keys, in.paths[0], [32]byte(in.payload))
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrIntent, in.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("policy: derive %s intent for key %s: %w", in.kind, key.ID, err)
	}
	plan := &Plan{Intent: in, IntentHash: in.Hash(), Key: key.clone(), Summary: summary, unsignedTxSize: txSize}
	if plan.SummaryJSON, err = summary.JSON(); err != nil {
		return nil, fmt.Errorf("policy: encode summary: %w", err)
	}
	plan.SummaryHash = summaryHash(plan.SummaryJSON)
	for _, d := range summary.Digests {
		if len(d.Digest) != 32 {
			return nil, fmt.Errorf("policy: summary digest of %d bytes", len(d.Digest))
		}
		dg := Digest{Digest: [32]byte(d.Digest), Path: slices.Clone(d.Path), PublicKey: slices.Clone(d.PublicKey), Input: -1}
		if d.Input != nil {
			dg.Input = *d.Input
		}
		plan.Digests = append(plan.Digests, dg)
	}
	if len(plan.Digests) == 0 {
		return nil, fmt.Errorf("%w: %s intent %x for key %s (name the key's paths in the intent or add BIP-32 derivation fields)", ErrNothingToSign, in.kind, plan.IntentHash[:8], key.ID)
	}
	plan.Spends = spendsOf(in, summary)
	return plan, nil
}

func summarizePSBT(ctx context.Context, keys wallet.KeySource, in *Intent) (*wallet.Summary, int64, error) {
	packet, err := wallet.ParsePSBT(in.payload)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrIntent, err)
	}
	net, err := wallet.Network(in.network)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrIntent, err)
	}
	size := packet.UnsignedTx.SerializeSizeStripped()
	legacy := 0
	for i := range packet.Inputs {
		if prevScriptIsP2PKH(packet, i) {
			legacy++
		}
	}
	if legacy*size > MaxLegacySighashBytes {
		return nil, 0, fmt.Errorf("%w: %d inputs spend P2PKH outputs of a %d-byte transaction; their legacy sighashes would hash %d bytes, at most %d",
			ErrIntentTooLarge, legacy, size, legacy*size, MaxLegacySighashBytes)
	}
	plan, err := wallet.PlanPSBT(ctx, keys, packet, wallet.PSBTOptions{Net: net, Paths: in.Paths(), RequireFullPrevTx: true})
	if err != nil {
		return nil, 0, err
	}
	return plan.Summary, int64(size), nil
}

// prevScriptIsP2PKH reports whether input i of p spends a P2PKH output,
// according to either of its UTXO fields.
func prevScriptIsP2PKH(p *psbt.Packet, i int) bool {
	in := &p.Inputs[i]
	if in.WitnessUtxo != nil && scriptType(in.WitnessUtxo.PkScript) == "p2pkh" {
		return true
	}
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	if prev := in.NonWitnessUtxo; prev != nil && int(op.Index) < len(prev.TxOut) {
		return scriptType(prev.TxOut[op.Index].PkScript) == "p2pkh"
	}
	return false
}

func summaryHash(js []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(summaryHashTag))
	h.Write(js)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// spendsOf lists what the summary moves out.
func spendsOf(in *Intent, s *wallet.Summary) []Spend {
	var out []Spend
	switch {
	case s.Bitcoin != nil:
		asset := "btc:" + in.network
		for _, o := range s.Bitcoin.Outputs {
			if o.Change || o.Amount <= 0 {
				continue
			}
			out = append(out, Spend{Asset: asset, Destination: outputDestination(o), Amount: big.NewInt(int64(o.Amount))})
		}
	case s.Ethereum != nil:
		e := s.Ethereum
		if v := e.Value.Int(); v.Sign() > 0 {
			dest := e.To
			if e.ContractCreation {
				dest = "contract-creation"
			}
			out = append(out, Spend{Asset: "eth:" + e.ChainID, Destination: dest, Amount: v})
		}
		if c := e.Call; c != nil && (strings.HasPrefix(c.Method, "transfer(") || strings.HasPrefix(c.Method, "transferFrom(")) {
			to, amount := callArg(c, "to"), new(big.Int)
			if _, ok := amount.SetString(callArg(c, "amount"), 10); ok && amount.Sign() > 0 && to != "" {
				out = append(out, Spend{Asset: "erc20:" + e.ChainID + ":" + e.To, Destination: to, Amount: amount})
			}
		}
	}
	return out
}

// maxScriptDestination is the longest output script named by its hex.
const maxScriptDestination = 520

// outputDestination names a Bitcoin output by address; an output without
// one by "script:" and its script in hex, or, for scripts longer than 520
// bytes, by "script-sha256:" and the SHA-256 of the script in hex.
func outputDestination(o wallet.BitcoinOutput) string {
	if o.Address != "" {
		return o.Address
	}
	if len(o.Script) > maxScriptDestination {
		h := sha256.Sum256(o.Script)
		return "script-sha256:" + hex.EncodeToString(h[:])
	}
	return "script:" + hex.EncodeToString(o.Script)
}

func callArg(c *wallet.ContractCall, name string) string {
	for _, a := range c.Args {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

func chainIDInt(id uint64) *big.Int { return new(big.Int).SetUint64(id) }

// checksumAddress returns the EIP-55 form of an Ethereum address string.
func checksumAddress(s string) string { return common.HexToAddress(s).Hex() }

// DefaultKeyCacheSize is the number of derived keys a KeyCache made with
// size 0 holds.
const DefaultKeyCacheSize = 1 << 14

// KeyCache remembers BIP-32 child public keys across requests, so that a
// site that signs again for a path it has seen does not repeat the
// derivation (a scalar multiplication and an inversion per level, most of
// the work of Derive). A site keeps one for its lifetime. It holds only
// public data, is bounded (when full it is emptied and fills again) and is
// safe for concurrent use. The zero value is not usable; call NewKeyCache.
type KeyCache struct {
	mu    sync.Mutex
	max   int
	nodes map[string]xnode // root key || chain code || path
}

// NewKeyCache returns a cache of at most size derived keys
// (DefaultKeyCacheSize if size is 0 or less).
func NewKeyCache(size int) *KeyCache {
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	return &KeyCache{max: size, nodes: map[string]xnode{}}
}

// Derive is the package-level Derive, looking up and storing derived keys
// in c.
func (c *KeyCache) Derive(ctx context.Context, in *Intent, key Key) (*Plan, error) {
	return derive(ctx, in, key, c)
}

func (c *KeyCache) get(k string) (xnode, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[k]
	return n, ok
}

func (c *KeyCache) put(k string, n xnode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) >= c.max {
		clear(c.nodes)
	}
	c.nodes[k] = n
}

// budgetKeys derives child keys of one extended public key for one intent,
// remembering every node (paths that share a prefix share its derivation),
// consulting a KeyCache if it has one, and refusing more than
// MaxDerivationSteps child levels in all.
type budgetKeys struct {
	root   string // compressed key || chain code, the KeyCache prefix
	nodes  map[string]xnode
	shared *KeyCache
	steps  int
}

type xnode struct {
	pub       *secp256k1.PublicKey
	chainCode []byte
}

func newBudgetKeys(pub *secp256k1.PublicKey, chainCode []byte, shared *KeyCache) *budgetKeys {
	return &budgetKeys{
		root:   string(pub.SerializeCompressed()) + string(chainCode),
		nodes:  map[string]xnode{"": {pub: pub, chainCode: slices.Clone(chainCode)}},
		shared: shared,
	}
}

func pathKey(p hd.Path) string {
	b := make([]byte, 0, 4*len(p))
	for _, i := range p {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return string(b)
}

// PublicKey implements wallet.KeySource.
func (k *budgetKeys) PublicKey(_ context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	if len(path) > MaxPathDepth {
		return nil, fmt.Errorf("%w: path %s has %d levels, at most %d", ErrIntentTooLarge, path, len(path), MaxPathDepth)
	}
	if err := path.Validate(); err != nil {
		return nil, err
	}
	// Levels not yet known to this intent count against the budget whether
	// the shared cache holds them or not, so that the outcome does not
	// depend on what other requests left in the cache.
	l := len(path)
	node, ok := k.nodes[pathKey(path)]
	for !ok {
		l--
		node, ok = k.nodes[pathKey(path[:l])]
	}
	for ; l < len(path); l++ {
		if k.steps >= MaxDerivationSteps {
			return nil, fmt.Errorf("%w: more than %d BIP-32 derivations", ErrIntentTooLarge, MaxDerivationSteps)
		}
		k.steps++
		pk := pathKey(path[:l+1])
		if k.shared != nil {
			if n, hit := k.shared.get(k.root + pk); hit {
				node = n
				k.nodes[pk] = n
				continue
			}
		}
		child, cc, _, err := hd.Derive(node.pub, node.chainCode, path[l:l+1])
		if err != nil {
			return nil, err
		}
		node = xnode{pub: child, chainCode: cc}
		k.nodes[pk] = node
		if k.shared != nil {
			k.shared.put(k.root+pk, node)
		}
	}
	return node.pub, nil
}
