package gg20

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

// gg18Sign signs digest with tss-lib v2.0.2's own (GG18) signing protocol,
// all parties in this process, and returns the signature data.
func gg18Sign(tb testing.TB, ks []*keygen.LocalPartySaveData, signers []int, digest []byte) (*common.SignatureData, error) {
	m, err := messageScalar(digest)
	if err != nil {
		return nil, err
	}
	unsorted := make(tss.UnSortedPartyIDs, len(signers))
	byKey := map[string]*keygen.LocalPartySaveData{}
	for i, s := range signers {
		id := fmt.Sprint(s + 1)
		unsorted[i] = tss.NewPartyID(id, "P"+id, ks[s].ShareID)
		byKey[ks[s].ShareID.String()] = ks[s]
	}
	ids := tss.SortPartyIDs(unsorted)
	peerCtx := tss.NewPeerContext(ids)
	n := len(ids)
	outCh := make(chan tss.Message, 16*n*n)
	endCh := make(chan *common.SignatureData, n)
	errCh := make(chan error, 16*n*n)
	parties := make([]tss.Party, n)
	for i, id := range ids {
		params := tss.NewParameters(tss.S256(), peerCtx, id, n, n-1)
		parties[i] = signing.NewLocalParty(m, params, *byKey[id.KeyInt().String()], outCh, endCh)
	}
	for _, p := range parties {
		go func(p tss.Party) {
			if err := p.Start(); err != nil {
				errCh <- err
			}
		}(p)
	}
	deliver := func(p tss.Party, msg tss.Message) {
		bz, _, err := msg.WireBytes()
		if err != nil {
			errCh <- err
			return
		}
		parsed, err := tss.ParseWireMessage(bz, msg.GetFrom(), msg.IsBroadcast())
		if err != nil {
			errCh <- err
			return
		}
		if _, err := p.Update(parsed); err != nil {
			errCh <- err
		}
	}
	var sig *common.SignatureData
	for done := 0; done < n; {
		select {
		case err := <-errCh:
			return nil, err
		case msg := <-outCh:
			if to := msg.GetTo(); to == nil {
				for _, p := range parties {
					if p.PartyID().Index != msg.GetFrom().Index {
						go deliver(p, msg)
					}
				}
			} else {
				for _, dst := range to {
					go deliver(parties[dst.Index], msg)
				}
			}
		case s := <-endCh:
			sig = s
			done++
		}
	}
	if sig == nil {
		return nil, errors.New("no signature")
	}
	return sig, nil
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
