package wallet_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

func (k *frostKey) xOnly(t testing.TB) []byte {
	t.Helper()
	x, err := k.InternalKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// schnorrOverride reports the internal key of pub but signs with sig.
type schnorrOverride struct {
	pub wallet.TaprootKeySource
	sig wallet.SchnorrSigner
}

func (o schnorrOverride) InternalKey(ctx context.Context) ([]byte, error) {
	return o.pub.InternalKey(ctx)
}

func (o schnorrOverride) SignSchnorr(ctx context.Context, msg [32]byte, tw *wallet.TaprootTweak) ([]byte, error) {
	return o.sig.SignSchnorr(ctx, msg, tw)
}

// schnorrFunc is a SchnorrSigner made of a key and a function.
type schnorrFunc struct {
	wallet.TaprootKeySource
	sign func([32]byte, *wallet.TaprootTweak) ([]byte, error)
}

func (f schnorrFunc) SignSchnorr(_ context.Context, msg [32]byte, tw *wallet.TaprootTweak) ([]byte, error) {
	return f.sign(msg, tw)
}

// singleSchnorrKey signs with one private key, tweaked as BIP-341 says,
// with the all-zero auxiliary randomness of the BIP-341 test vectors.
type singleSchnorrKey struct{ priv *btcec.PrivateKey }

func (s singleSchnorrKey) InternalKey(context.Context) ([]byte, error) {
	return schnorr.SerializePubKey(s.priv.PubKey()), nil
}

func (s singleSchnorrKey) SignSchnorr(_ context.Context, msg [32]byte, tw *wallet.TaprootTweak) ([]byte, error) {
	priv := s.priv
	if tw != nil {
		priv = txscript.TweakTaprootPrivKey(*s.priv, tw.MerkleRoot)
	}
	sig, err := schnorr.Sign(priv, msg[:], schnorr.CustomNonce([32]byte{}))
	if err != nil {
		return nil, err
	}
	return sig.Serialize(), nil
}

var testMerkleRoot = chainhash.HashB([]byte("keyquorum test script tree"))

func taprootScript(t testing.TB, internal, root []byte) []byte {
	t.Helper()
	a, err := wallet.TaprootAddress(internal, root, regtest)
	if err != nil {
		t.Fatal(err)
	}
	return payTo(t, a)
}

// taprootPSBT is a regtest PSBT that spends:
//
//	input 0: P2TR key-path-only output of the FROST key (internal key and
//	         taproot BIP-32 derivation fields)
//	input 1: P2TR output of the FROST key with a script tree (internal key
//	         and merkle root fields)
//	input 2: P2WPKH of the ECDSA key at m/0/0 (BIP-32 derivation field)
//	input 3: P2WPKH of another party
//
// output 0 pays 1.5 BTC to a foreign address, output 1 returns 0.29 BTC to
// the FROST key's P2TR address. Fee: 0.01 BTC.
type taprootPSBT struct {
	packet  *psbt.Packet
	funding *wire.MsgTx
	foreign *localKey
	opts    wallet.PSBTOptions
}

func newTaprootPSBT(t testing.TB, fk *frostKey, ecdsaKey wallet.KeySource) *taprootPSBT {
	t.Helper()
	ctx := context.Background()
	x := fk.xOnly(t)
	foreign := newLocalKey(t, "", nil)

	funding := wire.NewMsgTx(2)
	funding.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("taproot coinbase")), Index: 0}, []byte{0x51}, nil))
	funding.AddTxOut(wire.NewTxOut(100_000_000, taprootScript(t, x, nil)))
	funding.AddTxOut(wire.NewTxOut(50_000_000, taprootScript(t, x, testMerkleRoot)))
	funding.AddTxOut(wire.NewTxOut(20_000_000, payTo(t, address(t, ecdsaKey, "m/0/0", wallet.P2WPKH))))
	funding.AddTxOut(wire.NewTxOut(10_000_000, payTo(t, address(t, foreign, "m", wallet.P2WPKH))))
	id := funding.TxHash()

	tx := wire.NewMsgTx(2)
	for i := uint32(0); i < 4; i++ {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: id, Index: i}, nil, nil))
	}
	tx.AddTxOut(wire.NewTxOut(150_000_000, payTo(t, address(t, foreign, "m/9", wallet.P2WPKH))))
	tx.AddTxOut(wire.NewTxOut(29_000_000, taprootScript(t, x, nil)))

	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Inputs {
		p.Inputs[i].WitnessUtxo = funding.TxOut[i]
	}
	p.Inputs[0].TaprootInternalKey = x
	p.Inputs[0].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: x, MasterKeyFingerprint: 0x01020304}}
	p.Inputs[1].TaprootInternalKey = x
	p.Inputs[1].TaprootMerkleRoot = testMerkleRoot
	root, _ := ecdsaKey.PublicKey(ctx, hd.Path{})
	pub00, _ := ecdsaKey.PublicKey(ctx, mustPath(t, "m/0/0"))
	p.Inputs[2].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub00.SerializeCompressed(), MasterKeyFingerprint: wallet.PSBTFingerprint(root), Bip32Path: []uint32{0, 0}}}
	p.Outputs[1].TaprootInternalKey = x
	return &taprootPSBT{packet: p, funding: funding, foreign: foreign, opts: wallet.PSBTOptions{Net: regtest}}
}

// signForeignInput lets the other party sign input 3 with btcd.
func (m *taprootPSBT) signForeignInput(t testing.TB, p *psbt.Packet) {
	t.Helper()
	prev := m.funding.TxOut[3]
	sigHashes := txscript.NewTxSigHashes(p.UnsignedTx, multiFetcher(m.funding))
	sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, sigHashes, 3, prev.Value, prev.PkScript, txscript.SigHashAll, m.foreign.priv)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := psbt.NewUpdater(p)
	if _, err := u.Sign(3, sig, m.foreign.priv.PubKey().SerializeCompressed(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := psbt.Finalize(p, 3); err != nil {
		t.Fatal(err)
	}
}

// checkTaprootPSBTSigned signs the taproot PSBT with the FROST key and the
// ECDSA key, in the given order, lets the other party sign, and has btcd's
// script engine execute every input of the extracted transaction.
func checkTaprootPSBTSigned(t *testing.T, fk *frostKey, ek wallet.Signer, taprootFirst bool) {
	ctx := context.Background()
	m := newTaprootPSBT(t, fk, ek)
	before := serializePSBT(t, m.packet)

	signTaproot := func(p *psbt.Packet) *psbt.Packet {
		ecdsaInput := p.Inputs[2]
		res, err := wallet.SignTaprootPSBT(ctx, fk, p, m.opts)
		if err != nil {
			t.Fatalf("SignTaprootPSBT: %v", err)
		}
		if len(res.Plan.Inputs) != 2 || res.Plan.Inputs[0].Index != 0 || res.Plan.Inputs[1].Index != 1 {
			t.Fatalf("taproot pass signed %+v, want inputs 0 and 1", res.Plan.Inputs)
		}
		for n, pi := range res.Plan.Inputs {
			if pi.Type != wallet.P2TR || len(res.SchnorrSignatures[n]) != 64 {
				t.Fatalf("input %d: type %s, signature of %d bytes", pi.Index, pi.Type, len(res.SchnorrSignatures[n]))
			}
		}
		if !bytes.Equal(res.Plan.Inputs[1].MerkleRoot, testMerkleRoot) || res.Plan.Inputs[0].MerkleRoot != nil {
			t.Fatal("merkle roots not taken from the PSBT")
		}
		bs := res.Plan.Summary.Bitcoin
		if bs.Fee == nil || *bs.Fee != 1_000_000 || bs.Sent != 150_000_000 || !bs.Outputs[1].Change || bs.Outputs[0].Change {
			t.Fatalf("summary: fee %v sent %v outputs %+v", bs.Fee, bs.Sent, bs.Outputs)
		}
		if !bs.Inputs[0].Ours || !bs.Inputs[1].Ours || bs.Inputs[2].Ours || bs.Inputs[3].Ours || bs.Inputs[0].Sighash != "DEFAULT" {
			t.Fatalf("summary inputs: %+v", bs.Inputs)
		}
		for _, d := range res.Plan.Summary.Digests {
			if d.Scheme != wallet.SchemeBIP340 || len(d.PublicKey) != 32 || !bytes.Equal(d.InternalKey, fk.xOnly(t)) {
				t.Fatalf("summary digest %+v", d)
			}
		}
		if in := res.Packet.Inputs[2]; !bytes.Equal(in.FinalScriptWitness, ecdsaInput.FinalScriptWitness) || len(in.PartialSigs) != len(ecdsaInput.PartialSigs) {
			t.Fatal("the taproot pass touched the ECDSA input")
		}
		return res.Packet
	}
	signECDSA := func(p *psbt.Packet) *psbt.Packet {
		res, err := wallet.SignPSBT(ctx, ek, p, m.opts)
		if err != nil {
			t.Fatalf("SignPSBT: %v", err)
		}
		if len(res.Plan.Inputs) != 1 || res.Plan.Inputs[0].Index != 2 {
			t.Fatalf("ECDSA pass signed %+v, want input 2", res.Plan.Inputs)
		}
		return res.Packet
	}

	p := m.packet
	if taprootFirst {
		p = signECDSA(signTaproot(p))
	} else {
		p = signTaproot(signECDSA(p))
	}
	if !bytes.Equal(before, serializePSBT(t, m.packet)) {
		t.Fatal("signing modified the caller's PSBT")
	}
	if in := p.Inputs[3]; in.FinalScriptWitness != nil || len(in.PartialSigs) != 0 {
		t.Fatal("the other party's input was touched")
	}
	m.signForeignInput(t, p)
	tx, err := psbt.Extract(p)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	verifyWithBtcd(t, tx, m.funding)
}

func TestSignTaprootPSBT_FROST2of3AndECDSAInputsVerifyWithBtcd(t *testing.T) {
	fk := newFROSTKey(t)
	ek := newLocalKey(t, "", nil)
	t.Run("taproot pass first", func(t *testing.T) { checkTaprootPSBTSigned(t, fk, ek, true) })
	t.Run("ECDSA pass first", func(t *testing.T) { checkTaprootPSBTSigned(t, fk, ek, false) })
}

// TestSignTaprootPSBT_FROSTKeyFromDKG signs with a key from the distributed
// key generation, which BIP-341 key-path spending always tweaks (so no
// participant can have hidden a script path in the key).
func TestSignTaprootPSBT_FROSTKeyFromDKG(t *testing.T) {
	checkTaprootPSBTSigned(t, dkgFROSTKey(t), newLocalKey(t, "", nil), true)
}

func TestThreshold2of3_SignMixedTaprootPSBT(t *testing.T) {
	checkTaprootPSBTSigned(t, newFROSTKey(t), sharedThresholdKey(t), true)
}

// allOursTaprootPSBT spends only outputs of the FROST key: input 0 to 2
// key-path-only, input 1 with a script tree; two outputs.
func allOursTaprootPSBT(t testing.TB, fk *frostKey) (*psbt.Packet, *wire.MsgTx) {
	t.Helper()
	x := fk.xOnly(t)
	funding := wire.NewMsgTx(2)
	funding.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("funding")), Index: 1}, []byte{0x51}, nil))
	funding.AddTxOut(wire.NewTxOut(40_000_000, taprootScript(t, x, nil)))
	funding.AddTxOut(wire.NewTxOut(30_000_000, taprootScript(t, x, testMerkleRoot)))
	funding.AddTxOut(wire.NewTxOut(20_000_000, taprootScript(t, x, nil)))
	id := funding.TxHash()
	tx := wire.NewMsgTx(2)
	for i := uint32(0); i < 3; i++ {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: id, Index: i}, nil, nil))
	}
	tx.AddTxOut(wire.NewTxOut(60_000_000, payTo(t, address(t, newLocalKey(t, "", nil), "m", wallet.P2WPKH))))
	tx.AddTxOut(wire.NewTxOut(29_900_000, taprootScript(t, x, nil)))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Inputs {
		p.Inputs[i].WitnessUtxo = funding.TxOut[i]
	}
	p.Inputs[1].TaprootInternalKey = x
	p.Inputs[1].TaprootMerkleRoot = testMerkleRoot
	return p, funding
}

func TestSignTaprootPSBT_SighashTypes(t *testing.T) {
	ctx := context.Background()
	fk := newFROSTKey(t)
	acp := txscript.SigHashAnyOneCanPay
	all := []txscript.SigHashType{
		txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle,
		txscript.SigHashAll | acp, txscript.SigHashNone | acp, txscript.SigHashSingle | acp,
	}
	for _, ht := range all {
		t.Run(fmt.Sprintf("0x%02x", uint32(ht)), func(t *testing.T) {
			p, funding := allOursTaprootPSBT(t, fk)
			p.Inputs[0].SighashType = ht
			p.Inputs[1].SighashType = ht
			opts := wallet.PSBTOptions{Net: regtest, SighashTypes: []txscript.SigHashType{ht}}
			res, err := wallet.SignTaprootPSBT(ctx, fk, p, opts)
			if err != nil {
				t.Fatalf("SignTaprootPSBT: %v", err)
			}
			if !res.Complete || res.Tx == nil {
				t.Fatal("every input is ours; the transaction must be complete")
			}
			for i := 0; i < 2; i++ {
				w := res.Tx.TxIn[i].Witness
				if len(w) != 1 || len(w[0]) != 65 || w[0][64] != byte(ht) {
					t.Fatalf("input %d witness %x is not one signature ending in the sighash type", i, w)
				}
			}
			if len(res.Tx.TxIn[2].Witness[0]) != 64 {
				t.Fatal("input 2 without a sighash field must have a 64-byte SIGHASH_DEFAULT signature")
			}
			if ht&^acp != txscript.SigHashAll && len(res.Plan.Summary.Warnings) == 0 {
				t.Fatal("summary does not warn about a partial sighash")
			}
			verifyWithBtcd(t, res.Tx, funding)
		})
	}

	refusals := map[string]struct {
		input   int
		ht      txscript.SigHashType
		allowed []txscript.SigHashType
	}{
		"not allowed by the caller":      {0, txscript.SigHashNone, nil},
		"invalid type 0x04":              {0, 0x04, []txscript.SigHashType{0x04}},
		"invalid type 0x80":              {0, 0x80, []txscript.SigHashType{0x80}},
		"SINGLE without matching output": {2, txscript.SigHashSingle, []txscript.SigHashType{txscript.SigHashSingle}},
	}
	for name, tc := range refusals {
		t.Run(name, func(t *testing.T) {
			p, _ := allOursTaprootPSBT(t, fk)
			p.Inputs[tc.input].SighashType = tc.ht
			_, err := wallet.SignTaprootPSBT(ctx, fk, p, wallet.PSBTOptions{Net: regtest, SighashTypes: tc.allowed})
			if !errors.Is(err, wallet.ErrSighashType) {
				t.Fatalf("err = %v, want ErrSighashType", err)
			}
		})
	}
}

func TestSignTaprootPSBT_Refusals(t *testing.T) {
	ctx := context.Background()
	fk := newFROSTKey(t)
	other := newFROSTKey(t)
	x := fk.xOnly(t)
	tests := map[string]struct {
		mutate func(p *psbt.Packet)
		signer wallet.SchnorrSigner
		want   error
	}{
		"prevout of another input missing": {
			mutate: func(p *psbt.Packet) { p.Inputs[2].WitnessUtxo = nil; p.Inputs[2].TaprootInternalKey = nil },
			want:   wallet.ErrMissingUTXO,
		},
		"prevout of our input missing": {
			mutate: func(p *psbt.Packet) { p.Inputs[1].WitnessUtxo = nil },
			want:   wallet.ErrMissingUTXO,
		},
		"script path: leaf script": {
			mutate: func(p *psbt.Packet) {
				p.Inputs[1].TaprootLeafScript = []*psbt.TaprootTapLeafScript{{ControlBlock: append([]byte{0xc0}, x...), Script: []byte{txscript.OP_TRUE}, LeafVersion: txscript.BaseLeafVersion}}
			},
			want: wallet.ErrTaprootScriptPath,
		},
		"script path: derivation for a leaf": {
			mutate: func(p *psbt.Packet) {
				p.Inputs[1].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: x, LeafHashes: [][]byte{testMerkleRoot}}}
			},
			want: wallet.ErrTaprootScriptPath,
		},
		"script path: key named only in a leaf of another internal key": {
			mutate: func(p *psbt.Packet) {
				p.Inputs[1].TaprootInternalKey = other.xOnly(t)
				p.Inputs[1].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: x}}
			},
			want: wallet.ErrTaprootScriptPath,
		},
		"internal key ours, output key another's": {
			mutate: func(p *psbt.Packet) {
				p.Inputs[1].WitnessUtxo = wire.NewTxOut(30_000_000, taprootScript(t, other.xOnly(t), testMerkleRoot))
			},
			want: wallet.ErrSignerKey,
		},
		"our output with another internal key": {
			mutate: func(p *psbt.Packet) { p.Inputs[2].TaprootInternalKey = other.xOnly(t) },
			want:   wallet.ErrSignerKey,
		},
		"merkle root that the output does not commit to": {
			mutate: func(p *psbt.Packet) { p.Inputs[1].TaprootMerkleRoot = chainhash.HashB([]byte("another tree")) },
			want:   wallet.ErrSignerKey,
		},
		"merkle root of 31 bytes": {
			mutate: func(p *psbt.Packet) { p.Inputs[1].TaprootMerkleRoot = testMerkleRoot[:31] },
			want:   wallet.ErrInvalidPSBT,
		},
		"internal key ours on a P2WPKH output": {
			mutate: func(p *psbt.Packet) {
				p.Inputs[1].WitnessUtxo = wire.NewTxOut(30_000_000, payTo(t, address(t, newLocalKey(t, "", nil), "m", wallet.P2WPKH)))
			},
			want: wallet.ErrUnsupportedScript,
		},
		"already has a key-spend signature": {
			mutate: func(p *psbt.Packet) { p.Inputs[0].TaprootKeySpendSig = make([]byte, 64) },
			want:   wallet.ErrAlreadySigned,
		},
		"already finalized": {
			mutate: func(p *psbt.Packet) { p.Inputs[0].FinalScriptWitness = []byte{0x01, 0x40} },
			want:   wallet.ErrAlreadySigned,
		},
		"non-witness UTXO of another transaction": {
			mutate: func(p *psbt.Packet) { p.Inputs[2].NonWitnessUtxo = wire.NewMsgTx(2) },
			want:   wallet.ErrUTXOMismatch,
		},
		"no input of this key": {
			signer: other,
			want:   wallet.ErrNothingToSign,
		},
		"signer signs with another key": {
			signer: schnorrOverride{pub: fk, sig: other},
			want:   wallet.ErrInvalidSignature,
		},
		"signer ignores the tweak": {
			signer: schnorrFunc{TaprootKeySource: fk, sign: func(m [32]byte, _ *wallet.TaprootTweak) ([]byte, error) {
				return fk.SignSchnorr(ctx, m, nil)
			}},
			want: wallet.ErrInvalidSignature,
		},
		"signer returns 63 bytes": {
			signer: schnorrFunc{TaprootKeySource: fk, sign: func([32]byte, *wallet.TaprootTweak) ([]byte, error) { return make([]byte, 63), nil }},
			want:   wallet.ErrInvalidSignature,
		},
		"signer fails": {
			signer: schnorrFunc{TaprootKeySource: fk, sign: func([32]byte, *wallet.TaprootTweak) ([]byte, error) { return nil, errSignerDown }},
			want:   errSignerDown,
		},
		"key source returns no key": {
			signer: schnorrFunc{TaprootKeySource: wallet.XOnlyKey{}, sign: fk.SignSchnorr2},
			want:   wallet.ErrSignerKey,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, _ := allOursTaprootPSBT(t, fk)
			if tc.mutate != nil {
				tc.mutate(p)
			}
			s := tc.signer
			if s == nil {
				s = fk
			}
			before := serializePSBT(t, p)
			res, err := wallet.SignTaprootPSBT(ctx, s, p, wallet.PSBTOptions{Net: regtest})
			t.Log(err)
			if !errors.Is(err, tc.want) || res != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !bytes.Equal(before, serializePSBT(t, p)) {
				t.Fatal("the caller's PSBT was modified")
			}
		})
	}
}

// SignSchnorr2 adapts SignSchnorr to schnorrFunc.
func (k *frostKey) SignSchnorr2(msg [32]byte, tw *wallet.TaprootTweak) ([]byte, error) {
	return k.SignSchnorr(context.Background(), msg, tw)
}

func TestSignPSBT_ECDSAKeyLeavesTaprootInputsOfSchnorrKeyAlone(t *testing.T) {
	fk := newFROSTKey(t)
	p, _ := allOursTaprootPSBT(t, fk)
	_, err := wallet.SignPSBT(context.Background(), newLocalKey(t, "", nil), p, wallet.PSBTOptions{Net: regtest})
	if !errors.Is(err, wallet.ErrNothingToSign) {
		t.Fatalf("err = %v, want ErrNothingToSign", err)
	}
}

func TestTaprootAddress_Networks(t *testing.T) {
	x := newFROSTKey(t).xOnly(t)
	q, err := wallet.TaprootOutputKey(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, prefix := range map[string]string{"mainnet": "bc1p", "testnet": "tb1p", "signet": "tb1p", "regtest": "bcrt1p"} {
		net, err := wallet.Network(name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := wallet.TaprootAddress(x, nil, net)
		if err != nil {
			t.Fatal(err)
		}
		s := a.EncodeAddress()
		if !strings.HasPrefix(s, prefix) {
			t.Fatalf("%s address %s, want prefix %s", name, s, prefix)
		}
		dec, err := btcutil.DecodeAddress(s, net)
		if err != nil {
			t.Fatalf("btcutil decodes %s: %v", s, err)
		}
		tr, ok := dec.(*btcutil.AddressTaproot)
		if !ok || !bytes.Equal(tr.WitnessProgram(), q) || tr.WitnessVersion() != 1 {
			t.Fatalf("%s decodes to %T %x", s, dec, dec.ScriptAddress())
		}
	}
	bad := map[string]struct {
		key, root []byte
		net       *chaincfg.Params
		want      error
	}{
		"33-byte key":        {append([]byte{2}, x...), nil, regtest, wallet.ErrTaprootKey},
		"x not on the curve": {bytes.Repeat([]byte{0xff}, 32), nil, regtest, wallet.ErrTaprootKey},
		"31-byte root":       {x, testMerkleRoot[:31], regtest, wallet.ErrTaprootKey},
		"no network":         {x, nil, nil, wallet.ErrAddressType},
	}
	for name, tc := range bad {
		if _, err := wallet.TaprootAddress(tc.key, tc.root, tc.net); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

// bip341Vectors is the part of bip-0341/wallet-test-vectors.json this
// package checks (see testdata/bip341/README.md).
type bip341Vectors struct {
	ScriptPubKey []struct {
		Given struct {
			InternalPubkey string `json:"internalPubkey"`
		} `json:"given"`
		Intermediary struct {
			MerkleRoot    *string `json:"merkleRoot"`
			TweakedPubkey string  `json:"tweakedPubkey"`
		} `json:"intermediary"`
		Expected struct {
			ScriptPubKey  string `json:"scriptPubKey"`
			Bip350Address string `json:"bip350Address"`
		} `json:"expected"`
	} `json:"scriptPubKey"`
	KeyPathSpending []struct {
		Given struct {
			RawUnsignedTx string `json:"rawUnsignedTx"`
			UtxosSpent    []struct {
				ScriptPubKey string `json:"scriptPubKey"`
				AmountSats   int64  `json:"amountSats"`
			} `json:"utxosSpent"`
		} `json:"given"`
		InputSpending []struct {
			Given struct {
				TxinIndex       int     `json:"txinIndex"`
				InternalPrivkey string  `json:"internalPrivkey"`
				MerkleRoot      *string `json:"merkleRoot"`
				HashType        uint32  `json:"hashType"`
			} `json:"given"`
			Intermediary struct {
				InternalPubkey string `json:"internalPubkey"`
				SigHash        string `json:"sigHash"`
			} `json:"intermediary"`
			Expected struct {
				Witness []string `json:"witness"`
			} `json:"expected"`
		} `json:"inputSpending"`
	} `json:"keyPathSpending"`
}

func readBIP341Vectors(t testing.TB) bip341Vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "bip341", "wallet-test-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v bip341Vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func optHex(t testing.TB, s *string) []byte {
	if s == nil {
		return nil
	}
	return mustHex(t, *s)
}

func TestTaprootAddress_BIP341Vectors(t *testing.T) {
	v := readBIP341Vectors(t)
	if len(v.ScriptPubKey) != 7 {
		t.Fatalf("%d scriptPubKey vectors, want 7", len(v.ScriptPubKey))
	}
	for i, tc := range v.ScriptPubKey {
		internal := mustHex(t, tc.Given.InternalPubkey)
		root := optHex(t, tc.Intermediary.MerkleRoot)
		q, err := wallet.TaprootOutputKey(internal, root)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if hex.EncodeToString(q) != tc.Intermediary.TweakedPubkey {
			t.Errorf("vector %d: output key %x, want %s", i, q, tc.Intermediary.TweakedPubkey)
		}
		a, err := wallet.TaprootAddress(internal, root, &chaincfg.MainNetParams)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if a.EncodeAddress() != tc.Expected.Bip350Address {
			t.Errorf("vector %d: address %s, want %s", i, a.EncodeAddress(), tc.Expected.Bip350Address)
		}
		if hex.EncodeToString(payTo(t, a)) != tc.Expected.ScriptPubKey {
			t.Errorf("vector %d: script %x, want %s", i, payTo(t, a), tc.Expected.ScriptPubKey)
		}
	}
}

// TestSignTaprootPSBT_BIP341Vectors puts each key-path input of the BIP-341
// wallet vectors in a PSBT, plans it (the sighash must match), and signs it
// with the vector's key and BIP-341's zero auxiliary randomness (the
// witness must match) through SignTaprootPSBT, which runs btcd's engine.
func TestSignTaprootPSBT_BIP341Vectors(t *testing.T) {
	ctx := context.Background()
	v := readBIP341Vectors(t)
	n := 0
	for _, kp := range v.KeyPathSpending {
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(mustHex(t, kp.Given.RawUnsignedTx))); err != nil {
			t.Fatal(err)
		}
		for _, in := range kp.InputSpending {
			g := in.Given
			t.Run(fmt.Sprintf("input %d hash type 0x%02x", g.TxinIndex, g.HashType), func(t *testing.T) {
				p, err := psbt.NewFromUnsignedTx(tx.Copy())
				if err != nil {
					t.Fatal(err)
				}
				for i, u := range kp.Given.UtxosSpent {
					p.Inputs[i].WitnessUtxo = wire.NewTxOut(u.AmountSats, mustHex(t, u.ScriptPubKey))
				}
				internal := mustHex(t, in.Intermediary.InternalPubkey)
				pi := &p.Inputs[g.TxinIndex]
				pi.TaprootInternalKey = internal
				pi.TaprootMerkleRoot = optHex(t, g.MerkleRoot)
				pi.SighashType = txscript.SigHashType(g.HashType)
				opts := wallet.PSBTOptions{Net: &chaincfg.MainNetParams, SighashTypes: []txscript.SigHashType{
					txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle, 0x81, 0x82, 0x83,
				}}

				plan, err := wallet.PlanTaprootPSBT(ctx, wallet.XOnlyKey(internal), p, opts)
				if err != nil {
					t.Fatalf("PlanTaprootPSBT: %v", err)
				}
				if len(plan.Inputs) != 1 || plan.Inputs[0].Index != g.TxinIndex {
					t.Fatalf("planned %+v, want input %d", plan.Inputs, g.TxinIndex)
				}
				if got := hex.EncodeToString(plan.Inputs[0].Digest[:]); got != in.Intermediary.SigHash {
					t.Fatalf("sighash %s, BIP-341 says %s", got, in.Intermediary.SigHash)
				}

				priv, _ := btcec.PrivKeyFromBytes(mustHex(t, g.InternalPrivkey))
				res, err := wallet.SignTaprootPSBT(ctx, singleSchnorrKey{priv}, p, opts)
				if err != nil {
					t.Fatalf("SignTaprootPSBT: %v", err)
				}
				// The final witness is one item: the signature, with the
				// sighash type byte unless it is SIGHASH_DEFAULT.
				w := mustHex(t, in.Expected.Witness[0])
				want := append([]byte{1, byte(len(w))}, w...)
				if got := res.Packet.Inputs[g.TxinIndex].FinalScriptWitness; !bytes.Equal(got, want) {
					t.Fatalf("final witness %x, BIP-341 says %x", got, want)
				}
				if !bytes.Equal(res.SchnorrSignatures[0], w[:64]) {
					t.Fatalf("signature %x, BIP-341 says %x", res.SchnorrSignatures[0], w[:64])
				}
			})
			n++
		}
	}
	if n != 7 {
		t.Fatalf("%d key-path vectors, want 7", n)
	}
}

// FuzzPlanTaprootPSBT feeds arbitrary PSBTs to the Taproot planner, which
// must return a plan or an error wrapping one of the package's sentinels,
// and never panic.
func FuzzPlanTaprootPSBT(f *testing.F) {
	fk := newFROSTKey(f)
	p, _ := allOursTaprootPSBT(f, fk)
	f.Add(serializePSBT(f, p))
	p.Inputs[1].TaprootMerkleRoot = p.Inputs[1].TaprootMerkleRoot[:5]
	f.Add(serializePSBT(f, p))
	key := wallet.XOnlyKey(fk.xOnly(f))
	sentinels := []error{
		wallet.ErrInvalidPSBT, wallet.ErrMissingUTXO, wallet.ErrUTXOMismatch, wallet.ErrSighashType,
		wallet.ErrTaprootScriptPath, wallet.ErrSignerKey, wallet.ErrAlreadySigned, wallet.ErrUnsupportedScript,
		wallet.ErrTaprootKey,
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := wallet.ParsePSBT(raw)
		if err != nil {
			return
		}
		opts := wallet.PSBTOptions{Net: regtest, SighashTypes: []txscript.SigHashType{txscript.SigHashAll, txscript.SigHashSingle | txscript.SigHashAnyOneCanPay}}
		if _, err := wallet.PlanTaprootPSBT(context.Background(), key, p, opts); err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	})
}

// TestPlanTaprootPSBT_HostileFieldsFromTheWire parses PSBTs whose BIP-371
// fields are malformed and checks that parsing or planning refuses them
// with ErrInvalidPSBT.
func TestPlanTaprootPSBT_HostileFieldsFromTheWire(t *testing.T) {
	ctx := context.Background()
	fk := newFROSTKey(t)
	tests := map[string]func(p *psbt.Packet){
		"5-byte merkle root":              func(p *psbt.Packet) { p.Inputs[1].TaprootMerkleRoot = testMerkleRoot[:5] },
		"33-byte internal key":            func(p *psbt.Packet) { p.Inputs[1].TaprootInternalKey = append([]byte{2}, fk.xOnly(t)...) },
		"internal key not on the curve":   func(p *psbt.Packet) { p.Inputs[1].TaprootInternalKey = bytes.Repeat([]byte{0xff}, 32) },
		"key-spend signature of 10 bytes": func(p *psbt.Packet) { p.Inputs[0].TaprootKeySpendSig = make([]byte, 10) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			p, _ := allOursTaprootPSBT(t, fk)
			mutate(p)
			var buf bytes.Buffer
			if err := p.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			parsed, err := wallet.ParsePSBT(buf.Bytes())
			if err == nil {
				_, err = wallet.PlanTaprootPSBT(ctx, fk, parsed, wallet.PSBTOptions{Net: regtest})
			}
			t.Log(err)
			if !errors.Is(err, wallet.ErrInvalidPSBT) {
				t.Fatalf("err = %v, want ErrInvalidPSBT", err)
			}
		})
	}
}

func TestPlanTaprootPSBT_SummaryJSON(t *testing.T) {
	fk := newFROSTKey(t)
	p, _ := allOursTaprootPSBT(t, fk)
	plan, err := wallet.PlanTaprootPSBT(context.Background(), fk, p, wallet.PSBTOptions{Net: regtest})
	if err != nil {
		t.Fatal(err)
	}
	js, err := plan.Summary.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Kind    string `json:"kind"`
		Bitcoin struct {
			Inputs []struct {
				Ours    bool   `json:"ours"`
				Type    string `json:"type"`
				Sighash string `json:"sighash"`
			} `json:"inputs"`
			Sent int64 `json:"sentSat"`
		} `json:"bitcoin"`
		Digests []struct {
			Scheme      string `json:"scheme"`
			PublicKey   string `json:"publicKey"`
			InternalKey string `json:"internalKey"`
			MerkleRoot  string `json:"merkleRoot"`
		} `json:"digests"`
	}
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != wallet.KindBitcoinPSBT || len(got.Bitcoin.Inputs) != 3 || len(got.Digests) != 3 || got.Bitcoin.Sent != 60_000_000 {
		t.Fatalf("summary JSON %s", js)
	}
	for i, in := range got.Bitcoin.Inputs {
		if !in.Ours || in.Type != "p2tr" || in.Sighash != "DEFAULT" {
			t.Fatalf("input %d in JSON: %+v", i, in)
		}
	}
	x := hex.EncodeToString(fk.xOnly(t))
	for i, d := range got.Digests {
		if d.Scheme != "bip340" || len(d.PublicKey) != 64 || d.InternalKey != x || (d.MerkleRoot != "") != (i == 1) {
			t.Fatalf("digest %d in JSON: %+v", i, d)
		}
	}
	if !strings.Contains(string(js), `"feeSat":100000`) {
		t.Fatalf("summary JSON has no fee of 100000 sat: %s", js)
	}
}
