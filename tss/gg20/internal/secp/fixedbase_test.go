package secp

import (
	"crypto/rand"
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
	scalars := []secp256k1.ModNScalar{zero, one, minusOne}
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
