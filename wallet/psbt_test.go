package wallet_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

var regtest = &chaincfg.RegressionNetParams

// spendingTx is a one-input transaction for script checks.
func spendingTx() *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(1000, []byte{txscript.OP_TRUE}))
	return tx
}

func payTo(t testing.TB, addr btcutil.Address) []byte {
	t.Helper()
	s, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func address(t testing.TB, ks wallet.KeySource, path string, typ wallet.AddressType) btcutil.Address {
	t.Helper()
	pub, err := ks.PublicKey(context.Background(), mustPath(t, path))
	if err != nil {
		t.Fatal(err)
	}
	a, err := wallet.BitcoinAddress(pub, typ, regtest)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mixedPSBT is a regtest PSBT that spends outputs of the threshold key of
// three script types and one output of another party:
//
//	input 0: P2WPKH of m/0/0, found by its BIP-32 derivation field
//	input 1: P2WPKH of the foreign key (not ours)
//	input 2: P2SH-P2WPKH of m/0/1, found by script match
//	input 3: P2PKH of m/0/2, found by script match (full previous tx)
//
// output 0 pays 1.5 BTC to a foreign address, output 1 returns 0.54 BTC to
// the key's m/1/0 (change, with a BIP-32 derivation field). Fee: 0.01 BTC.
type mixedPSBT struct {
	packet  *psbt.Packet
	funding *wire.MsgTx
	foreign *localKey
	opts    wallet.PSBTOptions
}

func newMixedPSBT(t testing.TB, ks wallet.KeySource) *mixedPSBT {
	t.Helper()
	ctx := context.Background()
	foreign := newLocalKey(t, "", nil)

	funding := wire.NewMsgTx(2)
	funding.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.HashH([]byte("coinbase")), Index: 0}, []byte{0x51}, nil))
	funding.AddTxOut(wire.NewTxOut(100_000_000, payTo(t, address(t, ks, "m/0/0", wallet.P2WPKH))))
	funding.AddTxOut(wire.NewTxOut(30_000_000, payTo(t, address(t, foreign, "m", wallet.P2WPKH))))
	funding.AddTxOut(wire.NewTxOut(50_000_000, payTo(t, address(t, ks, "m/0/1", wallet.P2SHP2WPKH))))
	funding.AddTxOut(wire.NewTxOut(25_000_000, payTo(t, address(t, ks, "m/0/2", wallet.P2PKH))))
	fundingID := funding.TxHash()

	tx := wire.NewMsgTx(2)
	for i := uint32(0); i < 4; i++ {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: fundingID, Index: i}, nil, nil))
	}
	tx.AddTxOut(wire.NewTxOut(150_000_000, payTo(t, address(t, foreign, "m/7", wallet.P2WPKH))))
	tx.AddTxOut(wire.NewTxOut(54_000_000, payTo(t, address(t, ks, "m/1/0", wallet.P2WPKH))))
	tx.LockTime = 101

	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if i == 3 {
			if err := u.AddInNonWitnessUtxo(funding, i); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := u.AddInWitnessUtxo(funding.TxOut[i], i); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := ks.PublicKey(ctx, hd.Path{})
	pub00, _ := ks.PublicKey(ctx, mustPath(t, "m/0/0"))
	if err := u.AddInBip32Derivation(wallet.PSBTFingerprint(root), []uint32{0, 0}, pub00.SerializeCompressed(), 0); err != nil {
		t.Fatal(err)
	}
	pub10, _ := ks.PublicKey(ctx, mustPath(t, "m/1/0"))
	if err := u.AddOutBip32Derivation(wallet.PSBTFingerprint(root), []uint32{1, 0}, pub10.SerializeCompressed(), 1); err != nil {
		t.Fatal(err)
	}
	return &mixedPSBT{
		packet: p, funding: funding, foreign: foreign,
		opts: wallet.PSBTOptions{Net: regtest, Paths: []hd.Path{mustPath(t, "m/0/1"), mustPath(t, "m/0/2")}},
	}
}

func serializePSBT(t testing.TB, p *psbt.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signForeignInput lets the other party sign input 1 of the mixed PSBT with
// btcd's own signing code, as another wallet would.
func (m *mixedPSBT) signForeignInput(t testing.TB, p *psbt.Packet) {
	t.Helper()
	prev := m.funding.TxOut[1]
	sigHashes := txscript.NewTxSigHashes(p.UnsignedTx, multiFetcher(m.funding))
	sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, sigHashes, 1, prev.Value, prev.PkScript, txscript.SigHashAll, m.foreign.priv)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := psbt.NewUpdater(p)
	if _, err := u.Sign(1, sig, m.foreign.priv.PubKey().SerializeCompressed(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := psbt.Finalize(p, 1); err != nil {
		t.Fatal(err)
	}
}

func multiFetcher(prevTxs ...*wire.MsgTx) *txscript.MultiPrevOutFetcher {
	f := txscript.NewMultiPrevOutFetcher(nil)
	for _, ptx := range prevTxs {
		id := ptx.TxHash()
		for i, out := range ptx.TxOut {
			f.AddPrevOut(wire.OutPoint{Hash: id, Index: uint32(i)}, out)
		}
	}
	return f
}

// verifyWithBtcd executes every input script of tx with btcd's script
// engine under the standard verification flags.
func verifyWithBtcd(t testing.TB, tx *wire.MsgTx, prevTxs ...*wire.MsgTx) {
	t.Helper()
	fetcher := multiFetcher(prevTxs...)
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range tx.TxIn {
		prev := fetcher.FetchPrevOutput(in.PreviousOutPoint)
		if prev == nil {
			t.Fatalf("input %d: unknown previous output", i)
		}
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, sigHashes, prev.Value, fetcher)
		if err != nil {
			t.Fatalf("input %d: new engine: %v", i, err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("input %d: btcd script engine rejects the input: %v", i, err)
		}
	}
}

// checkMixedPSBTSigned runs the whole mixed-PSBT scenario with signer s and
// verifies the result with btcd.
func checkMixedPSBTSigned(t *testing.T, s wallet.Signer) {
	ctx := context.Background()
	m := newMixedPSBT(t, s)
	before := serializePSBT(t, m.packet)

	res, err := wallet.SignPSBT(ctx, s, m.packet, m.opts)
	if err != nil {
		t.Fatalf("SignPSBT: %v", err)
	}
	if !bytes.Equal(before, serializePSBT(t, m.packet)) {
		t.Fatal("SignPSBT modified the caller's PSBT")
	}

	// Which inputs were signed, with which script type.
	want := map[int]wallet.AddressType{0: wallet.P2WPKH, 2: wallet.P2SHP2WPKH, 3: wallet.P2PKH}
	if len(res.Plan.Inputs) != len(want) {
		t.Fatalf("signed %d inputs, want %d", len(res.Plan.Inputs), len(want))
	}
	for _, in := range res.Plan.Inputs {
		if want[in.Index] != in.Type {
			t.Fatalf("input %d signed as %s, want %s", in.Index, in.Type, want[in.Index])
		}
	}
	foreign := res.Packet.Inputs[1]
	if len(foreign.PartialSigs) != 0 || foreign.FinalScriptSig != nil || foreign.FinalScriptWitness != nil {
		t.Fatal("the input of the other party was touched")
	}
	if res.Complete || res.Tx != nil {
		t.Fatal("the PSBT cannot be complete before the other party signs")
	}

	// Summary: amounts, fee, change.
	bs := res.Plan.Summary.Bitcoin
	if bs.Fee == nil || *bs.Fee != 1_000_000 {
		t.Fatalf("fee = %v, want 1000000 sat", bs.Fee)
	}
	if bs.Sent != 150_000_000 || !bs.Outputs[1].Change || bs.Outputs[0].Change || !bs.Outputs[1].Path.Equal(hd.Path{1, 0}) {
		t.Fatalf("outputs summarized wrongly: %+v sent %v", bs.Outputs, bs.Sent)
	}
	if bs.Inputs[1].Ours || !bs.Inputs[0].Ours || !bs.Inputs[3].Ours {
		t.Fatalf("ownership summarized wrongly: %+v", bs.Inputs)
	}
	if len(res.Plan.Summary.Digests) != 3 {
		t.Fatalf("summary lists %d digests, want 3", len(res.Plan.Summary.Digests))
	}

	// The other party signs its input; then the whole transaction must
	// pass btcd's script engine.
	m.signForeignInput(t, res.Packet)
	tx, err := psbt.Extract(res.Packet)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	verifyWithBtcd(t, tx, m.funding)
}

func TestSignPSBT_MixedInputsVerifyWithBtcdScriptEngine(t *testing.T) {
	checkMixedPSBTSigned(t, newLocalKey(t, "", nil))
}

func TestSignPSBT_AllInputsOursGivesCompleteTransaction(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	m.signForeignInput(t, m.packet) // the other party signed first
	res, err := wallet.SignPSBT(ctx, k, m.packet, m.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Tx == nil {
		t.Fatal("all inputs are final but the result is not complete")
	}
	var decoded wire.MsgTx
	if err := decoded.Deserialize(bytes.NewReader(res.RawTx)); err != nil {
		t.Fatalf("RawTx does not decode: %v", err)
	}
	if decoded.TxHash() != res.Tx.TxHash() {
		t.Fatal("RawTx is not the serialization of Tx")
	}
	verifyWithBtcd(t, &decoded, m.funding)
}

func TestSignPSBT_AcceptsHighSAndMissingRecoveryIDFromSigner(t *testing.T) {
	k := newLocalKey(t, "", nil)
	s := tamperingSigner{Signer: k, alter: func(sig *wallet.Signature) (*wallet.Signature, error) {
		h, _ := highS(sig)
		h.RecoveryID = 0
		return h, nil
	}}
	checkMixedPSBTSigned(t, s)
}

func TestSignPSBT_RejectsSignatureUnderAnotherKey(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	before := serializePSBT(t, m.packet)
	_, err := wallet.SignPSBT(context.Background(), otherKeySigner(t, k), m.packet, m.opts)
	if !errors.Is(err, wallet.ErrInvalidSignature) {
		t.Fatalf("err = %v, want ErrInvalidSignature", err)
	}
	if !bytes.Equal(before, serializePSBT(t, m.packet)) {
		t.Fatal("a failed SignPSBT modified the caller's PSBT")
	}
}

func TestSignPSBT_ReportsSignerFailure(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	_, err := wallet.SignPSBT(context.Background(), failingSigner{k}, m.packet, m.opts)
	if !errors.Is(err, errSignerDown) {
		t.Fatalf("err = %v, want the signer's error", err)
	}
}

func TestSignPSBT_NothingToSignWithoutPathsOrDerivations(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	m.packet.Inputs[0].Bip32Derivation = nil
	m.opts.Paths = nil
	_, err := wallet.SignPSBT(context.Background(), k, m.packet, m.opts)
	if !errors.Is(err, wallet.ErrNothingToSign) {
		t.Fatalf("err = %v, want ErrNothingToSign", err)
	}
}

func TestPlanPSBT_IgnoresDerivationFieldsThatAreNotThisKey(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	m.opts.Paths = nil
	d := m.packet.Inputs[0].Bip32Derivation[0]

	// Same fingerprint and path, but another public key (a fingerprint
	// collision or a wrong chain code): not ours.
	other := newLocalKey(t, "", nil).priv.PubKey().SerializeCompressed()
	m.packet.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: other, MasterKeyFingerprint: d.MasterKeyFingerprint, Bip32Path: d.Bip32Path}}
	plan, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts)
	if err != nil || len(plan.Inputs) != 0 {
		t.Fatalf("plan = %+v, err = %v; want no inputs", plan, err)
	}

	// Our fingerprint with a hardened path: we never derive hardened keys.
	m.packet.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: d.PubKey, MasterKeyFingerprint: d.MasterKeyFingerprint, Bip32Path: []uint32{hd.HardenedOffset, 0}}}
	plan, err = wallet.PlanPSBT(ctx, k, m.packet, m.opts)
	if err != nil || len(plan.Inputs) != 0 {
		t.Fatalf("plan = %+v, err = %v; want no inputs", plan, err)
	}
}

func TestPlanPSBT_DerivationFieldOnOtherScriptIsUnsupported(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	// Input 1 spends the foreign key's P2WPKH but claims our key.
	m.packet.Inputs[1].Bip32Derivation = m.packet.Inputs[0].Bip32Derivation
	_, err := wallet.PlanPSBT(context.Background(), k, m.packet, m.opts)
	if !errors.Is(err, wallet.ErrUnsupportedScript) {
		t.Fatalf("err = %v, want ErrUnsupportedScript", err)
	}
}

func TestSignPSBT_RefusesTaprootInputOfThisKey(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	root, _ := k.PublicKey(ctx, hd.Path{})
	pub, _ := k.PublicKey(ctx, mustPath(t, "m/0/0"))
	xOnly := pub.SerializeCompressed()[1:]
	p2tr := append([]byte{txscript.OP_1, txscript.OP_DATA_32}, xOnly...)

	tests := map[string]func(m *mixedPSBT){
		"output key is ours": func(m *mixedPSBT) {
			m.packet.Inputs[1].WitnessUtxo = wire.NewTxOut(30_000_000, p2tr)
		},
		"taproot derivation with our fingerprint": func(m *mixedPSBT) {
			m.packet.Inputs[1].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{
				XOnlyPubKey: xOnly, MasterKeyFingerprint: wallet.PSBTFingerprint(root), Bip32Path: []uint32{0, 0},
			}}
		},
		"internal key is ours": func(m *mixedPSBT) {
			m.packet.Inputs[1].TaprootInternalKey = xOnly
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			m := newMixedPSBT(t, k)
			mutate(m)
			_, err := wallet.SignPSBT(ctx, k, m.packet, m.opts)
			if !errors.Is(err, wallet.ErrTaproot) {
				t.Fatalf("err = %v, want ErrTaproot", err)
			}
		})
	}

	t.Run("taproot input of another key is left alone", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		otherX := newLocalKey(t, "", nil).priv.PubKey().SerializeCompressed()[1:]
		m.packet.Inputs[1].WitnessUtxo = wire.NewTxOut(30_000_000, append([]byte{txscript.OP_1, txscript.OP_DATA_32}, otherX...))
		res, err := wallet.SignPSBT(ctx, k, m.packet, m.opts)
		if err != nil {
			t.Fatalf("SignPSBT: %v", err)
		}
		if len(res.Plan.Inputs) != 3 {
			t.Fatalf("signed %d inputs, want 3", len(res.Plan.Inputs))
		}
	})
}

func TestSignPSBT_SighashTypes(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)

	t.Run("non-default type refused unless allowed", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[0].SighashType = txscript.SigHashNone
		if _, err := wallet.SignPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrSighashType) {
			t.Fatalf("err = %v, want ErrSighashType", err)
		}
	})
	t.Run("invalid type refused", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[0].SighashType = 0x04
		m.opts.SighashTypes = []txscript.SigHashType{0x04}
		if _, err := wallet.SignPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrSighashType) {
			t.Fatalf("err = %v, want ErrSighashType", err)
		}
	})
	t.Run("SIGHASH_SINGLE without matching output refused", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[3].SighashType = txscript.SigHashSingle
		m.opts.SighashTypes = []txscript.SigHashType{txscript.SigHashAll, txscript.SigHashSingle}
		if _, err := wallet.SignPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrSighashType) {
			t.Fatalf("err = %v, want ErrSighashType", err)
		}
	})
	allowed := []txscript.SigHashType{
		txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle,
		txscript.SigHashAll | txscript.SigHashAnyOneCanPay,
		txscript.SigHashNone | txscript.SigHashAnyOneCanPay,
		txscript.SigHashSingle | txscript.SigHashAnyOneCanPay,
	}
	for _, ht := range allowed {
		t.Run("allowed 0x"+hex.EncodeToString([]byte{byte(ht)}), func(t *testing.T) {
			m := newMixedPSBT(t, k)
			m.packet.Inputs[0].SighashType = ht // input 0 has output 0
			m.packet.Inputs[2].SighashType = ht
			if ht&^txscript.SigHashAnyOneCanPay == txscript.SigHashSingle {
				m.packet.Inputs[2].SighashType = txscript.SigHashAll // there is no output 2
			}
			m.opts.SighashTypes = allowed
			res, err := wallet.SignPSBT(ctx, k, m.packet, m.opts)
			if err != nil {
				t.Fatalf("SignPSBT: %v", err)
			}
			if ht != txscript.SigHashAll && len(res.Plan.Summary.Warnings) == 0 {
				t.Fatal("no warning for a sighash type other than ALL")
			}
			m.signForeignInput(t, res.Packet)
			tx, err := psbt.Extract(res.Packet)
			if err != nil {
				t.Fatal(err)
			}
			verifyWithBtcd(t, tx, m.funding)
		})
	}
}

func TestPlanPSBT_UTXOChecks(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)

	t.Run("P2PKH needs the previous transaction", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[3].NonWitnessUtxo = nil
		m.packet.Inputs[3].WitnessUtxo = m.funding.TxOut[3]
		if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrMissingUTXO) {
			t.Fatalf("err = %v, want ErrMissingUTXO", err)
		}
	})
	t.Run("no UTXO at all", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[0].WitnessUtxo = nil
		if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrMissingUTXO) {
			t.Fatalf("err = %v, want ErrMissingUTXO", err)
		}
	})
	t.Run("RequireFullPrevTx refuses witness-only inputs", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.opts.RequireFullPrevTx = true
		if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrMissingUTXO) {
			t.Fatalf("err = %v, want ErrMissingUTXO", err)
		}
		for i := 0; i < 3; i++ {
			m.packet.Inputs[i].NonWitnessUtxo = m.funding
		}
		if _, err := wallet.SignPSBT(ctx, k, m.packet, m.opts); err != nil {
			t.Fatalf("with full previous transactions: %v", err)
		}
	})
	t.Run("previous transaction is not the one spent", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		other := m.funding.Copy()
		other.LockTime++
		m.packet.Inputs[3].NonWitnessUtxo = other
		if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrUTXOMismatch) {
			t.Fatalf("err = %v, want ErrUTXOMismatch", err)
		}
	})
	t.Run("witness UTXO contradicts previous transaction", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[0].NonWitnessUtxo = m.funding
		m.packet.Inputs[0].WitnessUtxo = wire.NewTxOut(m.funding.TxOut[0].Value-1, m.funding.TxOut[0].PkScript)
		if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrUTXOMismatch) {
			t.Fatalf("err = %v, want ErrUTXOMismatch", err)
		}
	})
	t.Run("unknown foreign amount leaves fee unknown", func(t *testing.T) {
		m := newMixedPSBT(t, k)
		m.packet.Inputs[1].WitnessUtxo = nil
		plan, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Summary.Bitcoin.Fee != nil || len(plan.Summary.Warnings) == 0 {
			t.Fatal("fee must be unknown, with a warning, when an input amount is missing")
		}
	})
}

func TestPlanPSBT_RefusesInvalidTransactionShapes(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	tests := map[string]func(m *mixedPSBT){
		"input spent twice": func(m *mixedPSBT) {
			m.packet.UnsignedTx.TxIn[2].PreviousOutPoint = m.packet.UnsignedTx.TxIn[0].PreviousOutPoint
		},
		"output above 21 million BTC": func(m *mixedPSBT) {
			m.packet.UnsignedTx.TxOut[0].Value = btcutil.MaxSatoshi + 1
		},
		"negative output": func(m *mixedPSBT) {
			m.packet.UnsignedTx.TxOut[0].Value = -1
		},
		"input amount that would overflow the sum": func(m *mixedPSBT) {
			m.packet.Inputs[1].WitnessUtxo = wire.NewTxOut(1<<62, m.funding.TxOut[1].PkScript)
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			m := newMixedPSBT(t, k)
			mutate(m)
			if _, err := wallet.PlanPSBT(ctx, k, m.packet, m.opts); !errors.Is(err, wallet.ErrInvalidPSBT) {
				t.Fatalf("err = %v, want ErrInvalidPSBT", err)
			}
		})
	}
}

func TestSignPSBT_RefusesAlreadySignedInput(t *testing.T) {
	ctx := context.Background()
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	res, err := wallet.SignPSBT(ctx, k, m.packet, m.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.SignPSBT(ctx, k, res.Packet, m.opts); !errors.Is(err, wallet.ErrAlreadySigned) {
		t.Fatalf("err = %v, want ErrAlreadySigned", err)
	}
}

func TestPlanPSBT_SummaryTextAndJSON(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	plan, err := wallet.PlanPSBT(context.Background(), k, m.packet, m.opts)
	if err != nil {
		t.Fatal(err)
	}
	text := plan.Summary.Text()
	for _, want := range []string{"regtest", "Fee: 0.01000000 BTC", "Sent to others: 1.50000000 BTC", "change to this key at m/1/0", "not ours", "p2sh-p2wpkh at m/0/1"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary text lacks %q:\n%s", want, text)
		}
	}
	js, err := plan.Summary.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind":"bitcoin-psbt"`, `"feeSat":1000000`, `"path":"m/0/0"`, `"version":1`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("summary JSON lacks %s: %s", want, js)
		}
	}
	// Every site computes the same summary from the same PSBT.
	again, _ := wallet.PlanPSBT(context.Background(), k.xpub, m.packet, m.opts)
	js2, _ := again.Summary.JSON()
	if !bytes.Equal(js, js2) {
		t.Fatal("summary JSON is not deterministic")
	}
}

func TestParsePSBT(t *testing.T) {
	k := newLocalKey(t, "", nil)
	m := newMixedPSBT(t, k)
	bin := serializePSBT(t, m.packet)
	b64, err := m.packet.B64Encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"binary": bin, "base64": []byte(b64 + "\n")} {
		p, err := wallet.ParsePSBT(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(serializePSBT(t, p), bin) {
			t.Fatalf("%s: round trip differs", name)
		}
	}
	for _, bad := range [][]byte{nil, []byte("psbt\xff"), []byte("not a psbt"), bin[:len(bin)-3]} {
		if _, err := wallet.ParsePSBT(bad); !errors.Is(err, wallet.ErrInvalidPSBT) {
			t.Fatalf("ParsePSBT(%q) err = %v, want ErrInvalidPSBT", bad, err)
		}
	}
}

type bip143Case struct {
	Name         string `json:"name"`
	UnsignedTx   string `json:"unsignedTx"`
	Input        int    `json:"input"`
	ScriptPubKey string `json:"scriptPubKey"`
	RedeemScript string `json:"redeemScript"`
	AmountSat    int64  `json:"amountSat"`
	PrivateKey   string `json:"privateKey"`
	PublicKey    string `json:"publicKey"`
	SigHash      string `json:"sigHash"`
	Signature    string `json:"signature"`
}

// TestPlanPSBT_BIP143Vectors checks the segwit v0 digests against the
// examples of BIP-143, with the BIP's private key standing in as a key at
// path m.
func TestPlanPSBT_BIP143Vectors(t *testing.T) {
	var file struct {
		Cases []bip143Case `json:"cases"`
	}
	readVectors(t, "bip143.json", &file)
	for _, tc := range file.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			ctx := context.Background()
			var tx wire.MsgTx
			if err := tx.Deserialize(bytes.NewReader(mustHex(t, tc.UnsignedTx))); err != nil {
				t.Fatal(err)
			}
			p, err := psbt.NewFromUnsignedTx(&tx)
			if err != nil {
				t.Fatal(err)
			}
			p.Inputs[tc.Input].WitnessUtxo = wire.NewTxOut(tc.AmountSat, mustHex(t, tc.ScriptPubKey))
			if tc.RedeemScript != "" {
				p.Inputs[tc.Input].RedeemScript = mustHex(t, tc.RedeemScript)
			}
			k := newLocalKey(t, tc.PrivateKey, nil)
			if got := hex.EncodeToString(k.priv.PubKey().SerializeCompressed()); got != tc.PublicKey {
				t.Fatalf("public key %s, BIP says %s", got, tc.PublicKey)
			}
			opts := wallet.PSBTOptions{Net: &chaincfg.MainNetParams, Paths: []hd.Path{{}}}
			plan, err := wallet.PlanPSBT(ctx, k, p, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Inputs) != 1 || plan.Inputs[0].Index != tc.Input {
				t.Fatalf("planned inputs %+v, want input %d", plan.Inputs, tc.Input)
			}
			if got := hex.EncodeToString(plan.Inputs[0].Digest[:]); got != tc.SigHash {
				t.Fatalf("sighash %s, BIP-143 says %s", got, tc.SigHash)
			}
			// The BIP's own signature verifies over our digest.
			bipSig, err := wallet.ParseDER(mustHex(t, tc.Signature))
			if err != nil {
				t.Fatal(err)
			}
			if err := bipSig.Verify(plan.Inputs[0].Digest, k.priv.PubKey()); err != nil {
				t.Fatalf("BIP-143 signature does not verify over the computed digest: %v", err)
			}
			// And our own signature passes btcd's script engine.
			if _, err := wallet.SignPSBT(ctx, k, p, opts); err != nil {
				t.Fatalf("SignPSBT: %v", err)
			}
		})
	}
}

func FuzzParsePSBT(f *testing.F) {
	k := newLocalKey(f, "", nil)
	m := newMixedPSBT(f, k)
	f.Add(serializePSBT(f, m.packet))
	b64, _ := m.packet.B64Encode()
	f.Add([]byte(b64))
	f.Add([]byte("psbt\xff\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := wallet.ParsePSBT(raw)
		if err != nil {
			if !errors.Is(err, wallet.ErrInvalidPSBT) {
				t.Fatalf("error %v does not wrap ErrInvalidPSBT", err)
			}
			return
		}
		// Planning an arbitrary PSBT must fail cleanly or succeed, never panic.
		_, _ = wallet.PlanPSBT(context.Background(), k.xpub, p, m.opts)
	})
}
