package secp

import (
	"crypto/rand"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func randomScalar(t testing.TB) secp256k1.ModNScalar {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	var k secp256k1.ModNScalar
	k.SetBytes(&b)
	return k
}

func TestMultiScalarMult_MatchesNaiveSum(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 31, 32, 100, 257} {
		ks := make([]secp256k1.ModNScalar, n)
		ps := make([]secp256k1.JacobianPoint, n)
		var want secp256k1.JacobianPoint
		for i := range ps {
			ks[i] = randomScalar(t)
			base := randomScalar(t)
			secp256k1.ScalarBaseMultNonConst(&base, &ps[i])
			ps[i].ToAffine()
			var term secp256k1.JacobianPoint
			secp256k1.ScalarMultNonConst(&ks[i], &ps[i], &term)
			secp256k1.AddNonConst(&want, &term, &want)
		}
		// Edge scalars: zero, one, n-1 (all-ones top bits).
		if n >= 3 {
			ks[0].SetInt(0)
			ks[1].SetInt(1)
			ks[2].SetInt(1).Negate()
			want = secp256k1.JacobianPoint{}
			for i := range ps {
				var term secp256k1.JacobianPoint
				secp256k1.ScalarMultNonConst(&ks[i], &ps[i], &term)
				secp256k1.AddNonConst(&want, &term, &want)
			}
		}
		got := MultiScalarMult(ks, ps)
		if !got.EquivalentNonConst(&want) {
			t.Fatalf("n=%d: multi-scalar multiplication differs from the naive sum", n)
		}
	}
}

func TestMultiScalarMult_RepeatedPoint(t *testing.T) {
	// The same point in several buckets exercises doubling inside additions.
	k := randomScalar(t)
	var p secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&k, &p)
	p.ToAffine()
	ks := []secp256k1.ModNScalar{randomScalar(t), randomScalar(t), randomScalar(t)}
	ks[1] = ks[0]
	ps := []secp256k1.JacobianPoint{p, p, p}
	var sum secp256k1.ModNScalar
	sum.Add(&ks[0]).Add(&ks[1]).Add(&ks[2])
	var want secp256k1.JacobianPoint
	secp256k1.ScalarMultNonConst(&sum, &p, &want)
	got := MultiScalarMult(ks, ps)
	if !got.EquivalentNonConst(&want) {
		t.Fatal("repeated points sum wrongly")
	}
}

func BenchmarkMultiScalarMult1000(b *testing.B) {
	ks := make([]secp256k1.ModNScalar, 1000)
	ps := make([]secp256k1.JacobianPoint, 1000)
	for i := range ps {
		ks[i] = randomScalar(b)
		base := randomScalar(b)
		secp256k1.ScalarBaseMultNonConst(&base, &ps[i])
		ps[i].ToAffine()
	}
	for b.Loop() {
		MultiScalarMult(ks, ps)
	}
}
