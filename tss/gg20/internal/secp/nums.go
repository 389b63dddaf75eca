package secp

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// HashToPoint maps tag to a curve point by try-and-increment: for
// counter = 0, 1, 2, ... it takes x = SHA-256(tag ‖ counter as 4 big-endian
// bytes) and returns the first (x, y) on the curve with even y. Nobody knows
// the discrete logarithm of the result with respect to g (a "nothing up my
// sleeve" point), which is what Pedersen commitments g^a·h^b need for their
// binding property. It also returns the counter that succeeded.
//
// About half of all x are valid, so the loop ends after a few tries; the
// 2³² bound is never reached in practice.
func HashToPoint(tag []byte) (*Point, uint32) {
	for ctr := uint32(0); ; ctr++ {
		h := sha256.New()
		h.Write(tag)
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], ctr)
		h.Write(c[:])
		var enc [PointLen]byte
		enc[0] = 0x02 // even y
		h.Sum(enc[1:1])
		var x, y secp256k1.FieldVal
		if x.SetByteSlice(enc[1:]) {
			continue // x ≥ field prime
		}
		if !secp256k1.DecompressY(&x, false, &y) {
			continue // x³ + 7 is not a square
		}
		p, err := Parse(enc[:])
		if err != nil {
			continue
		}
		return p, ctr
	}
}
