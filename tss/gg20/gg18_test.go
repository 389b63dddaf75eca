package gg20

import (
	"context"
	"math/big"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// gg18Sign signs digest with tss-lib v2.0.2's own (GG18) signing protocol,
// all parties in this process (internal/rawtss), and returns the signature
// data. signers are indexes into ks; exactly threshold+1 of them sign.
func gg18Sign(tb testing.TB, ks []*keygen.LocalPartySaveData, signers []int, digest []byte) (*common.SignatureData, error) {
	m, err := messageScalar(digest)
	if err != nil {
		return nil, err
	}
	sigs, err := rawtss.Sign(context.Background(), ks, len(signers)-1, signers, m, nil)
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

func TestGG18AndGG20_SignUnderTheSamePublicKey(t *testing.T) {
	ks := keys(t, "2-of-3")
	pub := pointBytes(t, ks[0].ECDSAPub.X(), ks[0].ECDSAPub.Y())
	digest := digestOf("same key, two protocols")

	sig18, err := gg18Sign(t, ks, []int{1, 2}, digest)
	if err != nil {
		t.Fatalf("tss-lib GG18 signing: %v", err)
	}
	r18, s18 := new(big.Int).SetBytes(sig18.R), new(big.Int).SetBytes(sig18.S)
	checkSignature(t, pub, digest, r18, s18, sig18.SignatureRecovery[0])

	pss := presign(t, ks, []int{1, 2}, nil)
	r20, s20, rec20, err := pss[0].Combine(digest, signAll(t, pss, digest))
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, pub, digest, r20, s20, rec20)
}
