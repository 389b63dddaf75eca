package wallet

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// P2TR is segwit v1 pay-to-taproot (BIP-341) spent by the key path, with a
// bech32m address (BIP-350): bc1p..., tb1p..., bcrt1p.... Its key is a
// 32-byte x-only Schnorr key ([SchnorrSigner]), not an ECDSA key: it is not
// in [AddressTypes] and [BitcoinAddress] does not make it; use
// [TaprootAddress].
const P2TR AddressType = "p2tr"

// TaprootTweak is the BIP-341 key-path tweak of a Taproot output: the
// output key is Q = P + t·G with t = hash_TapTweak(x(P) || MerkleRoot),
// where P is the internal key with even Y.
type TaprootTweak struct {
	// MerkleRoot is the 32-byte root of the output's script tree, or empty
	// for an output without a script path (BIP-86: t = hash_TapTweak(x(P))).
	MerkleRoot []byte
}

// TaprootKeySource gives the x-only internal key of a threshold Schnorr
// key. It needs no secret, so every site can check a PSBT before it signs.
// [XOnlyKey] implements it.
type TaprootKeySource interface {
	// InternalKey returns the 32-byte x-only internal key (BIP-340), before
	// any Taproot tweak.
	InternalKey(ctx context.Context) ([]byte, error)
}

// SchnorrSigner produces BIP-340 Schnorr signatures with a threshold key,
// for example a FROST committee in the BIP-340 mode. It is the only thing
// this package needs from a Schnorr signing engine: the package computes
// every BIP-341 sighash and checks every signature.
//
// SignSchnorr signs the 32-byte message as is (it is never hashed again)
// and returns a 64-byte BIP-340 signature. With a non-nil tweak the
// signature must verify under the Taproot output key of the internal key and
// tweak.MerkleRoot ([TaprootOutputKey]); with nil it must verify under the
// internal key itself. The tweak is public: a FROST coordinator passes it to
// aggregation (frost.Taproot), and no signer needs the whole private key.
// This package always passes a non-nil tweak for key-path spends. A
// signature that does not verify never reaches a transaction
// ([ErrInvalidSignature]).
type SchnorrSigner interface {
	TaprootKeySource
	SignSchnorr(ctx context.Context, msg [32]byte, tweak *TaprootTweak) ([]byte, error)
}

// XOnlyKey is a 32-byte x-only public key. It implements [TaprootKeySource]
// for a key known by its bytes, such as the group key of a FROST committee.
type XOnlyKey [32]byte

// InternalKey returns a copy of the key.
func (k XOnlyKey) InternalKey(context.Context) ([]byte, error) {
	return append([]byte(nil), k[:]...), nil
}

// TaprootOutputKey returns the 32-byte x-only output key of BIP-341 for the
// x-only internal key and the script tree root merkleRoot (32 bytes, or
// empty for a key-path-only output as BIP-86 recommends). A P2TR output
// script is OP_1 followed by this key.
func TaprootOutputKey(internalKey, merkleRoot []byte) ([]byte, error) {
	pub, err := schnorr.ParsePubKey(internalKey)
	if err != nil {
		return nil, fmt.Errorf("%w: internal key %x is not a BIP-340 x-only key: %v", ErrTaprootKey, internalKey, err)
	}
	if len(merkleRoot) != 0 && len(merkleRoot) != 32 {
		return nil, fmt.Errorf("%w: Taproot merkle root has %d bytes, want 32 or none", ErrTaprootKey, len(merkleRoot))
	}
	// BIP-341 taproot_tweak_pubkey fails when the tweak is not below the
	// group order; btcd reduces it silently, so check first.
	var t btcec.ModNScalar
	if t.SetByteSlice(chainhash.TaggedHash(chainhash.TagTapTweak, internalKey, merkleRoot)[:]) {
		return nil, fmt.Errorf("%w: Taproot tweak of internal key %x is not below the group order", ErrTaprootKey, internalKey)
	}
	var q []byte
	if len(merkleRoot) == 0 {
		q = schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub))
	} else {
		q = schnorr.SerializePubKey(txscript.ComputeTaprootOutputKey(pub, merkleRoot))
	}
	return q, nil
}

// TaprootAddress returns the P2TR address (bech32m, BIP-350) on net of the
// x-only internal key with the key-path tweak for merkleRoot (32 bytes, or
// empty for an output without a script path).
func TaprootAddress(internalKey, merkleRoot []byte, net *chaincfg.Params) (*btcutil.AddressTaproot, error) {
	if net == nil {
		return nil, fmt.Errorf("%w: no network parameters", ErrAddressType)
	}
	q, err := TaprootOutputKey(internalKey, merkleRoot)
	if err != nil {
		return nil, err
	}
	addr, err := btcutil.NewAddressTaproot(q, net)
	if err != nil {
		return nil, fmt.Errorf("wallet: p2tr address on %s: %w", net.Name, err)
	}
	return addr, nil
}

// p2trScript returns OP_1 <32-byte output key>.
func p2trScript(outputKey []byte) []byte {
	return append([]byte{txscript.OP_1, txscript.OP_DATA_32}, outputKey...)
}

// taprootKey fetches and checks the internal key of keys.
func taprootKey(ctx context.Context, keys TaprootKeySource) ([]byte, error) {
	k, err := keys.InternalKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("wallet: Taproot internal key: %w", err)
	}
	if _, err := schnorr.ParsePubKey(k); err != nil {
		return nil, fmt.Errorf("%w: key source returned %d bytes that are not an x-only key", ErrSignerKey, len(k))
	}
	return k, nil
}

// allowedTaprootSighash checks the sighash type requested for taproot input
// i. The PSBT field's absence (0) is SIGHASH_DEFAULT, which is always
// allowed; any other type must be one of BIP-341's and listed in allowed.
func allowedTaprootSighash(requested txscript.SigHashType, allowed []txscript.SigHashType, i, nOut int) (txscript.SigHashType, error) {
	t := requested
	switch t {
	case txscript.SigHashDefault:
		return t, nil
	case txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle,
		txscript.SigHashAll | txscript.SigHashAnyOneCanPay,
		txscript.SigHashNone | txscript.SigHashAnyOneCanPay,
		txscript.SigHashSingle | txscript.SigHashAnyOneCanPay:
	default:
		return 0, fmt.Errorf("%w: taproot input %d requests invalid sighash type 0x%x (BIP-341 allows 0x00-0x03 and 0x81-0x83)", ErrSighashType, i, uint32(t))
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == t
	}
	if !ok {
		return 0, fmt.Errorf("%w: taproot input %d requests %s; allow it in PSBTOptions.SighashTypes if intended", ErrSighashType, i, taprootSighashName(t))
	}
	// BIP-341: SIGHASH_SINGLE without an output of the same index is
	// invalid (the legacy "sign 1" behaviour is gone).
	if t&^txscript.SigHashAnyOneCanPay == txscript.SigHashSingle && i >= nOut {
		return 0, fmt.Errorf("%w: taproot input %d requests SIGHASH_SINGLE but there is no output %d", ErrSighashType, i, i)
	}
	return t, nil
}

// taprootSighashName is sighashName with "DEFAULT" for 0.
func taprootSighashName(t txscript.SigHashType) string {
	if t == txscript.SigHashDefault {
		return "DEFAULT"
	}
	return sighashName(t)
}

// namesTaprootKey reports whether input in names the internal key k: as
// its taproot internal key or in a taproot BIP-32 derivation field.
func namesTaprootKey(in *psbt.PInput, k []byte) bool {
	if bytes.Equal(in.TaprootInternalKey, k) {
		return true
	}
	for _, d := range in.TaprootBip32Derivation {
		if d != nil && bytes.Equal(d.XOnlyPubKey, k) {
			return true
		}
	}
	return false
}

// PlanTaprootPSBT finds the Taproot key-path inputs of packet that belong
// to the Schnorr key of keys, computes the BIP-341 sighash each must sign,
// and summarizes the transaction in the same form as [PlanPSBT]. It signs
// nothing and needs no secret.
//
// An input belongs to the key when its PSBT entry names the key's internal
// key (BIP-371 taproot internal key, or a taproot BIP-32 derivation field
// with that x-only key) or when it spends the P2TR output of the internal
// key with no script tree. Such an input must spend a P2TR output
// ([ErrUnsupportedScript]) whose output key is the internal key tweaked with
// the input's taproot merkle root, if any ([ErrSignerKey]); be spent by the
// key path ([ErrTaprootScriptPath] if it carries leaf scripts, script-path
// signatures, or names the key only for a leaf); request SIGHASH_DEFAULT
// (the default when the PSBT has no sighash field) or a type listed in
// opts.SighashTypes ([ErrSighashType]); and not be signed yet
// ([ErrAlreadySigned]). Because BIP-341 sighashes commit to the amounts and
// scripts of every input, every input of the transaction must carry its
// previous output ([ErrMissingUTXO]). opts.Paths is not used: the Schnorr
// key is not derived. Outputs that pay to the key's no-script P2TR output
// are change. Inputs of other keys, including P2WPKH inputs of an ECDSA key,
// are listed in the summary and left alone; sign those with [SignPSBT].
func PlanTaprootPSBT(ctx context.Context, keys TaprootKeySource, packet *psbt.Packet, opts PSBTOptions) (*PSBTPlan, error) {
	if keys == nil {
		return nil, fmt.Errorf("wallet: PlanTaprootPSBT needs a key source")
	}
	if err := checkPacket(packet, opts); err != nil {
		return nil, err
	}
	internal, err := taprootKey(ctx, keys)
	if err != nil {
		return nil, err
	}
	bip86Key, err := TaprootOutputKey(internal, nil)
	if err != nil {
		return nil, err
	}
	bip86Script := p2trScript(bip86Key)
	sp, err := newSpentOutputs(packet, opts.Net)
	if err != nil {
		return nil, err
	}
	tx := packet.UnsignedTx
	summary, bs := sp.summary, sp.bitcoin
	plan := &PSBTPlan{Summary: summary}

	var sigHashes *txscript.TxSigHashes
	for i := range tx.TxIn {
		in := &packet.Inputs[i]
		prev := sp.prev[i]
		if !namesTaprootKey(in, internal) && (prev == nil || !bytes.Equal(prev.PkScript, bip86Script)) {
			continue
		}
		pi, err := planTaprootInput(packet, i, internal, prev, sp, opts)
		if err != nil {
			return nil, err
		}
		if sigHashes == nil {
			sigHashes = txscript.NewTxSigHashes(tx, sp.fetcher)
		}
		digest, err := txscript.CalcTaprootSignatureHash(sigHashes, pi.SighashType, tx, i, sp.fetcher)
		if err != nil {
			return nil, fmt.Errorf("%w: BIP-341 sighash of input %d: %v", ErrSighashType, i, err)
		}
		copy(pi.Digest[:], digest)
		plan.Inputs = append(plan.Inputs, pi)

		name := taprootSighashName(pi.SighashType)
		bi := &bs.Inputs[i]
		bi.Ours, bi.Type, bi.Sighash = true, P2TR, name
		if pi.SighashType != txscript.SigHashDefault && pi.SighashType != txscript.SigHashAll {
			summary.Warnings = append(summary.Warnings, fmt.Sprintf("input %d is signed with SIGHASH_%s: the signature does not commit to the whole transaction", i, name))
		}
		inputIndex := i
		summary.Digests = append(summary.Digests, DigestToSign{
			Input: &inputIndex, Scheme: SchemeBIP340, PublicKey: pi.OutputKey, InternalKey: pi.InternalKey,
			MerkleRoot: pi.MerkleRoot, Digest: pi.Digest[:],
		})
	}

	sp.summarizeOutputs(func(i int, out *wire.TxOut) (hd.Path, bool) {
		if bytes.Equal(out.PkScript, bip86Script) {
			return nil, true
		}
		if bytes.Equal(packet.Outputs[i].TaprootInternalKey, internal) {
			summary.Warnings = append(summary.Warnings, fmt.Sprintf("output %d: taproot internal key is this key's but the script is not its key-path-only P2TR output; not counted as change", i))
		}
		return nil, false
	})
	return plan, nil
}

// planTaprootInput checks taproot input i of this key.
func planTaprootInput(p *psbt.Packet, i int, internal []byte, prev *wire.TxOut, sp *spentOutputs, opts PSBTOptions) (PSBTInput, error) {
	in := &p.Inputs[i]
	if prev == nil {
		return PSBTInput{}, fmt.Errorf("%w: taproot input %d of this key has neither a witness nor a non-witness UTXO", ErrMissingUTXO, i)
	}
	if !txscript.IsPayToTaproot(prev.PkScript) {
		return PSBTInput{}, fmt.Errorf("%w: input %d names this Taproot key but spends script %x, not P2TR", ErrUnsupportedScript, i, prev.PkScript)
	}
	if len(in.TaprootLeafScript) > 0 || len(in.TaprootScriptSpendSig) > 0 {
		return PSBTInput{}, fmt.Errorf("%w: input %d carries taproot leaf scripts or script-path signatures", ErrTaprootScriptPath, i)
	}
	for _, d := range in.TaprootBip32Derivation {
		if d != nil && bytes.Equal(d.XOnlyPubKey, internal) && len(d.LeafHashes) > 0 {
			return PSBTInput{}, fmt.Errorf("%w: input %d names this key for %d script leaves", ErrTaprootScriptPath, i, len(d.LeafHashes))
		}
	}
	if in.TaprootInternalKey != nil && !bytes.Equal(in.TaprootInternalKey, internal) {
		if !namesTaprootKey(in, internal) {
			// Found by this key's output script, but the PSBT claims
			// another internal key: the fields contradict each other.
			return PSBTInput{}, fmt.Errorf("%w: input %d spends this key's key-path-only output but names internal key %x", ErrSignerKey, i, in.TaprootInternalKey)
		}
		// The key appears only in a derivation field: a key in a leaf
		// script, not the internal key.
		return PSBTInput{}, fmt.Errorf("%w: input %d has internal key %x; this key signs only as internal key", ErrTaprootScriptPath, i, in.TaprootInternalKey)
	}
	root := in.TaprootMerkleRoot
	if len(root) != 0 && len(root) != 32 {
		return PSBTInput{}, fmt.Errorf("%w: input %d taproot merkle root has %d bytes, want 32", ErrInvalidPSBT, i, len(root))
	}
	q, err := TaprootOutputKey(internal, root)
	if err != nil {
		return PSBTInput{}, fmt.Errorf("wallet: input %d: %w", i, err)
	}
	if !bytes.Equal(prev.PkScript[2:], q) {
		return PSBTInput{}, fmt.Errorf("%w: input %d spends output key %x, but this key with merkle root %x gives %x", ErrSignerKey, i, prev.PkScript[2:], root, q)
	}
	if in.TaprootKeySpendSig != nil || in.FinalScriptWitness != nil || in.FinalScriptSig != nil {
		return PSBTInput{}, fmt.Errorf("%w: taproot input %d already has a key-path signature or final witness", ErrAlreadySigned, i)
	}
	if opts.RequireFullPrevTx && !sp.full[i] {
		return PSBTInput{}, fmt.Errorf("%w: input %d has only a witness UTXO and RequireFullPrevTx is set", ErrMissingUTXO, i)
	}
	if len(sp.missing) > 0 {
		return PSBTInput{}, fmt.Errorf("%w: BIP-341 sighash of input %d commits to every spent output, but inputs %v carry no UTXO; add their witness UTXOs", ErrMissingUTXO, i, sp.missing)
	}
	hashType, err := allowedTaprootSighash(in.SighashType, opts.SighashTypes, i, len(p.UnsignedTx.TxOut))
	if err != nil {
		return PSBTInput{}, err
	}
	pi := PSBTInput{
		Index: i, Type: P2TR, SighashType: hashType, PrevOut: prev,
		InternalKey: append([]byte(nil), internal...), OutputKey: q,
	}
	if len(root) != 0 {
		pi.MerkleRoot = append([]byte(nil), root...)
	}
	return pi, nil
}

// SignTaprootPSBT signs every Taproot key-path input of packet that belongs
// to the Schnorr key of s, finalizes those inputs and, when the whole
// transaction is then final, extracts the network transaction.
//
// It runs [PlanTaprootPSBT] (see there for which inputs are signed and what
// is refused), asks s for one BIP-340 signature per input with the input's
// [TaprootTweak], and checks each with btcd's schnorr.Verify under the
// input's output key before it enters the PSBT as the BIP-371 taproot
// key-spend signature (64 bytes for SIGHASH_DEFAULT, else 65 with the type
// byte). Finalized inputs are then executed with btcd's script engine under
// txscript.StandardVerifyFlags ([ErrScriptCheck]). The caller's packet is
// not modified; the result holds a signed copy, with the signatures in
// SignedPSBT.SchnorrSignatures.
//
// A PSBT that spends both ECDSA (P2WPKH, P2SH-P2WPKH, P2PKH) and Taproot
// inputs is signed in two passes, in either order: [SignPSBT] with the ECDSA
// [Signer] and SignTaprootPSBT with the SchnorrSigner, each on the other's
// SignedPSBT.Packet. Each pass leaves the other's inputs alone, and the pass
// that finalizes the last input returns the complete transaction.
func SignTaprootPSBT(ctx context.Context, s SchnorrSigner, packet *psbt.Packet, opts PSBTOptions) (*SignedPSBT, error) {
	if s == nil {
		return nil, fmt.Errorf("wallet: SignTaprootPSBT needs a Schnorr signer")
	}
	plan, err := PlanTaprootPSBT(ctx, s, packet, opts)
	if err != nil {
		return nil, err
	}
	if len(plan.Inputs) == 0 {
		return nil, fmt.Errorf("%w: %d inputs checked, none is a P2TR key-path input of this Schnorr key (add its taproot internal key to the PSBT inputs)", ErrNothingToSign, len(packet.Inputs))
	}
	out, err := copyPacket(packet)
	if err != nil {
		return nil, err
	}
	sigs := make([][]byte, len(plan.Inputs))
	for n, pi := range plan.Inputs {
		if sigs[n], err = signSchnorrChecked(ctx, s, pi); err != nil {
			return nil, err
		}
	}
	for n, pi := range plan.Inputs {
		sig := sigs[n]
		if pi.SighashType != txscript.SigHashDefault {
			sig = append(append([]byte(nil), sig...), byte(pi.SighashType))
		}
		out.Inputs[pi.Index].TaprootKeySpendSig = sig
		if err := psbt.Finalize(out, pi.Index); err != nil {
			return nil, fmt.Errorf("%w: finalize taproot input %d: %v", ErrInvalidPSBT, pi.Index, err)
		}
	}
	if err := verifyTaprootInputs(out, plan.Inputs); err != nil {
		return nil, err
	}
	res := &SignedPSBT{Packet: out, Plan: plan, SchnorrSignatures: sigs}
	if err := res.extract(); err != nil {
		return nil, err
	}
	return res, nil
}

// signSchnorrChecked asks s for a signature of input pi's sighash and
// returns it after checking it under pi's output key.
func signSchnorrChecked(ctx context.Context, s SchnorrSigner, pi PSBTInput) ([]byte, error) {
	sig, err := s.SignSchnorr(ctx, pi.Digest, &TaprootTweak{MerkleRoot: append([]byte(nil), pi.MerkleRoot...)})
	if err != nil {
		return nil, fmt.Errorf("wallet: input %d: Schnorr signature of sighash %x: %w", pi.Index, pi.Digest, err)
	}
	if len(sig) != schnorr.SignatureSize {
		return nil, fmt.Errorf("%w: input %d: signer returned %d bytes, want a %d-byte BIP-340 signature", ErrInvalidSignature, pi.Index, len(sig), schnorr.SignatureSize)
	}
	parsed, err := schnorr.ParseSignature(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: input %d: %v", ErrInvalidSignature, pi.Index, err)
	}
	q, err := schnorr.ParsePubKey(pi.OutputKey)
	if err != nil {
		return nil, fmt.Errorf("%w: input %d output key: %v", ErrSignerKey, pi.Index, err)
	}
	if !parsed.Verify(pi.Digest[:], q) {
		return nil, fmt.Errorf("%w: input %d: BIP-340 signature does not verify under output key %x", ErrInvalidSignature, pi.Index, pi.OutputKey)
	}
	return append([]byte(nil), sig...), nil
}

// verifyTaprootInputs runs btcd's script engine on each finalized taproot
// input of this key, with every input's previous output known (BIP-341
// sighashes need them all; PlanTaprootPSBT has checked that they are there).
func verifyTaprootInputs(p *psbt.Packet, inputs []PSBTInput) error {
	tx := p.UnsignedTx.Copy()
	fetcher := prevOutFetcher{}
	for i := range tx.TxIn {
		prev, _, err := prevOutput(p, i)
		if err != nil || prev == nil {
			return fmt.Errorf("%w: input %d: previous output unavailable", ErrScriptCheck, i)
		}
		fetcher[tx.TxIn[i].PreviousOutPoint] = prev
	}
	for _, pi := range inputs {
		wit, err := parseWitness(p.Inputs[pi.Index].FinalScriptWitness)
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
