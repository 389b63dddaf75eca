package wallet_test

import (
	"context"
	"testing"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// BenchmarkPlanPSBT measures what every site does before it agrees to sign
// the four-input mixed PSBT: parse nothing, derive keys, match scripts,
// compute three sighashes and the summary.
func BenchmarkPlanPSBT(b *testing.B) {
	k := newLocalKey(b, "", nil)
	m := newMixedPSBT(b, k)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := wallet.PlanPSBT(ctx, k.xpub, m.packet, m.opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignPSBT is PlanPSBT plus three local signatures, their checks,
// finalization and btcd script execution; with a threshold signer the
// protocol run dominates.
func BenchmarkSignPSBT(b *testing.B) {
	k := newLocalKey(b, "", nil)
	m := newMixedPSBT(b, k)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := wallet.SignPSBT(ctx, k, m.packet, m.opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignatureCanonical measures the check applied to every signature
// a signer returns (verify, low-S, recovery ID).
func BenchmarkSignatureCanonical(b *testing.B) {
	k := newLocalKey(b, "", nil)
	var digest [32]byte
	digest[0] = 1
	sig, err := k.SignDigest(context.Background(), digest, hd.Path{})
	if err != nil {
		b.Fatal(err)
	}
	pub := k.priv.PubKey()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sig.Canonical(digest, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignEthereumTx signs an EIP-1559 transaction with a local key,
// including go-ethereum's sender recovery.
func BenchmarkSignEthereumTx(b *testing.B) {
	k := newLocalKey(b, "", nil)
	tx := ethTxs()["eip1559"]
	path := hd.Path{0, 3}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := wallet.SignEthereumTx(ctx, k, path, tx, testChainID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThreshold2of3SignDigest measures one signature of the in-process
// tss-lib 2-of-3 signer used by the tests (GG18, two parties, derived path),
// after a keygen that is not timed.
func BenchmarkThreshold2of3SignDigest(b *testing.B) {
	k := sharedThresholdKey(b)
	ctx := context.Background()
	path := hd.Path{0, 1}
	pub, err := k.PublicKey(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var digest [32]byte
		digest[0], digest[1] = 1, byte(i)
		sig, err := k.SignDigest(ctx, digest, path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sig.Canonical(digest, pub); err != nil {
			b.Fatal(err)
		}
	}
}
