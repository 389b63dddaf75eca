package secp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ctScalars are the scalars every constant-time routine is checked with:
// the edges of the range (0, 1, 2, q−1, q, q+1, 2^256−1), small values,
// single bits, patterns of all 4-bit digits, negative values, scalars
// longer than 256 bits, and random ones.
func ctScalars(t *testing.T) []*big.Int {
	t.Helper()
	one := big.NewInt(1)
	out := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(15), big.NewInt(16), big.NewInt(17),
		new(big.Int).Sub(Q, one), new(big.Int).Sub(Q, big.NewInt(2)), new(big.Int).Set(Q), new(big.Int).Add(Q, one),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one),
		new(big.Int).Lsh(one, 255),
		big.NewInt(-1), new(big.Int).Neg(Q), new(big.Int).Sub(big.NewInt(-5), Q),
		new(big.Int).Lsh(Q, 300), // ≡ 0, 556 bits
	}
	for _, pat := range []byte{0x01, 0x0f, 0xf0, 0x11, 0x80, 0xfe} {
		out = append(out, new(big.Int).SetBytes(bytes.Repeat([]byte{pat}, 32)))
	}
	for i := 0; i < 256; i += 51 {
		out = append(out, new(big.Int).Lsh(one, uint(i)))
	}
	for _, bits := range []int{256, 256, 768} {
		k, err := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bits)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// ctPoints are the points multiplied: g, −g, h, a random point and the
// identity.
func ctPoints(t *testing.T) []*Point {
	t.Helper()
	h, _ := HashToPoint([]byte("secp ct test"))
	r := BaseMultVarTime(randomBig(t))
	return []*Point{Generator(), Generator().Neg(), h, r, Identity()}
}

func randomBig(t *testing.T) *big.Int {
	t.Helper()
	k, err := rand.Int(rand.Reader, Q)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMul_MatchesVariableTime(t *testing.T) {
	for pi, p := range ctPoints(t) {
		for _, k := range ctScalars(t) {
			if got, want := p.Mul(k), p.MulVarTime(k); !got.Equal(want) {
				t.Fatalf("point %d, scalar %x: Mul differs from MulVarTime", pi, k)
			}
		}
	}
}

func TestBaseMult_MatchesVariableTime(t *testing.T) {
	for _, k := range ctScalars(t) {
		if got, want := BaseMult(k), BaseMultVarTime(k); !got.Equal(want) {
			t.Fatalf("scalar %x: BaseMult differs from BaseMultVarTime", k)
		}
	}
}

func TestCommit_MatchesVariableTime(t *testing.T) {
	scalars := ctScalars(t)
	for _, h := range ctPoints(t) {
		for i, a := range scalars {
			b := scalars[(i*7+3)%len(scalars)]
			want := BaseMultVarTime(a).Add(h.MulVarTime(b))
			if got := Commit(a, h, b); !got.Equal(want) {
				t.Fatalf("a = %x, b = %x: Commit differs from a·g + b·h", a, b)
			}
		}
	}
	// h = g and b = −a gives the identity; h = −g with b = a as well.
	a := randomBig(t)
	if !Commit(a, Generator(), new(big.Int).Neg(a)).IsIdentity() || !Commit(a, Generator().Neg(), a).IsIdentity() {
		t.Fatal("a·g − a·g is not the identity")
	}
}

// TestAdd_CompleteFormulas checks the exceptional cases of affine
// addition — P + P, P + (−P), the identity on either side — against dcrd.
func TestAdd_CompleteFormulas(t *testing.T) {
	for _, p := range ctPoints(t) {
		for _, r := range append(ctPoints(t), p, p.Neg()) {
			var want secp256k1.JacobianPoint
			secp256k1.AddNonConst(&p.j, &r.j, &want)
			if got := p.Add(r); !got.Equal(fromJacobian(&want)) {
				t.Fatal("Add differs from dcrd's addition")
			}
		}
		// Doubling through proj.double and through add.
		a := toProj(p)
		var d proj
		d.double(&a)
		if !d.toPoint().Equal(p.MulVarTime(big.NewInt(2))) {
			t.Fatal("double differs from 2·P")
		}
	}
	g := Generator()
	if !g.Add(g.Neg()).IsIdentity() || !Identity().Add(Identity()).IsIdentity() || !Sum().IsIdentity() {
		t.Fatal("identity not produced")
	}
	if !Sum(g, g, g).Equal(BaseMultVarTime(big.NewInt(3))) {
		t.Fatal("g + g + g != 3·g")
	}
}

// TestLinearCombination_SameOperationsForEveryScalar approximates "does
// not branch on the scalar": the sequence of doublings, table lookups and
// additions is recorded for scalars of every Hamming weight and must be
// the same for all of them. (Each recorded step is itself branch-free:
// complete formulas, a lookup that reads every table entry.)
func TestLinearCombination_SameOperationsForEveryScalar(t *testing.T) {
	g := toProj(Generator())
	tb := newTable(&g)
	var want []byte
	for _, k := range ctScalars(t) {
		for _, two := range []bool{false, true} {
			s := secretScalar(k)
			tables, scalars := []*table{tb}, []*[32]byte{&s}
			if two {
				s2 := secretScalar(new(big.Int).Not(k))
				tables, scalars = append(tables, tb), append(scalars, &s2)
			}
			tr := &trace{}
			linearCombination(tables, scalars, tr)
			ops := tr.ops
			if two {
				ops = onePointOps(ops)
			}
			if want == nil {
				want = ops
				if len(want) != 64*(4+2) {
					t.Fatalf("%d operations for one scalar, want 64 windows × (4 doublings, 1 lookup, 1 addition)", len(want))
				}
				continue
			}
			if !bytes.Equal(ops, want) {
				t.Fatalf("scalar %x (two points: %v): operation sequence differs", k, two)
			}
		}
	}
}

// onePointOps maps the trace of a two-point combination to the one-point
// shape by dropping the second point's lookup and addition in each window,
// after checking they are there.
func onePointOps(ops []byte) []byte {
	var out []byte
	for i := 0; i < len(ops); {
		out = append(out, ops[i:i+6]...)
		if i+8 > len(ops) || string(ops[i+6:i+8]) != "LA" {
			return append(out, []byte(fmt.Sprint("malformed at ", i))...)
		}
		i += 8
	}
	return out
}

func TestSecretScalar_ReducesLikeBigInt(t *testing.T) {
	for _, k := range ctScalars(t) {
		want := new(big.Int).Mod(k, Q).FillBytes(make([]byte, 32))
		if got := secretScalar(k); !bytes.Equal(got[:], want) {
			t.Fatalf("secretScalar(%x) = %x, want %x", k, got, want)
		}
	}
}

func BenchmarkScalarMult(b *testing.B) {
	k, _ := rand.Int(rand.Reader, Q)
	p := BaseMultVarTime(k)
	h, _ := HashToPoint([]byte("bench"))
	b.Run("Mul", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p.Mul(k)
		}
	})
	b.Run("MulVarTime", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p.MulVarTime(k)
		}
	})
	b.Run("BaseMult", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			BaseMult(k)
		}
	})
	b.Run("BaseMultVarTime", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			BaseMultVarTime(k)
		}
	})
	b.Run("Commit", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Commit(k, h, k)
		}
	})
}

// TestAddDouble_AnyProjectiveRepresentation feeds add and double points
// (λX : λY : λZ) with λ = −1 and other large λ, so that every coordinate
// uses the full width of its field words (the worst case for the
// magnitude bounds noted in ct.go), and checks the results against dcrd.
func TestAddDouble_AnyProjectiveRepresentation(t *testing.T) {
	var minusOne secp256k1.FieldVal
	minusOne.SetInt(1).Negate(1).Normalize()
	lambdas := []*secp256k1.FieldVal{&minusOne}
	for _, b := range [][]byte{bytes.Repeat([]byte{0xff}, 31), bytes.Repeat([]byte{0xfe, 0xff}, 16)} {
		var l secp256k1.FieldVal
		l.SetByteSlice(b)
		lambdas = append(lambdas, &l)
	}
	scale := func(p *Point, l *secp256k1.FieldVal) proj {
		r := toProj(p)
		r.x.Mul(l).Normalize()
		r.y.Mul(l).Normalize()
		r.z.Mul(l).Normalize()
		return r
	}
	pts := ctPoints(t)
	for _, l := range lambdas {
		for _, p := range pts {
			for _, q := range append(pts, p, p.Neg()) {
				a, b := scale(p, l), scale(q, l)
				var s, d proj
				s.add(&a, &b)
				d.double(&a)
				var want secp256k1.JacobianPoint
				secp256k1.AddNonConst(&p.j, &q.j, &want)
				if !s.toPoint().Equal(fromJacobian(&want)) {
					t.Fatal("add of scaled representations differs from dcrd")
				}
				if !d.toPoint().Equal(p.MulVarTime(big.NewInt(2))) {
					t.Fatal("double of a scaled representation differs from 2·P")
				}
			}
		}
	}
}
