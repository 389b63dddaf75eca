package arith

import (
	"errors"
	"math/big"

	"filippo.io/bigmod"
)

// Constant-time arithmetic.
//
// Everything that touches a secret — an exponent, a base, or the factors of
// a modulus — goes through filippo.io/bigmod, the arithmetic behind Go's
// crypto/rsa (tss-lib v3 adopted it for the same reason). Its Montgomery
// multiplication, reduction and 4-bit-window exponentiation take time that
// depends only on the announced sizes of their operands, and its table
// lookups read every entry. math/big does not promise that: its division
// and Montgomery step branch on values, and its exponentiation indexes its
// table with exponent bits and skips leading zeros.
//
// bigmod leaks the sizes it is given, so sizes are fixed here by public
// facts: a modulus by its bit length (public for N, N², Ñ, and for a secret
// prime factor determined by N's), a secret exponent by the bit length of
// the public bound it was sampled below (never by its own length), a base
// by the size of the modulus it is reduced into.

// ctMod is a modulus prepared for bigmod.
type ctMod struct {
	m    *bigmod.Modulus
	size int // bytes
	bits int

	// trace, when a test sets it, records the modulus size and exponent
	// length of every exponentiation: they must not depend on secrets.
	trace *[]int
}

var errSize = errors.New("arith: value does not fit the size it was declared with")

// newCTMod prepares m > 1. Exponentiation needs an odd m; an even m (a
// group order, 2^K) only serves for reduction and multiplication.
func newCTMod(m *big.Int) (*ctMod, error) {
	if m == nil || m.Cmp(one) <= 0 {
		return nil, errors.New("arith: modulus must be greater than 1")
	}
	b := m.Bytes()
	mm, err := bigmod.NewModulus(b)
	clear(b)
	if err != nil {
		return nil, err
	}
	return &ctMod{m: mm, size: mm.Size(), bits: mm.BitLen()}, nil
}

// wideNat returns the big-endian bytes b as a Nat with enough limbs for
// their full length, ready to be reduced with Mod. Its size, not its value,
// is what the reduction's time depends on.
func wideNat(b []byte) *bigmod.Nat {
	if len(b) == 0 {
		b = []byte{0}
	}
	pow := make([]byte, len(b)+1) // 2^(8·len(b)), an even modulus above every value of b
	pow[0] = 1
	wm, err := bigmod.NewModulus(pow)
	if err != nil {
		return bigmod.NewNat() // unreachable: pow > 1
	}
	n, err := bigmod.NewNat().SetBytes(b, wm)
	if err != nil {
		return bigmod.NewNat() // unreachable: b < 2^(8·len(b))
	}
	return n
}

// reduce returns x mod m for 0 ≤ x < 2^(8·width) in time that depends on
// width, not on x. ok is false if x is negative or does not fit.
func (c *ctMod) reduce(x *big.Int, width int) (n *bigmod.Nat, ok bool) {
	if x == nil || x.Sign() < 0 || x.BitLen() > 8*width {
		return nil, false
	}
	b := x.FillBytes(make([]byte, width))
	w := wideNat(b)
	clear(b)
	n = bigmod.NewNat().Mod(w, c.m)
	clear(w.Bits())
	return n, true
}

// reducePublic returns x mod m for a public x (any sign, any length): the
// time depends on x's length.
func (c *ctMod) reducePublic(x, m *big.Int) *bigmod.Nat {
	if x.Sign() < 0 {
		x = new(big.Int).Mod(x, m)
	}
	n, _ := c.reduce(x, (x.BitLen()+7)/8)
	return n
}

// int returns x < m as a big.Int. math/big stores it without leading zero
// words, so its length in words shows in what is done with it afterwards.
func (c *ctMod) int(x *bigmod.Nat) *big.Int {
	b := x.Bytes(c.m)
	out := new(big.Int).SetBytes(b)
	clear(b)
	return out
}

// exp returns x^e mod m (m odd) for a reduced x and the big-endian
// exponent e; the time depends on len(e), not on its value.
func (c *ctMod) exp(x *bigmod.Nat, e []byte) *bigmod.Nat {
	if c.trace != nil {
		*c.trace = append(*c.trace, c.bits, len(e))
	}
	return bigmod.NewNat().Exp(x, e, c.m)
}

// fits reports whether 0 ≤ e < 2^bits.
func fits(e *big.Int, bits int) bool {
	return e != nil && bits >= 0 && e.Sign() >= 0 && e.BitLen() <= bits
}

// expBytes returns e as exactly ⌈bits/8⌉ big-endian bytes; ok is false if
// e is negative or longer than bits.
func expBytes(e *big.Int, bits int) ([]byte, bool) {
	if !fits(e, bits) {
		return nil, false
	}
	return e.FillBytes(make([]byte, (bits+7)/8)), true
}

// natOne returns 1 with the size of m.
func (c *ctMod) natOne() *bigmod.Nat {
	n, _ := c.reduce(one, 1)
	return n
}

func wipeNat(n *bigmod.Nat) {
	if n != nil {
		clear(n.Bits())
	}
}
