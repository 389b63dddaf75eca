package arith

import (
	"math/big"
	"math/bits"
)

// Rows h of the Lim–Lee comb; each base gets a table of 2^h entries. Tables
// built per run use 8 rows (64 KiB per base for a 2048-bit modulus); tables
// kept across runs use 10 (256 KiB per base, about 20% faster commitments).
const (
	combRowsRun    = 8
	combRowsShared = 10
)

// comb computes products of powers of fixed bases b₁..b_k modulo m with the
// Lim–Lee fixed-base comb (Lim & Lee, CRYPTO '94). An exponent of up to
// h·a bits is cut into h rows of a bits; the table of base b holds
// ∏_{i∈J} b^{2^{i·a}} for every subset J of the rows, so one column of all
// rows costs one multiplication, and all bases share the a squarings.
//
// For the ring-Pedersen commitments h₁^x·h₂^r mod Ñ with exponents of about
// 2800 bits this is about four times faster than two calls to big.Int.Exp.
// The tables depend only on public values (or, for a CRT factor, on the
// owner's secret factor; see RingPedersen.Wipe).
type comb struct {
	m      *big.Int
	h, a   int          // rows, columns
	tables [][]*big.Int // per base, 1<<h entries; entry 0 unused
}

// newComb builds tables with h rows for the bases modulo m for exponents of
// up to maxBits bits.
func newComb(m *big.Int, bases []*big.Int, maxBits, h int) *comb {
	c := &comb{m: m, h: h, a: (maxBits + h - 1) / h}
	sq := new(big.Int)
	q := new(big.Int)
	for _, b := range bases {
		rows := make([]*big.Int, h)
		rows[0] = new(big.Int).Mod(b, m)
		for i := 1; i < h; i++ {
			x := new(big.Int).Set(rows[i-1])
			for j := 0; j < c.a; j++ {
				sq.Mul(x, x)
				q.QuoRem(sq, m, x)
			}
			rows[i] = x
		}
		t := make([]*big.Int, 1<<h)
		for j := 1; j < len(t); j++ {
			low := bits.TrailingZeros(uint(j))
			rest := j &^ (1 << low)
			if rest == 0 {
				t[j] = rows[low]
				continue
			}
			x := new(big.Int).Mul(t[rest], rows[low])
			t[j] = x.Mod(x, m)
		}
		c.tables = append(c.tables, t)
	}
	return c
}

// maxBits returns the longest exponent exp accepts.
func (c *comb) maxBits() int { return c.a * c.h }

// exp returns ∏ b_k^{e_k} mod m for exponents 0 ≤ e_k < 2^maxBits (one per
// base, in order).
func (c *comb) exp(exps ...*big.Int) *big.Int {
	acc := big.NewInt(1)
	tmp, q := new(big.Int), new(big.Int)
	started := false
	for t := c.a - 1; t >= 0; t-- {
		if started {
			tmp.Mul(acc, acc)
			q.QuoRem(tmp, c.m, acc)
		}
		for k, e := range exps {
			idx := 0
			for i := 0; i < c.h; i++ {
				idx |= int(e.Bit(i*c.a+t)) << i
			}
			if idx != 0 {
				tmp.Mul(acc, c.tables[k][idx])
				q.QuoRem(tmp, c.m, acc)
				started = true
			}
		}
	}
	return acc
}

// wipe overwrites the tables.
func (c *comb) wipe() {
	for _, t := range c.tables {
		for _, v := range t {
			WipeInt(v)
		}
	}
	c.tables = nil
}
