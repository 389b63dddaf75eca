package secp

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func TestHashToPoint_IsOnCurveAndNotG(t *testing.T) {
	h, ctr := HashToPoint([]byte("keyquorum/gg20/generator-h/secp256k1/v1"))
	if h.IsIdentity() || h.Equal(Generator()) || h.Equal(Generator().Neg()) {
		t.Fatal("h is the identity or ±g")
	}
	if !h.PublicKey().IsOnCurve() {
		t.Fatal("h is not on the curve")
	}
	if h.YIsOdd() {
		t.Fatal("h must have even y")
	}
	again, ctr2 := HashToPoint([]byte("keyquorum/gg20/generator-h/secp256k1/v1"))
	if !again.Equal(h) || ctr != ctr2 {
		t.Fatal("HashToPoint is not deterministic")
	}
	other, _ := HashToPoint([]byte("another tag"))
	if other.Equal(h) {
		t.Fatal("different tags gave the same point")
	}
}

func TestPoint_ArithmeticAndEncoding(t *testing.T) {
	g := Generator()
	a, b := big.NewInt(12345), big.NewInt(67890)
	if !BaseMult(a).Add(BaseMult(b)).Equal(BaseMult(new(big.Int).Add(a, b))) {
		t.Fatal("a·g + b·g != (a+b)·g")
	}
	if !g.Mul(a).Mul(b).Equal(BaseMult(new(big.Int).Mul(a, b))) {
		t.Fatal("(a·g)·b != (ab)·g")
	}
	if !g.Add(g.Neg()).IsIdentity() || !BaseMult(Q).IsIdentity() || !Sum().IsIdentity() {
		t.Fatal("identity not produced")
	}
	if !BaseMult(new(big.Int).Neg(a)).Equal(BaseMult(a).Neg()) {
		t.Fatal("negative scalars are not reduced mod q")
	}
	p := BaseMult(a)
	q, err := Parse(p.Bytes())
	if err != nil || !q.Equal(p) {
		t.Fatalf("Parse(Bytes) round trip failed: %v", err)
	}
	x, y := p.XY()
	q2, err := FromXY(x, y)
	if err != nil || !q2.Equal(p) {
		t.Fatalf("FromXY(XY) round trip failed: %v", err)
	}
	// Rejections.
	if _, err := Parse(Identity().Bytes()); err == nil {
		t.Fatal("Parse accepted the identity encoding")
	}
	if _, err := Parse(secp256k1.NewPublicKey(new(secp256k1.FieldVal).SetInt(1), new(secp256k1.FieldVal).SetInt(1)).SerializeUncompressed()); err == nil {
		t.Fatal("Parse accepted an uncompressed encoding")
	}
	bad := bytes.Clone(p.Bytes())
	bad[0] = 4
	if _, err := Parse(bad); err == nil {
		t.Fatal("Parse accepted a wrong prefix")
	}
	notOnCurve := append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...) // x ≥ p
	if _, err := Parse(notOnCurve); err == nil {
		t.Fatal("Parse accepted x >= p")
	}
	if _, err := FromXY(x, new(big.Int).Add(y, big.NewInt(1))); err == nil {
		t.Fatal("FromXY accepted a point off the curve")
	}
}
