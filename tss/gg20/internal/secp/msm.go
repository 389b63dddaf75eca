package secp

import (
	"math/bits"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// MultiScalarMult returns Σ kᵢ·Pᵢ with Pippenger's bucket method: the
// scalars are cut into c-bit windows; in each window every point is added
// to the bucket of its digit, and the buckets are combined by running sums,
// so n points cost about (256/c)·(n + 2^(c+1)) additions instead of n full
// scalar multiplications. Points must be normalized (as decoded or after
// ToAffine) and ks and ps of equal length. It is not constant-time: use it
// only on public values (signature verification).
func MultiScalarMult(ks []secp256k1.ModNScalar, ps []secp256k1.JacobianPoint) secp256k1.JacobianPoint {
	var result secp256k1.JacobianPoint
	n := len(ps)
	if n == 0 || len(ks) != n {
		return result
	}
	c := windowBits(n)
	digits := make([][32]byte, n)
	for i := range ks {
		digits[i] = ks[i].Bytes() // big-endian
	}
	buckets := make([]secp256k1.JacobianPoint, (1<<c)-1)
	windows := (256 + c - 1) / c
	for w := windows - 1; w >= 0; w-- {
		if w != windows-1 {
			for j := 0; j < c; j++ {
				secp256k1.DoubleNonConst(&result, &result)
			}
		}
		for b := range buckets {
			buckets[b] = secp256k1.JacobianPoint{}
		}
		for i := range ps {
			if d := window(&digits[i], w*c, c); d != 0 {
				secp256k1.AddNonConst(&buckets[d-1], &ps[i], &buckets[d-1])
			}
		}
		// Σ d·bucket[d] = Σ_d (Σ_{e≥d} bucket[e]).
		var running, sum secp256k1.JacobianPoint
		for b := len(buckets) - 1; b >= 0; b-- {
			secp256k1.AddNonConst(&running, &buckets[b], &running)
			secp256k1.AddNonConst(&sum, &running, &sum)
		}
		secp256k1.AddNonConst(&result, &sum, &result)
	}
	return result
}

// windowBits picks the window size that minimises the cost above.
func windowBits(n int) int {
	if n < 32 {
		return 3
	}
	c := bits.Len(uint(n)) - 2 // about log2(n) - 1
	return min(max(c, 3), 12)
}

// window extracts the c bits of the big-endian 256-bit value b starting at
// bit position from (0 = least significant).
func window(b *[32]byte, from, c int) int {
	v := 0
	for k := c - 1; k >= 0; k-- {
		pos := from + k
		if pos >= 256 {
			continue
		}
		bit := (b[31-pos/8] >> (pos % 8)) & 1
		v = v<<1 | int(bit)
	}
	return v
}
