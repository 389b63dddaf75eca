package gg20

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

func TestPresign_SignsUnderCommitteeKey(t *testing.T) {
	for _, c := range []struct {
		name string
		n, m int
	}{{"2-of-3", 3, 2}, {"3-of-5", 5, 3}} {
		ks := keys(t, c.name)
		supersets := 0
		for _, signers := range subsets(c.n, c.m) {
			// Every quorum of exactly M signers, and the full committee,
			// always run. Of the sets in between, all run normally; under
			// -race (several times slower) or -short only the first does.
			if len(signers) > c.m && len(signers) < c.n {
				supersets++
				if (raceEnabled || testing.Short()) && supersets > 1 {
					continue
				}
			}
			t.Run(fmt.Sprintf("%s/%v", c.name, signers), func(t *testing.T) {
				pss := presign(t, ks, signers, nil)
				wantPub := pointBytes(t, ks[0].ECDSAPub.X(), ks[0].ECDSAPub.Y())
				id := pss[0].ID()
				for i, ps := range pss {
					if ps.ID() != id {
						t.Fatalf("signer %d has presignature ID %x, signer 0 has %x", i, ps.ID(), id)
					}
					if string(ps.PublicKey()) != string(wantPub) {
						t.Fatalf("signer %d: presignature for another public key", i)
					}
				}
				digest := digestOf("pay 1 BTC to " + fmt.Sprint(signers))
				shares := signAll(t, pss, digest)
				for i, ps := range pss {
					r, s, recID, err := ps.Combine(digest, shares)
					if err != nil {
						t.Fatalf("signer %d: Combine: %v", i, err)
					}
					checkSignature(t, wantPub, digest, r, s, recID)
				}
			})
		}
	}
}

func TestPresign_WithTweakSignsUnderDerivedKey(t *testing.T) {
	ks := keys(t, "2-of-3")
	tweak, _ := new(big.Int).SetString("5f2a6c0d9e3b1a7c4d8e2f6a0b9c3d7e1f5a2b6c9d0e4f8a1b5c2d6e9f0a3b7c", 16)
	pss := presign(t, ks, []int{0, 2}, tweak)
	y, err := secp.FromXY(ks[0].ECDSAPub.X(), ks[0].ECDSAPub.Y())
	if err != nil {
		t.Fatal(err)
	}
	want := y.Add(secp.BaseMult(tweak)).Bytes()
	if string(pss[0].PublicKey()) != string(want) {
		t.Fatal("presignature is not for y + eps*g")
	}
	if pss[0].Tweak().Cmp(tweak) != 0 {
		t.Fatal("presignature does not record the tweak")
	}
	digest := digestOf("derived")
	shares := signAll(t, pss, digest)
	r, s, recID, err := pss[1].Combine(digest, shares)
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, want, digest, r, s, recID)
}

func pointBytes(t testing.TB, x, y *big.Int) []byte {
	t.Helper()
	p, err := secp.FromXY(x, y)
	if err != nil {
		t.Fatal(err)
	}
	return p.Bytes()
}
