package secp

import (
	"crypto/rand"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

func TestFixedBase_MulMatchesScalarMult(t *testing.T) {
	k := randomScalar(t)
	var pj secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&k, &pj)
	p := fromJacobian(&pj)
	fb := NewFixedBase(p)
	var zero, one, minusOne secp256k1.ModNScalar
	one.SetInt(1)
	minusOne.SetInt(1).Negate()
	scalars := append([]secp256k1.ModNScalar{zero, one, minusOne}, edgeScalars(t)...)
	for i := 0; i < 20; i++ {
		scalars = append(scalars, randomScalar(t))
	}
	for i, s := range scalars {
		var want secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(&s, &p.j, &want)
		got := fb.Mul(&s)
		if !got.EquivalentNonConst(&want) {
			t.Fatalf("scalar %d: fixed-base product differs", i)
		}
	}
}

// edgeScalars are scalars whose 12-bit windows sit on the recoding's
// boundaries: every window 0x800 (the most negative digit, a carry into
// each next window), every window 0x7ff (the largest positive digit), every
// window 0xfff (a carry chain), and single windows set.
func edgeScalars(t *testing.T) []secp256k1.ModNScalar {
	t.Helper()
	var out []secp256k1.ModNScalar
	for _, w := range []int64{0x800, 0x7ff, 0xfff, 0x801} {
		v := new(big.Int)
		for j := 0; j < fbWindows; j++ {
			v.Lsh(v, fbWidth).Or(v, big.NewInt(w))
		}
		out = append(out, scalarOfBig(v))
	}
	for j := 0; j < fbWindows; j++ {
		out = append(out, scalarOfBig(new(big.Int).Lsh(big.NewInt(0x800), uint(fbWidth*j))))
	}
	return out
}

func scalarOfBig(v *big.Int) secp256k1.ModNScalar {
	var s secp256k1.ModNScalar
	b := new(big.Int).Mod(v, Q).FillBytes(make([]byte, 32))
	s.SetByteSlice(b)
	return s
}

func TestRecode(t *testing.T) {
	scalars := edgeScalars(t)
	for i := 0; i < 200; i++ {
		scalars = append(scalars, randomScalar(t))
	}
	var minusOne secp256k1.ModNScalar
	minusOne.SetInt(1).Negate()
	scalars = append(scalars, minusOne)
	for i, k := range scalars {
		digits := recode(&k)
		sum := new(big.Int)
		for j := fbWindows - 1; j >= 0; j-- {
			if digits[j] < -fbHalf || digits[j] >= fbHalf {
				t.Fatalf("scalar %d: digit %d = %d out of range", i, j, digits[j])
			}
			sum.Lsh(sum, fbWidth).Add(sum, big.NewInt(int64(digits[j])))
		}
		kb := k.Bytes()
		if want := new(big.Int).SetBytes(kb[:]); sum.Cmp(want) != 0 {
			t.Fatalf("scalar %d: digits sum to %x, want %x", i, sum, want)
		}
	}
}

func TestFixedBase_VerifyECDSAAgreesWithDcrd(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := Parse(priv.PubKey().SerializeCompressed())
	if err != nil {
		t.Fatal(err)
	}
	fb := NewFixedBase(pub)
	for i := 0; i < 50; i++ {
		var hash [32]byte
		rand.Read(hash[:])
		sig := ecdsa.Sign(priv, hash[:])
		r, s := sig.R(), sig.S()
		if !fb.VerifyECDSA(hash[:], &r, &s) {
			t.Fatalf("valid signature %d refused", i)
		}
		// Flip the hash, r or s: dcrd and the table must both refuse.
		bad := hash
		bad[i%32] ^= 1
		if fb.VerifyECDSA(bad[:], &r, &s) || ecdsa.NewSignature(&r, &s).Verify(bad[:], priv.PubKey()) {
			t.Fatalf("signature %d verifies over another hash", i)
		}
		var r2 secp256k1.ModNScalar
		r2.Set(&r).Add(&one)
		if fb.VerifyECDSA(hash[:], &r2, &s) {
			t.Fatalf("signature %d verifies with another r", i)
		}
		var neg secp256k1.ModNScalar
		neg.NegateVal(&s)
		if fb.VerifyECDSA(hash[:], &r, &neg) != ecdsa.NewSignature(&r, &neg).Verify(hash[:], priv.PubKey()) {
			t.Fatalf("signature %d: -s judged differently from dcrd", i)
		}
	}
	var zero secp256k1.ModNScalar
	if fb.VerifyECDSA(make([]byte, 32), &zero, &one) {
		t.Fatal("r = 0 accepted")
	}
}

var one = func() secp256k1.ModNScalar { var o secp256k1.ModNScalar; o.SetInt(1); return o }()

func BenchmarkFixedBaseVerify(b *testing.B) {
	priv, _ := secp256k1.GeneratePrivateKey()
	pub, _ := Parse(priv.PubKey().SerializeCompressed())
	fb := NewFixedBase(pub)
	var hash [32]byte
	rand.Read(hash[:])
	sig := ecdsa.Sign(priv, hash[:])
	r, s := sig.R(), sig.S()
	b.Run("fixed-base", func(b *testing.B) {
		for b.Loop() {
			fb.VerifyECDSA(hash[:], &r, &s)
		}
	})
	b.Run("dcrd", func(b *testing.B) {
		for b.Loop() {
			sig.Verify(hash[:], priv.PubKey())
		}
	})
	b.Run("build-table", func(b *testing.B) {
		for b.Loop() {
			NewFixedBase(pub)
		}
	})
}

func randomScalar(t testing.TB) secp256k1.ModNScalar {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	var k secp256k1.ModNScalar
	k.SetBytes(&b)
	return k
}

// TestXModQEquals checks the inversion-free comparison of a Jacobian
// point's x with r, including the branch for an x in [q, p) that random
// signatures never reach: such a point is built directly and put in
// Jacobian form with a random Z.
func TestXModQEquals(t *testing.T) {
	jacobian := func(x, y *secp256k1.FieldVal) secp256k1.JacobianPoint {
		var z secp256k1.FieldVal
		zs := randomScalar(t)
		zb := zs.Bytes()
		z.SetBytes(&zb)
		if z.IsZero() {
			z.SetInt(1)
		}
		var z2, z3 secp256k1.FieldVal
		z2.SquareVal(&z)
		z3.Mul2(&z2, &z)
		var p secp256k1.JacobianPoint
		p.X.Mul2(x, &z2).Normalize()
		p.Y.Mul2(y, &z3).Normalize()
		p.Z.Set(&z)
		return p
	}
	scalarOf := func(f *secp256k1.FieldVal) secp256k1.ModNScalar {
		var s secp256k1.ModNScalar
		b := f.Bytes()
		s.SetBytes(b) // reduces mod q
		return s
	}
	// An ordinary point: x < q.
	k := randomScalar(t)
	var pj secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&k, &pj)
	pj.ToAffine()
	p := jacobian(&pj.X, &pj.Y)
	r := scalarOf(&pj.X)
	if !xModQEquals(&p, &r) {
		t.Fatal("x of an ordinary point not matched")
	}
	var r1 secp256k1.ModNScalar
	r1.Set(&r).Add(&one)
	if xModQEquals(&p, &r1) {
		t.Fatal("x + 1 matched")
	}
	// A point with q < x < p: try x = q+1, q+2, … until x³ + 7 is a
	// square.
	var x, y secp256k1.FieldVal
	x.Set(&orderField).Add(new(secp256k1.FieldVal).SetInt(1)).Normalize()
	for !secp256k1.DecompressY(&x, false, &y) {
		x.Add(new(secp256k1.FieldVal).SetInt(1)).Normalize()
	}
	high := jacobian(&x, &y)
	rBig := scalarOf(&x) // x − q
	if !xModQEquals(&high, &rBig) {
		t.Fatal("x ≥ q: x − q not matched")
	}
	var rBig1 secp256k1.ModNScalar
	rBig1.Set(&rBig).Add(&one)
	if xModQEquals(&high, &rBig1) {
		t.Fatal("x ≥ q: x − q + 1 matched")
	}
	// r = 0 is not x mod q here (x > q); it must not match either.
	var zero secp256k1.ModNScalar
	if xModQEquals(&high, &zero) {
		t.Fatal("x ≥ q: r = 0 matched")
	}
}
