package gg20

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// Verifier checks ECDSA signatures under one public key about four times
// faster than a plain verification, with tables of precomputed multiples
// of the key and of the generator (3.4 MiB for the key's table; the
// generator's is built once per process and shared). Building a Verifier
// costs about as much as 350 plain verifications (twice that for the first
// in a process), so it pays for many online signatures under one key: keep
// one per key. A
// Verifier is safe for concurrent use.
type Verifier struct {
	pub []byte
	fb  *secp.FixedBase
}

// NewVerifier builds a Verifier for the compressed public key pub (and,
// on the first call in the process, the generator's table).
func NewVerifier(pub []byte) (*Verifier, error) {
	p, err := secp.Parse(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	secp.GeneratorTable()
	return &Verifier{pub: bytes.Clone(pub), fb: secp.NewFixedBase(p)}, nil
}

// PublicKey returns the compressed key the Verifier checks against.
func (v *Verifier) PublicKey() []byte { return bytes.Clone(v.pub) }

// Verify reports whether (r, s) is a valid ECDSA signature of digest: it
// accepts exactly what dcrd's verifier accepts.
func (v *Verifier) Verify(digest []byte, r, s *big.Int) bool {
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(secp.Q) >= 0 || s.Cmp(secp.Q) >= 0 {
		return false
	}
	var rs, ss secp256k1.ModNScalar
	rs.Set(secp.Scalar(r))
	ss.Set(secp.Scalar(s))
	return v.fb.VerifyECDSA(digest, &rs, &ss)
}

// CombineWith is [Stored.Combine] with v checking the signature; v must be
// for the presignature's public key.
func (st Stored) CombineWith(v *Verifier, digest []byte, shares []*big.Int) (r, s *big.Int, recoveryID byte, err error) {
	_, _, pubOff, _, _, err := st.layout()
	if err != nil {
		return nil, nil, 0, err
	}
	if !bytes.Equal(st[pubOff:pubOff+33], v.pub) {
		return nil, nil, 0, fmt.Errorf("%w: verifier is for another public key", ErrMalformed)
	}
	return st.combine(digest, shares, func(_ []byte, r, s *big.Int) bool { return v.Verify(digest, r, s) })
}
