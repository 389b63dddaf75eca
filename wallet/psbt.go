package wallet

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// PSBTOptions configures [PlanPSBT] and [SignPSBT].
type PSBTOptions struct {
	// Net is the Bitcoin network the PSBT spends on. It is required: the
	// summary shows addresses for this network.
	Net *chaincfg.Params

	// Paths lists derivation paths whose P2WPKH, P2SH-P2WPKH and P2PKH
	// scripts identify this key's inputs (and change outputs) when the PSBT
	// has no BIP-32 derivation field for them. Inputs with a BIP-32
	// derivation field naming this key (Fingerprint of the group key, a
	// non-hardened path, the matching public key) are found without it.
	// [PlanTaprootPSBT] does not use it: Schnorr keys are not derived.
	Paths []hd.Path

	// SighashTypes lists the sighash types an input of this key may request
	// through its PSBT sighash field. Empty means only SIGHASH_ALL. An
	// input without a sighash field is signed with SIGHASH_ALL, or for
	// Taproot with SIGHASH_DEFAULT (BIP-341), which is always allowed and
	// commits to the whole transaction like SIGHASH_ALL; a Taproot input
	// that asks for SIGHASH_ALL explicitly needs it listed here like any
	// other type.
	SighashTypes []txscript.SigHashType

	// RequireFullPrevTx refuses segwit inputs of this key whose PSBT entry
	// carries only the spent output (witness UTXO) and not the whole
	// previous transaction. The BIP-143 sighash commits to the spent amount,
	// but a signer that sees only the witness UTXO can be shown a false
	// amount in two separate signing rounds (CVE-2020-14199); with the full
	// previous transaction the amount is checked against its ID. Taproot
	// sighashes commit to every spent amount, so Taproot inputs do not need
	// it, but [PlanTaprootPSBT] honours it too.
	RequireFullPrevTx bool
}

// PSBTInput is an input this key signs, with everything needed to sign it.
// ECDSA inputs ([PlanPSBT]) have Path and PublicKey; Taproot key-path
// inputs ([PlanTaprootPSBT]) have Type [P2TR], InternalKey, OutputKey and
// MerkleRoot instead.
type PSBTInput struct {
	Index       int
	Path        hd.Path
	PublicKey   *secp256k1.PublicKey
	Type        AddressType
	SighashType txscript.SigHashType
	// PrevOut is the output the input spends.
	PrevOut *wire.TxOut
	// Digest is the BIP-143 (segwit v0), legacy or BIP-341 (taproot)
	// sighash to sign.
	Digest [32]byte
	// InternalKey is the 32-byte x-only internal key of a P2TR input.
	InternalKey []byte
	// OutputKey is the 32-byte x-only output key of a P2TR input, under
	// which its BIP-340 signature verifies.
	OutputKey []byte
	// MerkleRoot is the script tree root a P2TR input's output key commits
	// to, or nil for a key-path-only output.
	MerkleRoot []byte
}

// PSBTPlan is what [PlanPSBT] found in a PSBT: the inputs this key signs with
// their digests, and a [Summary] of the whole transaction.
type PSBTPlan struct {
	Inputs  []PSBTInput
	Summary *Summary
}

// SignedPSBT is the result of [SignPSBT].
type SignedPSBT struct {
	// Packet is a copy of the input PSBT in which every input of this key
	// carries its partial signature and final script. The caller's packet
	// is not modified.
	Packet *psbt.Packet
	// Plan lists the signed inputs and the Summary.
	Plan *PSBTPlan
	// Signatures holds the canonical signature of each input in
	// Plan.Inputs, in the same order ([SignPSBT] only).
	Signatures []Signature
	// SchnorrSignatures holds the 64-byte BIP-340 signature of each input
	// in Plan.Inputs, in the same order ([SignTaprootPSBT] only).
	SchnorrSignatures [][]byte
	// Complete reports whether every input of the transaction is final,
	// including inputs of other keys.
	Complete bool
	// Tx is the network transaction, set only when Complete.
	Tx *wire.MsgTx
	// RawTx is the serialization of Tx (with witnesses), set only when
	// Complete.
	RawTx []byte
}

// ParsePSBT decodes a PSBT in binary (starting with "psbt\xff") or base64
// form, as wallets and bitcoind exchange it.
func ParsePSBT(raw []byte) (*psbt.Packet, error) {
	if bytes.HasPrefix(raw, []byte("psbt\xff")) {
		return parsePSBT(raw, false)
	}
	return parsePSBT(bytes.TrimSpace(raw), true)
}

// parsePSBT runs btcutil/psbt's parser, turning its panics on malformed
// input (psbt v1.1.8 slices short BIP-32 derivation values without a length
// check) into ErrInvalidPSBT.
func parsePSBT(raw []byte, b64 bool) (p *psbt.Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: malformed PSBT (parser panic: %v)", ErrInvalidPSBT, r)
		}
	}()
	p, err = psbt.NewFromRawBytes(bytes.NewReader(raw), b64)
	if err != nil {
		return nil, fmt.Errorf("%w: not a binary or base64 PSBT: %v", ErrInvalidPSBT, err)
	}
	return p, nil
}

// copyPacket returns a deep copy of p by serializing and parsing it.
func copyPacket(p *psbt.Packet) (*psbt.Packet, error) {
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("%w: serialize: %v", ErrInvalidPSBT, err)
	}
	return parsePSBT(buf.Bytes(), false)
}

// ownedKey is a derived key of the threshold key with its scripts.
type ownedKey struct {
	path    hd.Path
	pub     *secp256k1.PublicKey
	scripts keyScripts
}

// keyIndex finds this key's derived keys by script or by PSBT derivation
// field. It derives each path once.
type keyIndex struct {
	ctx      context.Context
	keys     KeySource
	rootFP   uint32
	byPath   map[string]*ownedKey
	byScript map[string]*ownedKey
	xOnly    map[[32]byte]bool
}

func newKeyIndex(ctx context.Context, keys KeySource, paths []hd.Path) (*keyIndex, error) {
	root, err := signerKey(ctx, keys, hd.Path{})
	if err != nil {
		return nil, err
	}
	idx := &keyIndex{
		ctx:      ctx,
		keys:     keys,
		rootFP:   PSBTFingerprint(root),
		byPath:   map[string]*ownedKey{},
		byScript: map[string]*ownedKey{},
		xOnly:    map[[32]byte]bool{},
	}
	for _, p := range paths {
		o, err := idx.derive(p)
		if err != nil {
			return nil, err
		}
		idx.register(o)
	}
	return idx, nil
}

// derive returns the key at p, deriving it once.
func (k *keyIndex) derive(p hd.Path) (*ownedKey, error) {
	if ok := k.byPath[p.String()]; ok != nil {
		return ok, nil
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("wallet: path %s: %w", p, err)
	}
	pub, err := signerKey(k.ctx, k.keys, p)
	if err != nil {
		return nil, err
	}
	o := &ownedKey{path: append(hd.Path{}, p...), pub: pub, scripts: scriptsFor(pub)}
	k.byPath[p.String()] = o
	return o, nil
}

// register makes o's scripts and x-only key known for matching.
func (k *keyIndex) register(o *ownedKey) {
	for _, s := range [][]byte{o.scripts.p2wpkh, o.scripts.p2shP2wpkh, o.scripts.p2pkh} {
		k.byScript[string(s)] = o
	}
	var x [32]byte
	copy(x[:], o.pub.SerializeCompressed()[1:])
	k.xOnly[x] = true
}

// fromDerivations returns the key named by a BIP-32 derivation field of this
// key's root, if the field's public key is the one derived at its path, and
// registers it for script matching. A field with this root's fingerprint but
// a hardened path or another key is not this key's (a fingerprint is only 32
// bits) and is skipped.
func (k *keyIndex) fromDerivations(ders []*psbt.Bip32Derivation) (*ownedKey, error) {
	var found *ownedKey
	for _, d := range ders {
		if d == nil || d.MasterKeyFingerprint != k.rootFP {
			continue
		}
		path := hd.Path(d.Bip32Path)
		if path.Validate() != nil {
			continue
		}
		o, err := k.derive(path)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(o.pub.SerializeCompressed(), d.PubKey) {
			k.register(o)
			if found == nil {
				found = o
			}
		}
	}
	return found, nil
}

// prevOutput returns the output spent by input i, or nil if the PSBT does
// not carry it. It checks the non-witness UTXO against the outpoint and
// against the witness UTXO when both are present.
func prevOutput(p *psbt.Packet, i int) (out *wire.TxOut, fullTx bool, err error) {
	in := p.Inputs[i]
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	if in.NonWitnessUtxo != nil {
		if got := in.NonWitnessUtxo.TxHash(); got != op.Hash {
			return nil, false, fmt.Errorf("%w: input %d spends %s but its non-witness UTXO is transaction %s", ErrUTXOMismatch, i, op, got)
		}
		if int(op.Index) >= len(in.NonWitnessUtxo.TxOut) {
			return nil, false, fmt.Errorf("%w: input %d spends output %d of a transaction with %d outputs", ErrUTXOMismatch, i, op.Index, len(in.NonWitnessUtxo.TxOut))
		}
		out = in.NonWitnessUtxo.TxOut[op.Index]
		if in.WitnessUtxo != nil && !psbt.TxOutsEqual(in.WitnessUtxo, out) {
			return nil, false, fmt.Errorf("%w: input %d witness UTXO differs from output %s of its previous transaction", ErrUTXOMismatch, i, op)
		}
		return out, true, nil
	}
	return in.WitnessUtxo, false, nil
}

// isTaprootInput reports whether input i spends or describes a taproot output.
func isTaprootInput(in *psbt.PInput, prev *wire.TxOut) bool {
	return (prev != nil && txscript.IsPayToTaproot(prev.PkScript)) ||
		len(in.TaprootBip32Derivation) > 0 || len(in.TaprootInternalKey) > 0 ||
		len(in.TaprootKeySpendSig) > 0 || len(in.TaprootLeafScript) > 0
}

// claimsTaprootKey reports whether a taproot input names this key: by a
// taproot BIP-32 derivation field with this root's fingerprint, by its
// internal key, or by an output key equal to one of this key's (x-only).
func (k *keyIndex) claimsTaprootKey(in *psbt.PInput, prev *wire.TxOut) bool {
	for _, d := range in.TaprootBip32Derivation {
		if d != nil && d.MasterKeyFingerprint == k.rootFP {
			return true
		}
	}
	var x [32]byte
	if len(in.TaprootInternalKey) == 32 {
		copy(x[:], in.TaprootInternalKey)
		if k.xOnly[x] {
			return true
		}
	}
	if prev != nil && txscript.IsPayToTaproot(prev.PkScript) && len(prev.PkScript) == 34 {
		copy(x[:], prev.PkScript[2:])
		if k.xOnly[x] {
			return true
		}
	}
	return false
}

// allowedSighash checks the sighash type requested for input i.
func allowedSighash(requested txscript.SigHashType, allowed []txscript.SigHashType, i, nOut int) (txscript.SigHashType, error) {
	t := requested
	if t == 0 {
		t = txscript.SigHashAll
	}
	switch t &^ txscript.SigHashAnyOneCanPay {
	case txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle:
	default:
		return 0, fmt.Errorf("%w: input %d requests invalid sighash type 0x%x", ErrSighashType, i, uint32(t))
	}
	if len(allowed) == 0 {
		allowed = []txscript.SigHashType{txscript.SigHashAll}
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == t
	}
	if !ok {
		return 0, fmt.Errorf("%w: input %d requests %s; allow it in PSBTOptions.SighashTypes if intended", ErrSighashType, i, sighashName(t))
	}
	// Legacy SIGHASH_SINGLE without a matching output signs the constant 1
	// (a consensus bug), which lets anyone reuse the signature.
	if t&^txscript.SigHashAnyOneCanPay == txscript.SigHashSingle && i >= nOut {
		return 0, fmt.Errorf("%w: input %d requests SIGHASH_SINGLE but there is no output %d", ErrSighashType, i, i)
	}
	return t, nil
}

// sighashName returns "ALL", "NONE|ANYONECANPAY", ...
func sighashName(t txscript.SigHashType) string {
	var name string
	switch t &^ txscript.SigHashAnyOneCanPay {
	case txscript.SigHashAll:
		name = "ALL"
	case txscript.SigHashNone:
		name = "NONE"
	case txscript.SigHashSingle:
		name = "SINGLE"
	default:
		name = fmt.Sprintf("0x%x", uint32(t&^txscript.SigHashAnyOneCanPay))
	}
	if t&txscript.SigHashAnyOneCanPay != 0 {
		name += "|ANYONECANPAY"
	}
	return name
}

// prevOutFetcher serves the known previous outputs to btcd's sighash cache.
// Unknown outputs (inputs of other parties without UTXO data) are served as
// empty outputs: segwit v0 sighashes never read other inputs' outputs.
type prevOutFetcher map[wire.OutPoint]*wire.TxOut

func (f prevOutFetcher) FetchPrevOutput(op wire.OutPoint) *wire.TxOut {
	if out := f[op]; out != nil {
		return out
	}
	return &wire.TxOut{}
}

// PlanPSBT finds the inputs of packet that belong to the threshold key of
// keys, computes the digest each must sign, and summarizes the transaction.
// It signs nothing and needs no secret, so every site can run it on the raw
// PSBT before it agrees to sign.
//
// An input belongs to the key when one of its BIP-32 derivation fields names
// the key's root fingerprint ([PSBTFingerprint] of the group key) with a
// non-hardened path whose derived key is the field's key, or when the script
// it spends is the P2WPKH, P2SH-P2WPKH or P2PKH script of a key at one of
// opts.Paths or at a path proven that way by any derivation field of the
// PSBT. Fields with this fingerprint but another key or a hardened path are
// ignored: a fingerprint has only 32 bits. Such an input must spend one of those
// three script types ([ErrUnsupportedScript]), carry its previous output
// ([ErrMissingUTXO]; P2PKH needs the whole previous transaction), request an
// allowed sighash type ([ErrSighashType]) and not be signed yet
// ([ErrAlreadySigned]). A taproot input that names this ECDSA key fails with
// [ErrTaproot]; taproot inputs of other keys, including a Schnorr key's that
// [PlanTaprootPSBT] handles, are left alone like every input of other keys,
// and listed in the summary.
func PlanPSBT(ctx context.Context, keys KeySource, packet *psbt.Packet, opts PSBTOptions) (*PSBTPlan, error) {
	if keys == nil {
		return nil, fmt.Errorf("wallet: PlanPSBT needs a key source")
	}
	if err := checkPacket(packet, opts); err != nil {
		return nil, err
	}
	tx := packet.UnsignedTx
	idx, err := newKeyIndex(ctx, keys, opts.Paths)
	if err != nil {
		return nil, err
	}
	sp, err := newSpentOutputs(packet, opts.Net)
	if err != nil {
		return nil, err
	}
	summary, bs := sp.summary, sp.bitcoin
	plan := &PSBTPlan{Summary: summary}
	prevOuts, fullTx, fetcher := sp.prev, sp.full, sp.fetcher
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)

	// Register every key that a derivation field anywhere in the PSBT
	// proves to be ours before matching scripts, so that ownership does not
	// depend on the order of inputs and outputs.
	inputOwners := make([]*ownedKey, len(tx.TxIn))
	for i := range packet.Inputs {
		if inputOwners[i], err = idx.fromDerivations(packet.Inputs[i].Bip32Derivation); err != nil {
			return nil, err
		}
	}
	outputOwners := make([]*ownedKey, len(tx.TxOut))
	for i := range packet.Outputs {
		if outputOwners[i], err = idx.fromDerivations(packet.Outputs[i].Bip32Derivation); err != nil {
			return nil, err
		}
	}

	for i := range tx.TxIn {
		in := &packet.Inputs[i]
		prev := prevOuts[i]
		owner := inputOwners[i]
		if isTaprootInput(in, prev) {
			if owner != nil || idx.claimsTaprootKey(in, prev) {
				return nil, fmt.Errorf("%w: input %d", ErrTaproot, i)
			}
			continue
		}
		if owner == nil && prev != nil {
			owner = idx.byScript[string(prev.PkScript)]
		}
		if owner == nil {
			continue
		}
		pi, err := planInput(packet, i, owner, prev, fullTx[i], sigHashes, opts)
		if err != nil {
			return nil, err
		}
		plan.Inputs = append(plan.Inputs, pi)
		bi := &bs.Inputs[i]
		bi.Ours, bi.Path, bi.Type, bi.Sighash = true, pi.Path, pi.Type, sighashName(pi.SighashType)
		if pi.SighashType != txscript.SigHashAll {
			summary.Warnings = append(summary.Warnings, fmt.Sprintf("input %d is signed with SIGHASH_%s: the signature does not commit to the whole transaction", i, sighashName(pi.SighashType)))
		}
		inputIndex := i
		summary.Digests = append(summary.Digests, DigestToSign{
			Input: &inputIndex, Path: pi.Path, PublicKey: pi.PublicKey.SerializeCompressed(), Digest: pi.Digest[:],
		})
	}

	sp.summarizeOutputs(func(i int, out *wire.TxOut) (hd.Path, bool) {
		owner := outputOwners[i]
		if owner != nil {
			if _, ok := owner.scripts.match(out.PkScript); !ok {
				// The field names our key but the output pays elsewhere.
				summary.Warnings = append(summary.Warnings, fmt.Sprintf("output %d: BIP-32 derivation names this key but the script pays elsewhere; not counted as change", i))
				return nil, false
			}
		} else {
			owner = idx.byScript[string(out.PkScript)]
		}
		if owner == nil {
			return nil, false
		}
		return owner.path, true
	})
	return plan, nil
}

// checkPacket validates what every PSBT planner needs: network
// parameters, a transaction with one map per input and output, btcd's
// sanity rules and a sound transaction shape.
func checkPacket(packet *psbt.Packet, opts PSBTOptions) error {
	if opts.Net == nil {
		return fmt.Errorf("%w: PSBTOptions.Net is required", ErrAddressType)
	}
	if packet == nil || packet.UnsignedTx == nil {
		return fmt.Errorf("%w: no PSBT", ErrInvalidPSBT)
	}
	tx := packet.UnsignedTx
	if len(packet.Inputs) != len(tx.TxIn) || len(packet.Outputs) != len(tx.TxOut) {
		return fmt.Errorf("%w: %d input and %d output maps for a transaction with %d inputs and %d outputs",
			ErrInvalidPSBT, len(packet.Inputs), len(packet.Outputs), len(tx.TxIn), len(tx.TxOut))
	}
	if err := packet.SanityCheck(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPSBT, err)
	}
	return checkTxShape(packet)
}

// spentOutputs is what a PSBT says about the outputs its inputs spend, and
// the summary begun from them.
type spentOutputs struct {
	tx      *wire.MsgTx
	net     *chaincfg.Params
	prev    []*wire.TxOut // nil where the PSBT does not carry the output
	full    []bool        // the whole previous transaction is present
	fetcher prevOutFetcher
	missing []int // inputs whose previous output is unknown
	totalIn Amount
	summary *Summary
	bitcoin *BitcoinSummary
}

// newSpentOutputs reads every input's previous output (checking the
// non-witness UTXO against the outpoint) and starts the summary with the
// inputs, none of them marked as ours yet.
func newSpentOutputs(packet *psbt.Packet, net *chaincfg.Params) (*spentOutputs, error) {
	tx := packet.UnsignedTx
	bs := &BitcoinSummary{
		Network:      net.Name,
		UnsignedTxID: tx.TxHash().String(),
		Version:      tx.Version,
		LockTime:     tx.LockTime,
	}
	sp := &spentOutputs{
		tx:      tx,
		net:     net,
		prev:    make([]*wire.TxOut, len(tx.TxIn)),
		full:    make([]bool, len(tx.TxIn)),
		fetcher: prevOutFetcher{},
		summary: &Summary{Version: SummaryVersion, Kind: KindBitcoinPSBT, Bitcoin: bs, Digests: []DigestToSign{}},
		bitcoin: bs,
	}
	for i, txIn := range tx.TxIn {
		prev, full, err := prevOutput(packet, i)
		if err != nil {
			return nil, err
		}
		sp.prev[i], sp.full[i] = prev, full
		bi := BitcoinInput{Index: i, Outpoint: txIn.PreviousOutPoint.String()}
		if prev != nil {
			sp.fetcher[txIn.PreviousOutPoint] = prev
			amt := Amount(prev.Value)
			bi.Amount = &amt
			bi.Script = prev.PkScript
			bi.Address = scriptAddress(prev.PkScript, net)
			sp.totalIn += amt
		} else {
			sp.missing = append(sp.missing, i)
			sp.summary.Warnings = append(sp.summary.Warnings, fmt.Sprintf("input %d: amount unknown (no UTXO in the PSBT), fee cannot be computed", i))
		}
		bs.Inputs = append(bs.Inputs, bi)
	}
	return sp, nil
}

// summarizeOutputs adds the outputs, totals and fee to the summary; change
// reports whether output i pays back to this key, and at which path.
func (sp *spentOutputs) summarizeOutputs(change func(i int, out *wire.TxOut) (hd.Path, bool)) {
	bs := sp.bitcoin
	var totalOut, sent Amount
	for i, out := range sp.tx.TxOut {
		bo := BitcoinOutput{Index: i, Amount: Amount(out.Value), Script: out.PkScript, Address: scriptAddress(out.PkScript, sp.net)}
		if path, ok := change(i, out); ok {
			bo.Change, bo.Path = true, path
		} else {
			sent += Amount(out.Value)
		}
		totalOut += Amount(out.Value)
		bs.Outputs = append(bs.Outputs, bo)
	}
	bs.TotalOut, bs.Sent = totalOut, sent
	if len(sp.missing) == 0 {
		totalIn := sp.totalIn
		fee := totalIn - totalOut
		bs.TotalIn, bs.Fee = &totalIn, &fee
		if fee < 0 {
			sp.summary.Warnings = append(sp.summary.Warnings, "outputs exceed inputs: the transaction is invalid")
		}
	}
}

// checkTxShape refuses what no valid transaction contains and what would
// make the summary's sums wrong: an input spent twice (consensus-invalid,
// and counted twice) and amounts outside 0..21 million BTC (which could
// overflow the sums).
func checkTxShape(p *psbt.Packet) error {
	seen := make(map[wire.OutPoint]int, len(p.UnsignedTx.TxIn))
	for i, in := range p.UnsignedTx.TxIn {
		if j, dup := seen[in.PreviousOutPoint]; dup {
			return fmt.Errorf("%w: inputs %d and %d spend the same output %s", ErrInvalidPSBT, j, i, in.PreviousOutPoint)
		}
		seen[in.PreviousOutPoint] = i
	}
	for i, out := range p.UnsignedTx.TxOut {
		if out.Value < 0 || out.Value > btcutil.MaxSatoshi {
			return fmt.Errorf("%w: output %d amount %d sat is out of range", ErrInvalidPSBT, i, out.Value)
		}
	}
	for i := range p.Inputs {
		for _, out := range []*wire.TxOut{p.Inputs[i].WitnessUtxo, nonWitnessOut(p, i)} {
			if out != nil && (out.Value < 0 || out.Value > btcutil.MaxSatoshi) {
				return fmt.Errorf("%w: input %d spends an amount of %d sat, out of range", ErrInvalidPSBT, i, out.Value)
			}
		}
	}
	return nil
}

// nonWitnessOut returns the output input i spends according to its
// non-witness UTXO, or nil.
func nonWitnessOut(p *psbt.Packet, i int) *wire.TxOut {
	prev := p.Inputs[i].NonWitnessUtxo
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	if prev == nil || int(op.Index) >= len(prev.TxOut) {
		return nil
	}
	return prev.TxOut[op.Index]
}

// planInput checks input i of this key and computes its digest.
func planInput(p *psbt.Packet, i int, owner *ownedKey, prev *wire.TxOut, fullTx bool, sigHashes *txscript.TxSigHashes, opts PSBTOptions) (PSBTInput, error) {
	in := &p.Inputs[i]
	tx := p.UnsignedTx
	if prev == nil {
		return PSBTInput{}, fmt.Errorf("%w: input %d (key at %s) has neither a witness nor a non-witness UTXO", ErrMissingUTXO, i, owner.path)
	}
	typ, ok := owner.scripts.match(prev.PkScript)
	if !ok {
		if txscript.IsPayToTaproot(prev.PkScript) {
			return PSBTInput{}, fmt.Errorf("%w: input %d", ErrTaproot, i)
		}
		return PSBTInput{}, fmt.Errorf("%w: input %d names the key at %s but spends script %x", ErrUnsupportedScript, i, owner.path, prev.PkScript)
	}
	if in.WitnessScript != nil {
		return PSBTInput{}, fmt.Errorf("%w: input %d is %s but carries a witness script", ErrUnsupportedScript, i, typ)
	}
	if in.RedeemScript != nil && (typ != P2SHP2WPKH || !bytes.Equal(in.RedeemScript, owner.scripts.redeem)) {
		return PSBTInput{}, fmt.Errorf("%w: input %d is %s but its redeem script %x is not this key's", ErrUnsupportedScript, i, typ, in.RedeemScript)
	}
	if in.FinalScriptSig != nil || in.FinalScriptWitness != nil {
		return PSBTInput{}, fmt.Errorf("%w: input %d is already finalized", ErrAlreadySigned, i)
	}
	pubBytes := owner.pub.SerializeCompressed()
	for _, ps := range in.PartialSigs {
		if ps != nil && bytes.Equal(ps.PubKey, pubBytes) {
			return PSBTInput{}, fmt.Errorf("%w: input %d has a partial signature by the key at %s", ErrAlreadySigned, i, owner.path)
		}
	}
	if typ == P2PKH && !fullTx {
		return PSBTInput{}, fmt.Errorf("%w: input %d is P2PKH and needs the whole previous transaction (non-witness UTXO)", ErrMissingUTXO, i)
	}
	if typ != P2PKH && opts.RequireFullPrevTx && !fullTx {
		return PSBTInput{}, fmt.Errorf("%w: input %d has only a witness UTXO and RequireFullPrevTx is set", ErrMissingUTXO, i)
	}
	hashType, err := allowedSighash(in.SighashType, opts.SighashTypes, i, len(tx.TxOut))
	if err != nil {
		return PSBTInput{}, err
	}

	var digest []byte
	switch typ {
	case P2WPKH:
		// BIP-143: the script code of P2WPKH is the P2PKH script of the
		// key hash; btcd derives it from the witness program.
		digest, err = txscript.CalcWitnessSigHash(prev.PkScript, sigHashes, hashType, tx, i, prev.Value)
	case P2SHP2WPKH:
		digest, err = txscript.CalcWitnessSigHash(owner.scripts.redeem, sigHashes, hashType, tx, i, prev.Value)
	case P2PKH:
		digest, err = txscript.CalcSignatureHash(prev.PkScript, hashType, tx, i)
	}
	if err != nil {
		return PSBTInput{}, fmt.Errorf("wallet: sighash of input %d: %w", i, err)
	}
	pi := PSBTInput{
		Index: i, Path: owner.path, PublicKey: owner.pub, Type: typ,
		SighashType: hashType, PrevOut: prev,
	}
	copy(pi.Digest[:], digest)
	return pi, nil
}

// scriptAddress returns the address of a standard single-address script, or
// "" when the script has no single address on net.
func scriptAddress(pkScript []byte, net *chaincfg.Params) string {
	_, addrs, n, err := txscript.ExtractPkScriptAddrs(pkScript, net)
	if err != nil || len(addrs) != 1 || n > 1 {
		return ""
	}
	return addrs[0].EncodeAddress()
}

// SignPSBT signs every input of packet that belongs to the threshold key of
// s, finalizes those inputs and, when the whole transaction is then final,
// extracts the network transaction.
//
// It runs [PlanPSBT] (see there for which inputs are signed and what is
// refused), asks s for one signature per input, and checks each against the
// derived key with [Signature.Canonical] before it enters the PSBT. Finalized
// inputs are then executed with btcd's script engine under
// txscript.StandardVerifyFlags; a failure there is [ErrScriptCheck]. Inputs of
// other keys stay as they were. The caller's packet is not modified; the
// result holds a signed copy. If any step fails, no signature is returned.
// Taproot inputs of a Schnorr key are signed by [SignTaprootPSBT], before or
// after this call, on the packet the other call returned.
func SignPSBT(ctx context.Context, s Signer, packet *psbt.Packet, opts PSBTOptions) (*SignedPSBT, error) {
	if s == nil {
		return nil, fmt.Errorf("wallet: SignPSBT needs a signer")
	}
	plan, err := PlanPSBT(ctx, s, packet, opts)
	if err != nil {
		return nil, err
	}
	if len(plan.Inputs) == 0 {
		return nil, fmt.Errorf("%w: %d inputs checked (add the key's paths to PSBTOptions.Paths or BIP-32 derivation fields to the PSBT)", ErrNothingToSign, len(packet.Inputs))
	}
	out, err := copyPacket(packet)
	if err != nil {
		return nil, err
	}

	sigs := make([]Signature, len(plan.Inputs))
	for n, pi := range plan.Inputs {
		sig, err := signChecked(ctx, s, pi.Digest, pi.Path, pi.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("wallet: input %d: %w", pi.Index, err)
		}
		sigs[n] = sig
	}

	u, err := psbt.NewUpdater(out)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPSBT, err)
	}
	for n, pi := range plan.Inputs {
		sigBytes := append(sigs[n].DER(), byte(pi.SighashType))
		var redeem []byte
		if pi.Type == P2SHP2WPKH {
			redeem = scriptsFor(pi.PublicKey).redeem
		}
		outcome, err := u.Sign(pi.Index, sigBytes, pi.PublicKey.SerializeCompressed(), redeem, nil)
		if err != nil || outcome != psbt.SignSuccesful {
			return nil, fmt.Errorf("%w: add signature to input %d: outcome %d: %v", ErrInvalidPSBT, pi.Index, outcome, err)
		}
		if err := psbt.Finalize(out, pi.Index); err != nil {
			return nil, fmt.Errorf("%w: finalize input %d: %v", ErrInvalidPSBT, pi.Index, err)
		}
	}
	if err := verifyFinalInputs(out, plan.Inputs); err != nil {
		return nil, err
	}

	res := &SignedPSBT{Packet: out, Plan: plan, Signatures: sigs}
	if err := res.extract(); err != nil {
		return nil, err
	}
	return res, nil
}

// extract sets Complete and, when every input is final, Tx and RawTx.
func (res *SignedPSBT) extract() error {
	res.Complete = res.Packet.IsComplete()
	if !res.Complete {
		return nil
	}
	tx, err := psbt.Extract(res.Packet)
	if err != nil {
		return fmt.Errorf("%w: extract transaction: %v", ErrInvalidPSBT, err)
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return fmt.Errorf("wallet: serialize transaction: %w", err)
	}
	res.Tx, res.RawTx = tx, buf.Bytes()
	return nil
}

// verifyFinalInputs runs btcd's script engine on each finalized input of
// this key, with the final scriptSig and witness from the PSBT.
func verifyFinalInputs(p *psbt.Packet, inputs []PSBTInput) error {
	tx := p.UnsignedTx.Copy()
	fetcher := prevOutFetcher{}
	for _, pi := range inputs {
		fetcher[tx.TxIn[pi.Index].PreviousOutPoint] = pi.PrevOut
	}
	for _, pi := range inputs {
		in := p.Inputs[pi.Index]
		tx.TxIn[pi.Index].SignatureScript = in.FinalScriptSig
		wit, err := parseWitness(in.FinalScriptWitness)
		if err != nil {
			return fmt.Errorf("%w: input %d final witness: %v", ErrScriptCheck, pi.Index, err)
		}
		tx.TxIn[pi.Index].Witness = wit
	}
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	for _, pi := range inputs {
		vm, err := txscript.NewEngine(pi.PrevOut.PkScript, tx, pi.Index, txscript.StandardVerifyFlags, nil, sigHashes, pi.PrevOut.Value, fetcher)
		if err != nil {
			return fmt.Errorf("%w: input %d: %v", ErrScriptCheck, pi.Index, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("%w: input %d: %v", ErrScriptCheck, pi.Index, err)
		}
	}
	return nil
}

// parseWitness decodes a PSBT final script witness: a count followed by
// length-prefixed stack items (BIP-174 PSBT_IN_FINAL_SCRIPTWITNESS).
func parseWitness(b []byte) (wire.TxWitness, error) {
	if b == nil {
		return nil, nil
	}
	r := bytes.NewReader(b)
	n, err := wire.ReadVarInt(r, 0)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("witness claims %d items in %d bytes", n, len(b))
	}
	wit := make(wire.TxWitness, n)
	for j := range wit {
		if wit[j], err = wire.ReadVarBytes(r, 0, txscript.MaxScriptSize, "witness item"); err != nil {
			return nil, err
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes after witness", r.Len())
	}
	return wit, nil
}
