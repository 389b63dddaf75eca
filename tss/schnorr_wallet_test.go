package tss_test

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
)

// committeeSigner is a wallet.SchnorrSigner backed by a committee's FROST
// key over the engine: what a site hands SignTaprootPSBT.
type committeeSigner struct {
	e       *tss.Engine
	key     *tss.SchnorrKeyInfo
	signers []tss.PartyID
}

func (s committeeSigner) InternalKey(context.Context) ([]byte, error) {
	return append([]byte(nil), s.key.PublicKey...), nil
}

func (s committeeSigner) SignSchnorr(ctx context.Context, msg [32]byte, tweak *wallet.TaprootTweak) ([]byte, error) {
	req := tss.SchnorrSignRequest{KeyID: s.key.ID, Message: msg[:], Signers: s.signers}
	if tweak != nil {
		req.Taproot, req.MerkleRoot = true, tweak.MerkleRoot
	}
	return s.e.SchnorrSign(ctx, req)
}

// TestSchnorr_CommitteeSignsATaprootPSBT: a 2-of-3 BIP-340 key made by the
// engine's DKG receives coins at its P2TR address, and two sites sign a
// PSBT spending them through package wallet; btcd's script engine, with
// the standard (Taproot) verification flags, accepts the transaction.
func TestSchnorr_CommitteeSignsATaprootPSBT(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := c.IDs()
	key, err := c.Parties[0].Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	net := &chaincfg.RegressionNetParams
	addr, err := wallet.TaprootAddress(key.PublicKey, nil, net)
	if err != nil {
		t.Fatal(err)
	}
	pkScript, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	prev := wire.NewTxOut(100_000, pkScript)
	funding := chainhash.DoubleHashH([]byte("funding transaction"))
	dest := wire.NewTxOut(90_000, pkScript)
	packet, err := psbt.New([]*wire.OutPoint{wire.NewOutPoint(&funding, 1)}, []*wire.TxOut{dest}, 2, 0, []uint32{wire.MaxTxInSequenceNum})
	if err != nil {
		t.Fatal(err)
	}
	packet.Inputs[0].WitnessUtxo = prev
	packet.Inputs[0].TaprootInternalKey = key.PublicKey

	signed, err := wallet.SignTaprootPSBT(ctx, committeeSigner{e: c.Parties[1].Engine, key: key, signers: ids[1:]}, packet, wallet.PSBTOptions{Net: net})
	if err != nil {
		t.Fatal(err)
	}
	if !signed.Complete || signed.Tx == nil {
		t.Fatalf("the PSBT is not complete after signing its one input: %+v", signed.Plan)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, signed.Tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(signed.Tx, fetcher), prev.Value, fetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Execute(); err != nil {
		t.Fatalf("btcd's script engine refuses the committee's Taproot spend: %v", err)
	}
}
