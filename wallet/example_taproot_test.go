package wallet_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/frost"
	"github.com/keyquorum/keyquorum/wallet"
)

// frostKey is a 2-of-3 FROST key in the BIP-340 mode, from a trusted dealer,
// that implements wallet.SchnorrSigner by running both FROST rounds with two
// of its three shares (a different pair each time) and aggregating with the
// Taproot tweak the wallet asks for.
type frostKey struct {
	shares []*frost.KeyShare
	next   atomic.Uint32
}

func newFROSTKey(t testing.TB) *frostKey {
	t.Helper()
	k, err := dealFROSTKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// dealFROSTKey splits secret (nil for a fresh key) 2-of-3.
func dealFROSTKey(secret []byte) (*frostKey, error) {
	d, err := frost.Deal(frost.Secp256k1BIP340(), secret, 2, 3, rand.Reader)
	if err != nil {
		return nil, err
	}
	defer d.Wipe()
	shares, err := d.KeyShares()
	if err != nil {
		return nil, err
	}
	return &frostKey{shares: shares}, nil
}

func (k *frostKey) InternalKey(context.Context) ([]byte, error) {
	return k.shares[0].PublicKey().XOnly()
}

func (k *frostKey) SignSchnorr(ctx context.Context, msg [32]byte, tweak *wallet.TaprootTweak) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pair := signingPairs[(k.next.Add(1)-1)%3]
	signers := []*frost.KeyShare{k.shares[pair[0]], k.shares[pair[1]]}
	pkg := &frost.SigningPackage{Message: msg[:]}
	if tweak != nil {
		pkg.Taproot = &frost.Taproot{MerkleRoot: tweak.MerkleRoot}
	}
	nonces := make([]*frost.Nonce, len(signers))
	for i, s := range signers {
		nonce, c, err := s.Commit(rand.Reader)
		if err != nil {
			return nil, err
		}
		nonces[i] = nonce
		pkg.Commitments = append(pkg.Commitments, c)
	}
	var sigShares []*frost.SignatureShare
	for i, s := range signers {
		sh, err := s.Sign(nonces[i], pkg)
		if err != nil {
			return nil, fmt.Errorf("FROST round two by participant %d: %w", s.Identifier(), err)
		}
		sigShares = append(sigShares, sh)
	}
	return k.shares[0].PublicKey().Aggregate(pkg, sigShares)
}

// ExampleSignTaprootPSBT spends a regtest P2TR output of a 2-of-3 FROST key
// by the key path. The key is dealt in the example; in keyquorum each site
// holds one share and SignSchnorr runs the two FROST rounds among them.
func ExampleSignTaprootPSBT() {
	ctx := context.Background()
	net := &chaincfg.RegressionNetParams
	secret := sha256.Sum256([]byte("taproot example key"))
	committee, err := dealFROSTKey(secret[:])
	if err != nil {
		panic(err)
	}

	// Output 0 of prevTx paid 0.01 BTC to the key's P2TR address.
	internal, _ := committee.InternalKey(ctx)
	addr, err := wallet.TaprootAddress(internal, nil, net)
	if err != nil {
		panic(err)
	}
	fmt.Println("address:", addr.EncodeAddress())
	script, _ := txscript.PayToAddrScript(addr)
	prevTx := wire.NewMsgTx(2)
	prevTx.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, []byte{txscript.OP_TRUE}, nil))
	prevTx.AddTxOut(wire.NewTxOut(1_000_000, script))

	// Pay 0.0099 BTC to a destination, leaving 0.0001 BTC as fee.
	dest, _ := btcutil.DecodeAddress("bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202", net)
	destScript, _ := txscript.PayToAddrScript(dest)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prevTx.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(990_000, destScript))
	packet, _ := psbt.NewFromUnsignedTx(tx)
	packet.Inputs[0].WitnessUtxo = prevTx.TxOut[0]
	packet.Inputs[0].TaprootInternalKey = internal

	res, err := wallet.SignTaprootPSBT(ctx, committee, packet, wallet.PSBTOptions{Net: net})
	if err != nil {
		panic(err)
	}
	fmt.Print(res.Plan.Summary.Text())
	fmt.Println("complete:", res.Complete, "txid:", res.Tx.TxHash())
	// Output:
	// address: bcrt1pswvwnfluczyulsurzrd3gsz3at3xpuff4w7njpcjlrqyzkrz366swq67p5
	// Bitcoin transaction on regtest (unsigned txid 1a817699675d10010a9c8c7bdeb38ec3c84964acb6f6e774c016250448a17171, version 2, locktime 0)
	// Inputs (1):
	//   #0 0c5597e19f23d788b8ed8f95daf1f4829cb870fe00137173fed41a8295d3a154:0  0.01000000 BTC  bcrt1pswvwnfluczyulsurzrd3gsz3at3xpuff4w7njpcjlrqyzkrz366swq67p5  [ours, p2tr key path, SIGHASH_DEFAULT]
	// Outputs (1):
	//   #0 bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202  0.00990000 BTC
	// Sent to others: 0.00990000 BTC
	// Fee: 0.00010000 BTC
	// Signatures (1):
	//   input 0: BIP-340 output key 8398e9a7fcc089cfc38310db144051eae260f129abbd390712f8c04158628eb5 (internal key 189b5cd888fea08e922897e995b10808da4dcd5fc541568b105a6200370d17b4, no script tree) signs e325a9a191a45cb7a1ce3531af95d2db4a53c445843cd182509491f523596fea
	// complete: true txid: 1a817699675d10010a9c8c7bdeb38ec3c84964acb6f6e774c016250448a17171
}

// dkgFROSTKey runs a 2-of-3 distributed key generation among three
// participants in one process and returns their key shares.
func dkgFROSTKey(t testing.TB) *frostKey {
	t.Helper()
	ids := []frost.Identifier{1, 2, 3}
	dkgs := make([]*frost.DKG, len(ids))
	var round1 []*frost.DKGRound1
	for i, id := range ids {
		d, m, err := frost.NewDKG(frost.DKGConfig{Suite: frost.Secp256k1BIP340(), Self: id, Participants: ids, Threshold: 2, Context: []byte("wallet taproot test")})
		if err != nil {
			t.Fatal(err)
		}
		dkgs[i] = d
		round1 = append(round1, m)
	}
	inbox := map[frost.Identifier][]*frost.DKGRound2{}
	for _, d := range dkgs {
		out, err := d.Round2(round1)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out {
			inbox[m.To()] = append(inbox[m.To()], m)
		}
	}
	k := &frostKey{}
	for i, d := range dkgs {
		share, err := d.Finalize(inbox[ids[i]])
		if err != nil {
			t.Fatal(err)
		}
		k.shares = append(k.shares, share)
	}
	return k
}
