package gg20

import (
	"sync"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// GeneratorHTag is the input of the hash-to-curve that defines the second
// generator h of the Pedersen commitments Tᵢ = g^{σᵢ}·h^{lᵢ} (GG20 §3,
// Phase 3; the paper leaves h unspecified). h is the first point with even y
// whose x is SHA-256(GeneratorHTag ‖ counter), counter a 4-byte big-endian
// integer from 0 (see secp.HashToPoint). Nobody knows log_g h, which the
// binding of Tᵢ — and with it the round-6 consistency proof — relies on.
const GeneratorHTag = "keyquorum/gg20/generator-h/secp256k1/v1"

var (
	hOnce sync.Once
	hPt   *secp.Point
)

// generatorH returns h.
func generatorH() *secp.Point {
	hOnce.Do(func() { hPt, _ = secp.HashToPoint([]byte(GeneratorHTag)) })
	return hPt
}

// GeneratorH returns the 33-byte compressed encoding of the NUMS generator h
// defined by [GeneratorHTag].
func GeneratorH() []byte { return generatorH().Bytes() }
