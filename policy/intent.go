package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// Kind names what an intent asks to sign. The values are the kinds of
// package wallet's Summary, plus KindRawDigest.
type Kind string

// The kinds of intent.
const (
	// KindBitcoinPSBT is a BIP-174 PSBT; each input of the key is one
	// digest, and the whole PSBT is one intent and one approval.
	KindBitcoinPSBT Kind = wallet.KindBitcoinPSBT
	// KindEthereumTx is an unsigned Ethereum transaction (legacy with
	// EIP-155, EIP-2930 or EIP-1559) on a given chain.
	KindEthereumTx Kind = wallet.KindEthereumTransaction
	// KindTypedData is EIP-712 typed data (eth_signTypedData_v4 JSON).
	KindTypedData Kind = wallet.KindEthereumTypedData
	// KindPersonalMessage is an EIP-191 personal message.
	KindPersonalMessage Kind = wallet.KindEthereumPersonalMessage
	// KindRawDigest is a bare 32-byte digest. Nobody can see what it
	// commits to, so policies refuse it unless a rule with the action
	// allow-raw-digest matches.
	KindRawDigest Kind = wallet.KindRawDigest
)

// Bounds on an intent. A peer sends intents, so every size and every piece
// of work they cause is bounded before it is parsed. FORMAT.md lists them.
const (
	// MaxIntentSize bounds the encoded intent.
	MaxIntentSize = 512 << 10
	// MaxUnsignedTxSize bounds a PSBT's unsigned transaction: 100,000 bytes
	// is the most a standard transaction (400,000 weight units) can have
	// without witnesses. It also bounds the legacy sighash work.
	MaxUnsignedTxSize = 100_000
	// MaxPSBTInputs bounds the inputs of a PSBT.
	MaxPSBTInputs = 1000
	// MaxPSBTOutputs bounds the outputs of a PSBT.
	MaxPSBTOutputs = 3000
	// MaxPSBTPaths bounds the derivation paths a PSBT intent lists.
	MaxPSBTPaths = 64
	// MaxPathDepth bounds every derivation path in an intent.
	MaxPathDepth = 32
	// MaxDerivationSteps bounds the BIP-32 child levels Derive walks for
	// one intent (each costs a scalar multiplication unless a KeyCache
	// holds it); a PSBT full of derivation fields that name this key's
	// fingerprint cannot make a site derive more. Cached levels count too,
	// so the outcome is the same on every site.
	MaxDerivationSteps = 4096
	// MaxLegacySighashBytes bounds the inputs spending P2PKH outputs times
	// the size of the unsigned transaction: each such input's legacy
	// sighash serializes the whole transaction, so without a bound a PSBT
	// of 1000 of them costs a site a third of a second.
	MaxLegacySighashBytes = 2 << 20
	// MaxEthereumTxSize bounds an unsigned Ethereum transaction.
	MaxEthereumTxSize = 128 << 10
	// MaxTypedDataSize bounds EIP-712 typed data JSON.
	MaxTypedDataSize = 64 << 10
	// MaxMessageSize bounds an EIP-191 personal message.
	MaxMessageSize = 16 << 10
	// MaxChainID bounds an Ethereum chain ID (EIP-2294's bound 2^63-1).
	MaxChainID = 1<<63 - 1
)

// intentMagic opens every encoded intent; IntentVersion follows it.
const intentMagic = "KQINTENT"

// IntentVersion is the version of the intent encoding (FORMAT.md).
const IntentVersion = 1

// intentHashTag is the domain tag of Intent.Hash.
const intentHashTag = "keyquorum/intent/v1\x00"

// kindCodes maps each kind to its byte in the encoding.
var kindCodes = []Kind{1: KindBitcoinPSBT, 2: KindEthereumTx, 3: KindTypedData, 4: KindPersonalMessage, 5: KindRawDigest}

func kindCode(k Kind) byte {
	for c, kk := range kindCodes {
		if kk == k && k != "" {
			return byte(c)
		}
	}
	return 0
}

// bitcoinNetworks are the network names a PSBT intent may carry.
var bitcoinNetworks = []string{"mainnet", "testnet", "regtest", "signet"}

// Intent is everything one signing request asks a key to sign, in a form
// every site parses and checks itself: a PSBT with the data of every input
// it spends, an unsigned Ethereum transaction with its chain ID, EIP-712
// typed data, an EIP-191 message, or a raw digest, plus the derivation
// paths involved.
//
// An Intent is immutable. It has one canonical encoding (Bytes, specified
// in FORMAT.md): ParseIntent accepts exactly the bytes Bytes produces, so
// Hash identifies the intent, and an approval of the hash approves this
// intent and no other.
type Intent struct {
	kind    Kind
	network string
	chainID uint64
	paths   []hd.Path
	payload []byte
	enc     []byte
}

// Kind returns what the intent asks to sign.
func (in *Intent) Kind() Kind { return in.kind }

// Network returns the Bitcoin network of a PSBT intent ("mainnet",
// "testnet", "regtest" or "signet"), or "".
func (in *Intent) Network() string { return in.network }

// ChainID returns the chain ID of an Ethereum transaction intent, or 0.
func (in *Intent) ChainID() uint64 { return in.chainID }

// Paths returns a copy of the intent's derivation paths: the signing path
// of a single-signature intent, or the paths a PSBT intent names so that
// inputs and change outputs without BIP-32 derivation fields are
// recognised (sorted, possibly empty).
func (in *Intent) Paths() []hd.Path {
	out := make([]hd.Path, len(in.paths))
	for i, p := range in.paths {
		out[i] = slices.Clone(p)
	}
	return out
}

// Payload returns a copy of the payload: the binary PSBT, the unsigned
// transaction's canonical encoding, the typed data JSON, the message, or
// the 32-byte digest.
func (in *Intent) Payload() []byte { return bytes.Clone(in.payload) }

// Bytes returns a copy of the canonical encoding.
func (in *Intent) Bytes() []byte { return bytes.Clone(in.enc) }

// MarshalBinary implements encoding.BinaryMarshaler with Bytes.
func (in *Intent) MarshalBinary() ([]byte, error) { return in.Bytes(), nil }

// Hash returns the intent hash: SHA-256 over the domain tag
// "keyquorum/intent/v1" and a zero byte, followed by Bytes. Approvals name
// it.
func (in *Intent) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(intentHashTag))
	h.Write(in.enc)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NewPSBTIntent returns the intent to sign a PSBT on a Bitcoin network
// ("mainnet", "testnet", "regtest" or "signet"). The PSBT may be binary or
// base64; it is stored in the binary form btcd's psbt package writes, so
// the same PSBT always gives the same intent. paths lists derivation paths
// whose scripts mark this key's inputs and change outputs when the PSBT
// has no BIP-32 derivation field for them (wallet.PSBTOptions.Paths).
//
// Every input must carry the output it spends (witness or non-witness
// UTXO), so that every site computes the same amounts and fee.
func NewPSBTIntent(network string, psbt []byte, paths ...hd.Path) (*Intent, error) {
	if len(psbt) > MaxIntentSize {
		return nil, fmt.Errorf("%w: PSBT of %d bytes, at most %d", ErrIntentTooLarge, len(psbt), MaxIntentSize)
	}
	raw := psbt
	if !bytes.HasPrefix(psbt, []byte("psbt\xff")) {
		p, err := wallet.ParsePSBT(psbt) // base64
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIntent, err)
		}
		var buf bytes.Buffer
		if err := p.Serialize(&buf); err != nil {
			return nil, fmt.Errorf("%w: serialize PSBT: %v", ErrIntent, err)
		}
		raw = buf.Bytes()
	}
	if err := scanPSBT(raw); err != nil {
		return nil, err
	}
	p, err := wallet.ParsePSBT(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIntent, err)
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("%w: serialize PSBT: %v", ErrIntent, err)
	}
	ps := make([]hd.Path, 0, len(paths))
	for _, q := range paths {
		ps = append(ps, slices.Clone(q))
	}
	slices.SortFunc(ps, comparePaths)
	ps = slices.CompactFunc(ps, hd.Path.Equal)
	return build(KindBitcoinPSBT, network, 0, ps, buf.Bytes())
}

// NewEthereumTxIntent returns the intent to sign an unsigned Ethereum
// transaction, given in its canonical encoding (types.Transaction's
// MarshalBinary), with the key at path on chain chainID. A typed
// transaction must carry chainID itself; a legacy one is signed with
// EIP-155 replay protection for chainID.
func NewEthereumTxIntent(chainID uint64, path hd.Path, unsignedTx []byte) (*Intent, error) {
	return build(KindEthereumTx, "", chainID, []hd.Path{slices.Clone(path)}, unsignedTx)
}

// NewTypedDataIntent returns the intent to sign EIP-712 typed data (the
// JSON of eth_signTypedData_v4) with the key at path.
func NewTypedDataIntent(path hd.Path, typedData []byte) (*Intent, error) {
	return build(KindTypedData, "", 0, []hd.Path{slices.Clone(path)}, typedData)
}

// NewPersonalMessageIntent returns the intent to sign msg as an EIP-191
// personal message with the key at path.
func NewPersonalMessageIntent(path hd.Path, msg []byte) (*Intent, error) {
	return build(KindPersonalMessage, "", 0, []hd.Path{slices.Clone(path)}, msg)
}

// NewRawDigestIntent returns the intent to sign a bare digest with the key
// at path. Policies refuse it unless a rule explicitly allows raw digests.
func NewRawDigestIntent(path hd.Path, digest [32]byte) (*Intent, error) {
	return build(KindRawDigest, "", 0, []hd.Path{slices.Clone(path)}, digest[:])
}

// build encodes the fields and runs the decoder over the result, so that a
// constructed intent passes exactly the checks a received one does.
func build(kind Kind, network string, chainID uint64, paths []hd.Path, payload []byte) (*Intent, error) {
	if len(network) > 255 || len(paths) > 255 {
		return nil, fmt.Errorf("%w: network name or path list too long", ErrIntent)
	}
	for _, p := range paths {
		if len(p) > MaxPathDepth {
			return nil, fmt.Errorf("%w: path %s has %d levels, at most %d", ErrIntentTooLarge, p, len(p), MaxPathDepth)
		}
	}
	size := len(intentMagic) + 2 + 1 + len(network) + 8 + 1 + 4 + len(payload)
	for _, p := range paths {
		size += 1 + 4*len(p)
	}
	if size > MaxIntentSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrIntentTooLarge, size, MaxIntentSize)
	}
	b := make([]byte, 0, size)
	b = append(b, intentMagic...)
	b = append(b, IntentVersion, kindCode(kind))
	b = append(b, byte(len(network)))
	b = append(b, network...)
	b = binary.BigEndian.AppendUint64(b, chainID)
	b = append(b, byte(len(paths)))
	for _, p := range paths {
		b = append(b, byte(len(p)))
		for _, idx := range p {
			b = binary.BigEndian.AppendUint32(b, idx)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return ParseIntent(b)
}

// ParseIntent decodes and checks an encoded intent (FORMAT.md): the
// framing, the fields each kind needs and no others, and the payload, which
// must parse and be in canonical form (a PSBT as btcd serializes it, a
// transaction as go-ethereum encodes it, unsigned). Errors wrap ErrIntent,
// ErrIntentTooLarge or a package wallet sentinel.
func ParseIntent(b []byte) (*Intent, error) {
	if len(b) > MaxIntentSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrIntentTooLarge, len(b), MaxIntentSize)
	}
	r := reader{b: b}
	if string(r.next(len(intentMagic))) != intentMagic {
		return nil, fmt.Errorf("%w: does not start with %q", ErrIntent, intentMagic)
	}
	if v := r.u8(); v != IntentVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", ErrIntent, v, IntentVersion)
	}
	code := r.u8()
	if r.err != nil || int(code) >= len(kindCodes) || kindCodes[code] == "" {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrIntent, code)
	}
	in := &Intent{kind: kindCodes[code]}
	in.network = string(r.next(int(r.u8())))
	in.chainID = r.u64()
	n := int(r.u8())
	for i := 0; i < n && r.err == nil; i++ {
		depth := int(r.u8())
		if depth > MaxPathDepth {
			return nil, fmt.Errorf("%w: path %d has %d levels, at most %d", ErrIntentTooLarge, i, depth, MaxPathDepth)
		}
		p := make(hd.Path, depth)
		for j := range p {
			p[j] = r.u32()
		}
		if r.err == nil {
			if err := p.Validate(); err != nil {
				return nil, fmt.Errorf("%w: path %d: %w", ErrIntent, i, err)
			}
		}
		in.paths = append(in.paths, p)
	}
	in.payload = r.next(int(r.u32()))
	if r.err != nil {
		return nil, fmt.Errorf("%w: truncated", ErrIntent)
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the payload", ErrIntent, len(b)-r.off)
	}
	in.payload = bytes.Clone(in.payload)
	in.enc = bytes.Clone(b)
	if err := in.check(); err != nil {
		return nil, err
	}
	return in, nil
}

// check applies the per-kind rules of FORMAT.md.
func (in *Intent) check() error {
	if in.kind == KindBitcoinPSBT {
		if !slices.Contains(bitcoinNetworks, in.network) {
			return fmt.Errorf("%w: PSBT intent for network %q (use mainnet, testnet, regtest or signet)", ErrIntent, in.network)
		}
		if in.chainID != 0 {
			return fmt.Errorf("%w: PSBT intent carries a chain ID", ErrIntent)
		}
		if len(in.paths) > MaxPSBTPaths {
			return fmt.Errorf("%w: %d paths, at most %d", ErrIntentTooLarge, len(in.paths), MaxPSBTPaths)
		}
		for i := 1; i < len(in.paths); i++ {
			if comparePaths(in.paths[i-1], in.paths[i]) >= 0 {
				return fmt.Errorf("%w: PSBT intent paths are not sorted and distinct", ErrIntent)
			}
		}
		return in.checkPSBT()
	}
	if in.network != "" {
		return fmt.Errorf("%w: %s intent carries a Bitcoin network", ErrIntent, in.kind)
	}
	if len(in.paths) != 1 {
		return fmt.Errorf("%w: %s intent has %d paths, want exactly one", ErrIntent, in.kind, len(in.paths))
	}
	if in.kind != KindEthereumTx && in.chainID != 0 {
		return fmt.Errorf("%w: %s intent carries a chain ID", ErrIntent, in.kind)
	}
	switch in.kind {
	case KindEthereumTx:
		return in.checkEthereumTx()
	case KindTypedData:
		if len(in.payload) > MaxTypedDataSize {
			return fmt.Errorf("%w: typed data of %d bytes, at most %d", ErrIntentTooLarge, len(in.payload), MaxTypedDataSize)
		}
		if _, err := wallet.ParseTypedData(in.payload); err != nil {
			return fmt.Errorf("%w: %w", ErrIntent, err)
		}
	case KindPersonalMessage:
		if len(in.payload) == 0 {
			return fmt.Errorf("%w: empty personal message", ErrIntent)
		}
		if len(in.payload) > MaxMessageSize {
			return fmt.Errorf("%w: message of %d bytes, at most %d", ErrIntentTooLarge, len(in.payload), MaxMessageSize)
		}
	case KindRawDigest:
		if len(in.payload) != 32 {
			return fmt.Errorf("%w: raw digest of %d bytes, want 32", ErrIntent, len(in.payload))
		}
	}
	return nil
}

func (in *Intent) checkPSBT() error {
	if err := scanPSBT(in.payload); err != nil {
		return err
	}
	p, err := wallet.ParsePSBT(in.payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIntent, err)
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil || !bytes.Equal(buf.Bytes(), in.payload) {
		return fmt.Errorf("%w: PSBT is not in canonical form (build the intent with NewPSBTIntent)", ErrIntent)
	}
	for i := range p.Inputs {
		if p.Inputs[i].WitnessUtxo == nil && p.Inputs[i].NonWitnessUtxo == nil {
			return fmt.Errorf("%w: PSBT input %d carries neither a witness nor a non-witness UTXO; every input needs its spent output", ErrIntent, i)
		}
	}
	return nil
}

func (in *Intent) checkEthereumTx() error {
	if in.chainID == 0 || in.chainID > MaxChainID {
		return fmt.Errorf("%w: Ethereum transaction intent needs a chain ID from 1 to 2^63-1, got %d", ErrIntent, in.chainID)
	}
	if len(in.payload) > MaxEthereumTxSize {
		return fmt.Errorf("%w: transaction of %d bytes, at most %d", ErrIntentTooLarge, len(in.payload), MaxEthereumTxSize)
	}
	tx, err := wallet.ParseEthereumTx(in.payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIntent, err)
	}
	if _, err := wallet.EthereumTxDigest(tx, chainIDInt(in.chainID)); err != nil {
		return fmt.Errorf("%w: %w", ErrIntent, err)
	}
	enc, err := tx.MarshalBinary()
	if err != nil || !bytes.Equal(enc, in.payload) {
		return fmt.Errorf("%w: transaction is not in canonical encoding", ErrIntent)
	}
	return nil
}

// comparePaths orders paths element by element, a prefix first.
func comparePaths(a, b hd.Path) int { return slices.Compare(a, b) }

// reader reads big-endian fields; after the first short read every read
// returns zero values and err stays set.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.err = ErrIntent
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *reader) u8() byte {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
