package tss

import (
	"crypto/rand"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/crypto/dlnproof"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/fixtures"
)

// BenchmarkSignValidation measures what validating one GG18 signing costs a
// party of a 2-of-3 key: a new validator (its CRT decryption key) and the
// checks of every message the other signer sends it, two CRT decryptions
// included. Compare with BenchmarkSign2of3, the whole signing.
//
//	go test -run '^$' -bench SignValidation ./tss/
func BenchmarkSignValidation(b *testing.B) {
	shares := fixtureShares(b, "2-of-3", 2)
	sp := newSignPair(b, shares, 0, 1)
	if err, signed := sp.finish(); err != nil || !signed {
		b.Fatalf("honest signing: %v", err)
	}
	defer sp.wipe()
	type parsed struct {
		from *member
		msg  tsslib.ParsedMessage
	}
	var msgs []parsed
	for _, in := range sp.toA {
		from, _, _, pm, err := sp.p[0].parse(in)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, parsed{from, pm})
	}
	members := make([]*member, 0, 2)
	for _, m := range sp.p[0].members {
		members = append(members, m)
	}
	b.ResetTimer()
	for b.Loop() {
		v, err := newSignValidator(shares[0], members, shares[0].Self)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := v.validate(m.from, m.msg); err != nil {
				b.Fatal(err)
			}
		}
		v.wipe()
	}
}

// BenchmarkRingChecks measures the checks of one party's keygen round-1
// (or resharing round-2) parameters: both moduli (a gcd with the primes
// below 2¹⁶ and a Baillie–PSW test each), h1, h2, and the shape of both
// DLN proofs. tss-lib then verifies the DLN proofs: 2·128 exponentiations.
func BenchmarkRingChecks(b *testing.B) {
	pp, err := fixtures.PreParams(0)
	if err != nil {
		b.Fatal(err)
	}
	dln := dlnproof.NewDLNProof(pp.H1i, pp.H2i, pp.Alpha, pp.P, pp.Q, pp.NTildei, rand.Reader)
	parts, err := dln.Serialize()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := checkRing(pp.PaillierSK.N, pp.NTildei, pp.H1i, pp.H2i); err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			if err := checkDLNProof(parts, pp.NTildei, i); err != nil {
				b.Fatal(err)
			}
		}
	}
}
