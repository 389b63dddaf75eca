package gg20

import (
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
)

// Precomputed holds fixed-base tables for the ring-Pedersen parameters
// (Ñⱼ, h₁ⱼ, h₂ⱼ) of the members of a committee. Every proof a party makes
// for another party commits against that party's parameters, and the tables
// make those commitments about twice as fast; building them costs about as
// much as two such commitments per member. A run without Precomputed builds
// the tables it needs itself, so passing one only saves that cost.
//
// Precomputed holds public values only. It is safe for concurrent use by any
// number of runs; build it once per key with Precompute.
type Precomputed struct {
	rp map[string]*arith.RingPedersen // by Ñ in hex
}

// Precompute builds the tables for every other member of key's committee.
// Members with invalid parameters are skipped (NewPresigner reports them).
func Precompute(key *keygen.LocalPartySaveData) *Precomputed {
	pc := &Precomputed{rp: map[string]*arith.RingPedersen{}}
	if key == nil {
		return pc
	}
	for j, nt := range key.NTildej {
		if nt == nil || j >= len(key.H1j) || j >= len(key.H2j) || (key.NTildei != nil && nt.Cmp(key.NTildei) == 0) {
			continue
		}
		rp, err := arith.NewRingPedersenPrecomputed(nt, key.H1j[j], key.H2j[j])
		if err != nil {
			continue
		}
		pc.rp[nt.Text(16)] = rp
	}
	return pc
}

// lookup returns the tables for (nt, h1, h2), or nil.
func (pc *Precomputed) lookup(nt, h1, h2 *big.Int) *arith.RingPedersen {
	if pc == nil || nt == nil || h1 == nil || h2 == nil {
		return nil
	}
	rp := pc.rp[nt.Text(16)]
	if rp == nil || rp.H1.Cmp(h1) != 0 || rp.H2.Cmp(h2) != 0 {
		return nil
	}
	return rp
}
