package gg20

import (
	"bytes"
	"fmt"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

// Presignature encoding, version 1 (all integers big-endian, fixed size):
//
//	magic "KQPS" | version 0x01 | session ID (32) | n (1) | self (1) |
//	n × share ID (32) | tweak ε (32) | y' (33) | R (33) |
//	n × R̄ⱼ (33) | n × Sⱼ (33) | kᵢ (32) | σᵢ (32)
//
// Points are compressed SEC 1 encodings. The encoding holds the secret
// shares kᵢ and σᵢ: seal it before it touches a disk.
var presigMagic = []byte("KQPS")

const presigVersion = 1

func presigLen(n int) int { return 4 + 1 + 32 + 2 + 32*n + 32 + 33 + 33 + 66*n + 64 }

// MarshalBinary encodes the presignature (format above). It fails with
// [ErrUsed] once the secret shares were used or wiped.
func (ps *Presignature) MarshalBinary() ([]byte, error) {
	if ps.used {
		return nil, ErrUsed
	}
	w := &wire.Writer{}
	w.Fixed(presigMagic)
	w.Uint8(presigVersion)
	w.Fixed(ps.sessionID[:])
	w.Uint8(uint8(len(ps.signers)))
	w.Uint8(uint8(ps.self))
	for _, id := range ps.signers {
		w.Scalar(id)
	}
	w.Scalar(ps.tweak)
	w.Point(ps.pub)
	w.Point(ps.bigR)
	for _, p := range ps.rbar {
		w.Point(p)
	}
	for _, p := range ps.s {
		w.Point(p)
	}
	w.Scalar(ps.k)
	w.Scalar(ps.sigma)
	return w.Bytes(), nil
}

// UnmarshalBinary decodes a presignature written by
// [Presignature.MarshalBinary]. Besides the format (magic, version, exact
// length, canonical points and scalars, ascending signers) it checks the
// presignature's consistency: Πⱼ R̄ⱼ = g, Πⱼ Sⱼ = y', R̄ᵢ = R^{kᵢ} and
// Sᵢ = R^{σᵢ} for this party's shares, so a corrupted or mismatched blob is
// refused.
func (ps *Presignature) UnmarshalBinary(data []byte) error {
	return ps.unmarshal(data, true)
}

// UnmarshalStored decodes a presignature that the caller itself encoded and
// kept in authenticated storage (for example a store sealed by its HSM with
// AES-GCM), so the encoding cannot have changed since
// [Presignature.MarshalBinary]. It makes every check of
// [Presignature.UnmarshalBinary] except the two scalar multiplications that
// re-derive R̄ᵢ and Sᵢ from kᵢ and σᵢ, which dominate the cost of decoding.
// Even so, a wrong kᵢ or σᵢ could not yield a bad signature unnoticed:
// [Presignature.Combine] checks every signature, and blames a bad share with
// [Presignature.VerifyShare]. Use UnmarshalBinary for anything else.
func (ps *Presignature) UnmarshalStored(data []byte) error {
	return ps.unmarshal(data, false)
}

func (ps *Presignature) unmarshal(data []byte, checkOwn bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: presignature: "+format, append([]any{ErrMalformed}, a...)...)
	}
	if len(data) < 4+1+32+2 || !bytes.Equal(data[:4], presigMagic) {
		return bad("not a presignature encoding")
	}
	if data[4] != presigVersion {
		return bad("version %d, want %d", data[4], presigVersion)
	}
	n, self := int(data[37]), int(data[38])
	if n < 2 || n > MaxSigners || self >= n {
		return bad("%d signers, index %d", n, self)
	}
	if len(data) != presigLen(n) {
		return bad("%d bytes, want %d", len(data), presigLen(n))
	}
	r := wire.NewReader(data[5:])
	var out Presignature
	copy(out.sessionID[:], r.Fixed(32, "session ID"))
	r.Fixed(2, "counts")
	out.self = self
	for i := 0; i < n; i++ {
		id := r.Scalar("share ID")
		if r.Err() == nil && (id.Sign() == 0 || (i > 0 && id.Cmp(out.signers[i-1]) <= 0)) {
			r.Fail("share IDs not ascending and non-zero")
		}
		out.signers = append(out.signers, id)
	}
	out.tweak = r.Scalar("tweak")
	out.pub = r.Point("public key")
	out.bigR = r.Point("R")
	for i := 0; i < n; i++ {
		out.rbar = append(out.rbar, r.Point("Rbar"))
	}
	for i := 0; i < n; i++ {
		out.s = append(out.s, r.Point("S"))
	}
	out.k = r.Scalar("k")
	out.sigma = r.Scalar("sigma")
	if err := r.Done(); err != nil {
		return bad("%v", err)
	}
	if out.k.Sign() == 0 {
		return bad("k is zero")
	}
	rx, _ := out.bigR.XY()
	out.r = rx.Mod(rx, secp.Q)
	if out.r.Sign() == 0 {
		return bad("r is zero")
	}
	if !secp.Sum(out.rbar...).Equal(secp.Generator()) || !secp.Sum(out.s...).Equal(out.pub) {
		return bad("products of Rbar_j and S_j do not match g and the public key")
	}
	if checkOwn && (!out.bigR.Mul(out.k).Equal(out.rbar[self]) || !out.bigR.Mul(out.sigma).Equal(out.s[self])) {
		return bad("own shares do not match Rbar_i and S_i")
	}
	*ps = out
	return nil
}
