package gg20

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// Presignature is one party's result of a presigning run: its secret shares
// kᵢ and σᵢ of k and k·x', and the public values every signer holds — the
// session ID, the signers, the (tweaked) public key y', the tweak ε, R = g^{1/k},
// r = R.x mod q and, for every signer j, R̄ⱼ = R^{kⱼ} and Sⱼ = R^{σⱼ}.
//
// A presignature signs exactly one digest, ever: two signatures with the same
// R reveal the key. [Presignature.SignShare] enforces this for one in-memory
// value (it wipes the secret shares as it uses them); keeping it true across
// copies, restarts and backups is the job of whoever stores presignatures:
// record it as used, durably, before releasing a share, and never restore one
// from a backup.
//
// A Presignature never prints its secrets: [Presignature.String] and
// [Presignature.GoString] show only the ID.
type Presignature struct {
	sessionID [32]byte
	signers   []*big.Int
	self      int
	tweak     *big.Int
	pub       *secp.Point // y'
	bigR      *secp.Point
	r         *big.Int
	rbar, s   []*secp.Point
	k, sigma  *big.Int
	used      bool
}

// ID returns an identifier all signers of the run compute alike:
// SHA-256 over a domain tag, the session ID, the signers, y', ε, R and every
// R̄ⱼ and Sⱼ.
func (ps *Presignature) ID() [32]byte {
	h := sha256.New()
	write := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	write([]byte("keyquorum/gg20/presignature-id/v1"))
	write(ps.sessionID[:])
	for _, id := range ps.signers {
		write(id.Bytes())
	}
	write(ps.pub.Bytes())
	write(ps.tweak.Bytes())
	write(ps.bigR.Bytes())
	for j := range ps.rbar {
		write(ps.rbar[j].Bytes())
		write(ps.s[j].Bytes())
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SessionID returns the session ID of the run that made the presignature.
func (ps *Presignature) SessionID() [32]byte { return ps.sessionID }

// Signers returns the share IDs of the signers, ascending.
func (ps *Presignature) Signers() []*big.Int { return cloneInts(ps.signers) }

// Index returns this party's signer index.
func (ps *Presignature) Index() int { return ps.self }

// PublicKey returns the compressed 33-byte public key the presignature signs
// for: y' = y + ε·g.
func (ps *Presignature) PublicKey() []byte { return ps.pub.Bytes() }

// Tweak returns the additive derivation tweak ε (zero for none).
func (ps *Presignature) Tweak() *big.Int { return new(big.Int).Set(ps.tweak) }

// R returns the compressed nonce point R = g^{1/k}.
func (ps *Presignature) R() []byte { return ps.bigR.Bytes() }

// SmallR returns r = R.x mod q, the first half of every signature made from
// this presignature.
func (ps *Presignature) SmallR() *big.Int { return new(big.Int).Set(ps.r) }

// Used reports whether the secret shares were used or wiped.
func (ps *Presignature) Used() bool { return ps.used }

// Wipe overwrites kᵢ and σᵢ. Afterwards the presignature can still verify
// and combine other signers' shares but not make its own.
func (ps *Presignature) Wipe() {
	arith.WipeInt(ps.k)
	arith.WipeInt(ps.sigma)
	ps.used = true
}

// String identifies the presignature without revealing secrets.
func (ps Presignature) String() string {
	if ps.bigR == nil || ps.pub == nil {
		return "gg20.Presignature{}"
	}
	id := ps.ID()
	return fmt.Sprintf("gg20.Presignature{ID: %x, signer %d of %d}", id[:8], ps.self, len(ps.signers))
}

// GoString is String, so that %#v does not print secrets either.
func (ps Presignature) GoString() string { return ps.String() }
