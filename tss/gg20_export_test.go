package tss

import (
	"math/big"
	"slices"
)

// GG20SignerOrder returns parties in the order GG20 presigning gives the
// signers of key keyID in epoch (by share ID): a party's position there is
// its signer index, which decides where its entries sit in a GG20
// broadcast.
func GG20SignerOrder(keyID string, epoch uint64, parties []PartyID) ([]PartyID, error) {
	ids := make(map[PartyID]*big.Int, len(parties))
	for _, p := range parties {
		id, err := deriveShareID(keyID, epoch, p)
		if err != nil {
			return nil, err
		}
		ids[p] = id
	}
	out := slices.Clone(parties)
	slices.SortFunc(out, func(a, b PartyID) int { return ids[a].Cmp(ids[b]) })
	return out, nil
}
