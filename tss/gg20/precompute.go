package gg20

import (
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
)

// Precomputed holds the checked and prepared ring-Pedersen parameters
// (Ñⱼ, h₁ⱼ, h₂ⱼ) of the members of a committee: every proof a party makes
// for another party commits against that party's parameters. Preparing them
// (validation, Montgomery constants) costs far less than one commitment per
// member; a run without Precomputed prepares what it needs itself, so
// passing one only saves that cost. (Earlier versions kept fixed-base tables
// here; the prover's commitments are now constant-time exponentiations,
// which have no use for them.)
//
// Precomputed holds public values only. It is safe for concurrent use by any
// number of runs; build it once per key with [Precompute].
type Precomputed struct {
	rp map[string]*arith.RingPedersen // by Ñ in hex
}

// Precompute prepares the parameters of every other member of key's committee.
// Members with invalid parameters are skipped ([NewPresigner] reports them).
func Precompute(key *keygen.LocalPartySaveData) *Precomputed {
	pc := &Precomputed{rp: map[string]*arith.RingPedersen{}}
	if key == nil {
		return pc
	}
	for j, nt := range key.NTildej {
		if nt == nil || j >= len(key.H1j) || j >= len(key.H2j) || (key.NTildei != nil && nt.Cmp(key.NTildei) == 0) {
			continue
		}
		rp, err := arith.NewRingPedersen(nt, key.H1j[j], key.H2j[j])
		if err != nil {
			continue
		}
		pc.rp[nt.Text(16)] = rp
	}
	return pc
}

// lookup returns the prepared parameters (nt, h1, h2), or nil.
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
