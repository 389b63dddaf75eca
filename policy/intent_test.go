package policy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/big"
	"runtime"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// allKinds returns one intent of each kind.
func allKinds(t *testing.T, k *testKey) map[string]*policy.Intent {
	return map[string]*policy.Intent{
		"psbt":    psbtIntent(t, k, []int64{50_000_000, 30_000_000}, []out{{coldBTC, 70_000_000}, {"", 9_990_000}}),
		"eth":     ethIntent(t, 1, 7, coldETH, ether(1.5), nil),
		"typed":   typedIntent(t, mailJSON(t)),
		"message": messageIntent(t, "hello"),
		"raw":     rawIntent(t),
	}
}

func TestIntent_BytesRoundTripAndHash(t *testing.T) {
	k := newTestKey(t, "intent")
	for name, in := range allKinds(t, k) {
		t.Run(name, func(t *testing.T) {
			back, err := policy.ParseIntent(in.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Bytes(), in.Bytes()) || back.Hash() != in.Hash() || back.Kind() != in.Kind() {
				t.Fatal("parsed intent differs")
			}
			h := sha256.New()
			h.Write([]byte("keyquorum/intent/v1\x00"))
			h.Write(in.Bytes())
			if got := back.Hash(); !bytes.Equal(h.Sum(nil), got[:]) {
				t.Fatal("hash is not SHA-256 over the domain tag and the encoding")
			}
			if sha256.Sum256(in.Bytes()) == in.Hash() {
				t.Fatal("hash has no domain tag")
			}
		})
	}
}

func TestNewPSBTIntent_SamePSBTSameIntent(t *testing.T) {
	k := newTestKey(t, "intent")
	raw := buildPSBT(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}})
	a, err := policy.NewPSBTIntent("mainnet", raw, mustPath(t, "m/1/0"), mustPath(t, "m/0/0"), mustPath(t, "m/1/0"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.NewPSBTIntent("mainnet", []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), mustPath(t, "m/0/0"), mustPath(t, "m/1/0"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Fatal("binary and base64 forms, or path order, give different intents")
	}
	if got := a.Paths(); len(got) != 2 || got[0].String() != "m/0/0" || got[1].String() != "m/1/0" {
		t.Fatalf("paths %v, want sorted and distinct", got)
	}
	other, err := policy.NewPSBTIntent("testnet", raw)
	if err != nil {
		t.Fatal(err)
	}
	if other.Hash() == a.Hash() {
		t.Fatal("network is not part of the intent")
	}
}

// reframe re-encodes an intent with fields changed, bypassing the
// constructors' checks, as a hostile peer would.
type frame struct {
	magic   string
	version byte
	kind    byte
	network string
	chainID uint64
	paths   []hd.Path
	payload []byte
	trailer []byte
}

func (f frame) bytes() []byte {
	b := append([]byte(f.magic), f.version, f.kind, byte(len(f.network)))
	b = append(b, f.network...)
	b = binary.BigEndian.AppendUint64(b, f.chainID)
	b = append(b, byte(len(f.paths)))
	for _, p := range f.paths {
		b = append(b, byte(len(p)))
		for _, i := range p {
			b = binary.BigEndian.AppendUint32(b, i)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.payload)))
	b = append(b, f.payload...)
	return append(b, f.trailer...)
}

func TestParseIntent_Refusals(t *testing.T) {
	k := newTestKey(t, "intent")
	psbtRaw := buildPSBT(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}})
	ethRaw := eip1559(t, 1, 0, coldETH, ether(1), nil)
	p44 := []hd.Path{{44, 60}}
	good := map[string]frame{
		"psbt": {magic: "KQINTENT", version: 1, kind: 1, network: "mainnet", payload: psbtRaw},
		"eth":  {magic: "KQINTENT", version: 1, kind: 2, chainID: 1, paths: p44, payload: ethRaw},
		"raw":  {magic: "KQINTENT", version: 1, kind: 5, paths: p44, payload: make([]byte, 32)},
	}
	for name, f := range good {
		if _, err := policy.ParseIntent(f.bytes()); err != nil {
			t.Fatalf("good %s frame refused: %v", name, err)
		}
	}
	signed, err := types.SignNewTx(mustECDSA(t), types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{ChainID: big.NewInt(1), Gas: 21000, To: &common.Address{1}})
	if err != nil {
		t.Fatal(err)
	}
	signedRaw, _ := signed.MarshalBinary()
	missingUTXO := func() []byte {
		p, err := psbt.NewFromUnsignedTx(psbtTx(t))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_ = p.Serialize(&buf)
		return buf.Bytes()
	}()
	cases := []struct {
		name string
		f    frame
		want error
	}{
		{"bad magic", mod(good["raw"], func(f *frame) { f.magic = "KQINTENX" }), policy.ErrIntent},
		{"version 2", mod(good["raw"], func(f *frame) { f.version = 2 }), policy.ErrIntent},
		{"kind 0", mod(good["raw"], func(f *frame) { f.kind = 0 }), policy.ErrIntent},
		{"kind 9", mod(good["raw"], func(f *frame) { f.kind = 9 }), policy.ErrIntent},
		{"trailing byte", mod(good["raw"], func(f *frame) { f.trailer = []byte{0} }), policy.ErrIntent},
		{"raw digest of 31 bytes", mod(good["raw"], func(f *frame) { f.payload = make([]byte, 31) }), policy.ErrIntent},
		{"raw digest with two paths", mod(good["raw"], func(f *frame) { f.paths = []hd.Path{{1}, {2}} }), policy.ErrIntent},
		{"raw digest with a chain ID", mod(good["raw"], func(f *frame) { f.chainID = 1 }), policy.ErrIntent},
		{"raw digest with a network", mod(good["raw"], func(f *frame) { f.network = "mainnet" }), policy.ErrIntent},
		{"hardened path", mod(good["raw"], func(f *frame) { f.paths = []hd.Path{{hd.HardenedOffset}} }), hd.ErrHardened},
		{"path too deep", mod(good["raw"], func(f *frame) { f.paths = []hd.Path{make(hd.Path, 33)} }), policy.ErrIntentTooLarge},
		{"empty message", frame{magic: "KQINTENT", version: 1, kind: 4, paths: p44}, policy.ErrIntent},
		{"message too long", frame{magic: "KQINTENT", version: 1, kind: 4, paths: p44, payload: make([]byte, policy.MaxMessageSize+1)}, policy.ErrIntentTooLarge},
		{"typed data not JSON", frame{magic: "KQINTENT", version: 1, kind: 3, paths: p44, payload: []byte("{")}, wallet.ErrTypedData},
		{"eth without chain ID", mod(good["eth"], func(f *frame) { f.chainID = 0 }), policy.ErrIntent},
		{"eth chain ID other than the transaction's", mod(good["eth"], func(f *frame) { f.chainID = 5 }), wallet.ErrChainID},
		{"eth already signed", mod(good["eth"], func(f *frame) { f.payload = signedRaw }), wallet.ErrInvalidTransaction},
		{"eth not a transaction", mod(good["eth"], func(f *frame) { f.payload = []byte{2, 0xc0} }), wallet.ErrInvalidTransaction},
		{"psbt on an unknown network", mod(good["psbt"], func(f *frame) { f.network = "mainnet2" }), policy.ErrIntent},
		{"psbt with a chain ID", mod(good["psbt"], func(f *frame) { f.chainID = 1 }), policy.ErrIntent},
		{"psbt paths unsorted", mod(good["psbt"], func(f *frame) { f.paths = []hd.Path{{1}, {0}} }), policy.ErrIntent},
		{"psbt paths repeated", mod(good["psbt"], func(f *frame) { f.paths = []hd.Path{{1}, {1}} }), policy.ErrIntent},
		{"psbt in base64", mod(good["psbt"], func(f *frame) { f.payload = []byte(base64.StdEncoding.EncodeToString(psbtRaw)) }), policy.ErrIntent},
		{"psbt input without UTXO", mod(good["psbt"], func(f *frame) { f.payload = missingUTXO }), policy.ErrIntent},
		{"psbt not canonical", mod(good["psbt"], func(f *frame) { f.payload = withLeadingUnknownInputField(t, psbtRaw) }), policy.ErrIntent},
		{"psbt truncated", mod(good["psbt"], func(f *frame) { f.payload = psbtRaw[:len(psbtRaw)-1] }), policy.ErrIntent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.ParseIntent(c.f.bytes())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := policy.ParseIntent(nil); !errors.Is(err, policy.ErrIntent) {
		t.Fatalf("empty input: %v", err)
	}
	if _, err := policy.ParseIntent(make([]byte, policy.MaxIntentSize+1)); !errors.Is(err, policy.ErrIntentTooLarge) {
		t.Fatalf("oversized input: %v", err)
	}
}

func mod(f frame, change func(*frame)) frame {
	change(&f)
	return f
}

// psbtTx is a one-input, one-output transaction.
func psbtTx(t testing.TB) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 3}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	return tx
}

// withLeadingUnknownInputField inserts an unknown field at the start of
// the first input map. btcd parses it and writes it back at the end of the
// map, so the PSBT is valid but not in the form btcd writes.
func withLeadingUnknownInputField(t testing.TB, raw []byte) []byte {
	t.Helper()
	p, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	var tx bytes.Buffer
	if err := p.UnsignedTx.SerializeNoWitness(&tx); err != nil {
		t.Fatal(err)
	}
	var framing bytes.Buffer
	_ = wire.WriteVarInt(&framing, 0, uint64(tx.Len()))
	start := 5 + 2 + framing.Len() + tx.Len() + 1 // magic, key length and type, value length, tx, separator
	out := append([]byte{}, raw[:start]...)
	out = append(out, 0x01, 0x99, 0x01, 0x00)
	return append(out, raw[start:]...)
}

// TestParseIntent_HostileCountsAllocateLittle sends PSBTs whose framing
// claims huge values and transaction counts in a few bytes. btcd's parser
// allocates what a length prefix claims before it reads; the pre-scan must
// refuse these first.
func TestParseIntent_HostileCountsAllocateLittle(t *testing.T) {
	hostile := map[string][]byte{
		// global unsigned tx value claims 4,000,000 bytes
		"value length": append([]byte("psbt\xff\x01\x00\xfe"), binary.LittleEndian.AppendUint32(nil, 4_000_000)...),
		// unsigned tx claims 780,000 inputs
		"input count": append([]byte("psbt\xff\x01\x00\x0e\x02\x00\x00\x00\xfe"), append(binary.LittleEndian.AppendUint32(nil, 780_000), make([]byte, 5)...)...),
		// a non-witness UTXO claims 780,000 outputs
		"utxo output count": func() []byte {
			var buf bytes.Buffer
			p, _ := psbt.NewFromUnsignedTx(psbtTx(t))
			_ = p.Serialize(&buf)
			b := buf.Bytes()
			b = b[:len(b)-2]                         // drop the empty input and output maps
			prev := []byte{2, 0, 0, 0, 1}            // version, one input:
			prev = append(prev, make([]byte, 41)...) // outpoint, empty script, sequence
			prev = append(prev, 0xfe)                // then an output count
			prev = binary.LittleEndian.AppendUint32(prev, 780_000)
			prev = append(prev, make([]byte, 8)...)
			b = append(b, 0x01, 0x00, byte(len(prev)))
			b = append(b, prev...)
			return append(b, 0x00, 0x00)
		}(),
	}
	for name, payload := range hostile {
		t.Run(name, func(t *testing.T) {
			enc := frame{magic: "KQINTENT", version: 1, kind: 1, network: "mainnet", payload: payload}.bytes()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := policy.ParseIntent(enc)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, policy.ErrIntent) {
				t.Fatalf("err = %v, want ErrIntent", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Fatalf("parsing %d hostile bytes allocated %d bytes", len(enc), got)
			}
		})
	}
}

func TestParseIntent_PSBTSizeBounds(t *testing.T) {
	k := newTestKey(t, "bounds")
	inputs := make([]int64, policy.MaxPSBTInputs+1)
	for i := range inputs {
		inputs[i] = 1000
	}
	raw := buildPSBTFast(t, k, inputs)
	if _, err := policy.NewPSBTIntent("mainnet", raw); !errors.Is(err, policy.ErrIntentTooLarge) {
		t.Fatalf("PSBT with %d inputs: err = %v, want ErrIntentTooLarge", len(inputs), err)
	}
}

// buildPSBTFast builds a PSBT with many inputs that each carry only a
// witness UTXO (no derivation fields), for size tests.
func buildPSBTFast(t testing.TB, k *testKey, inputs []int64) []byte {
	t.Helper()
	tx := wire.NewMsgTx(2)
	for i := range inputs {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: uint32(i)}, nil, nil))
	}
	tx.AddTxOut(wire.NewTxOut(500, []byte{0x51}))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i, amt := range inputs {
		p.Inputs[i].WitnessUtxo = wire.NewTxOut(amt, []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDerive_DerivationWorkIsBounded gives a PSBT input many BIP-32
// derivation fields that carry this key's fingerprint, each with a
// different deep path. Each one costs the site derivations; the budget
// stops them.
func TestDerive_DerivationWorkIsBounded(t *testing.T) {
	k := newTestKey(t, "budget")
	raw := buildPSBT(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}})
	p, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	fp := wallet.PSBTFingerprint(k.xpub.Key)
	for i := 0; i < 200; i++ {
		path := make([]uint32, 32)
		path[0] = uint32(1000 + i)
		pub := k.pub(t, "m/9/"+itoa(i)).SerializeCompressed()
		p.Inputs[0].Bip32Derivation = append(p.Inputs[0].Bip32Derivation, &psbt.Bip32Derivation{PubKey: pub, MasterKeyFingerprint: fp, Bip32Path: path})
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	in, err := policy.NewPSBTIntent("mainnet", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Derive(context.Background(), in, k.key); !errors.Is(err, policy.ErrIntentTooLarge) {
		t.Fatalf("err = %v, want ErrIntentTooLarge", err)
	}
	cache := policy.NewKeyCache(0)
	for range 2 { // the second time, entries of the first are cached
		if _, err := cache.Derive(context.Background(), in, k.key); !errors.Is(err, policy.ErrIntentTooLarge) {
			t.Fatalf("with a key cache: err = %v, want ErrIntentTooLarge", err)
		}
	}
}

func FuzzParseIntent(f *testing.F) {
	k := newTestKey(f, "fuzz")
	f.Add(buildPSBTIntentBytes(f, k))
	for _, in := range []*policy.Intent{rawIntentTB(f), messageIntentTB(f), typedIntent(f, []byte(permitJSON)), ethIntent(f, 1, 0, usdc, big.NewInt(0), erc20("approve(address,uint256)", coldETH, big.NewInt(5)))} {
		f.Add(in.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := policy.ParseIntent(b)
		if err != nil {
			return
		}
		if !bytes.Equal(in.Bytes(), b) {
			t.Fatal("accepted bytes that are not the canonical encoding")
		}
		again, err := policy.ParseIntent(in.Bytes())
		if err != nil || again.Hash() != in.Hash() {
			t.Fatalf("re-parse: %v", err)
		}
		_, _ = policy.Derive(context.Background(), in, k.key)
	})
}

func buildPSBTIntentBytes(t testing.TB, k *testKey) []byte {
	in, err := policy.NewPSBTIntent("mainnet", buildPSBT(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}, {"", 9_000_000}}))
	if err != nil {
		t.Fatal(err)
	}
	return in.Bytes()
}

func rawIntentTB(t testing.TB) *policy.Intent {
	in, err := policy.NewRawDigestIntent(hd.Path{7}, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func messageIntentTB(t testing.TB) *policy.Intent {
	in, err := policy.NewPersonalMessageIntent(hd.Path{44, 60}, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestDerive_LegacySighashWorkIsBounded: every P2PKH input's sighash
// serializes the whole transaction; 1000 of them in one PSBT are refused,
// 100 are signed.
func TestDerive_LegacySighashWorkIsBounded(t *testing.T) {
	k := newTestKey(t, "legacy")
	in, err := policy.NewPSBTIntent("mainnet", legacyPSBT(t, k, policy.MaxPSBTInputs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Derive(context.Background(), in, k.key); !errors.Is(err, policy.ErrIntentTooLarge) {
		t.Fatalf("1000 legacy inputs: err = %v, want ErrIntentTooLarge", err)
	}
	in, err = policy.NewPSBTIntent("mainnet", legacyPSBT(t, k, 100))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := policy.Derive(context.Background(), in, k.key); err != nil || len(p.Digests) != 100 {
		t.Fatalf("100 legacy inputs: %v", err)
	}
}
