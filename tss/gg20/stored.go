package gg20

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// Stored is a presignature encoding ([Presignature.MarshalBinary]) read back
// from authenticated storage that the caller wrote itself, such as a record
// sealed by its HSM. Online signing needs only a few of its fields — kᵢ, σᵢ,
// r and, to combine, y' and the parity of R — so Stored reads them in place,
// without decoding any point, and decodes the whole presignature
// ([Presignature.UnmarshalStored]) only to blame a bad share. That keeps
// batch signing cheap: a signer spends no elliptic-curve operation on its
// share, and the combiner one signature verification per digest.
//
// Stored does not enforce the once-only rule by itself: the caller must have
// durably removed the encoding from its storage before it releases a share,
// and must clear the bytes afterwards.
type Stored []byte

// layout returns the offsets of y', R, kᵢ and σᵢ after checking the fixed
// parts of the format.
func (st Stored) layout() (n, self, pubOff, rOff, kOff int, err error) {
	b := []byte(st)
	if len(b) < 4+1+32+2 || !bytes.Equal(b[:4], presigMagic) || b[4] != presigVersion {
		return 0, 0, 0, 0, 0, fmt.Errorf("%w: not a presignature encoding", ErrMalformed)
	}
	n, self = int(b[37]), int(b[38])
	if n < 2 || n > MaxSigners || self >= n || len(b) != presigLen(n) {
		return 0, 0, 0, 0, 0, fmt.Errorf("%w: presignature encoding of the wrong size", ErrMalformed)
	}
	pubOff = 39 + 32*n + 32
	rOff = pubOff + 33
	kOff = len(b) - 64
	return n, self, pubOff, rOff, kOff, nil
}

// PublicKey returns the compressed (tweaked) public key y' the
// presignature signs for.
func (st Stored) PublicKey() ([]byte, error) {
	_, _, pubOff, _, _, err := st.layout()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(st[pubOff : pubOff+33]), nil
}

// smallR returns r = R.x mod q and R's parity byte.
func (st Stored) smallR(rOff int) (*big.Int, byte, error) {
	prefix := st[rOff]
	if prefix != 2 && prefix != 3 {
		return nil, 0, fmt.Errorf("%w: R is not a compressed point", ErrMalformed)
	}
	x := new(big.Int).SetBytes(st[rOff+1 : rOff+33])
	r := new(big.Int).Mod(x, secp.Q)
	if r.Sign() == 0 {
		return nil, 0, fmt.Errorf("%w: r is zero", ErrMalformed)
	}
	var recID byte
	if prefix == 3 {
		recID |= 1
	}
	if x.Cmp(secp.Q) >= 0 {
		recID |= 2
	}
	return r, recID, nil
}

// SignShare returns this party's share sᵢ = m·kᵢ + r·σᵢ mod q of the
// signature of digest (GG20 §3, Phase 7).
func (st Stored) SignShare(digest []byte) (*big.Int, error) {
	_, _, _, rOff, kOff, err := st.layout()
	if err != nil {
		return nil, err
	}
	m, err := messageScalar(digest)
	if err != nil {
		return nil, err
	}
	r, _, err := st.smallR(rOff)
	if err != nil {
		return nil, err
	}
	k, okK := secp.ModQFromBytes(st[kOff : kOff+32])
	sigma, okS := secp.ModQFromBytes(st[kOff+32 : kOff+64])
	if !okK || !okS || k.IsZero() {
		k.Wipe()
		sigma.Wipe()
		return nil, fmt.Errorf("%w: secret share out of range", ErrMalformed)
	}
	return signShare(m, r, k, sigma), nil
}

// Combine adds the signers' shares (in signer order) into a low-S
// signature of digest under y' and verifies it with dcrd's ECDSA verifier;
// the recovery ID follows from R. If the signature does not verify, it
// decodes the whole presignature and names every signer whose share fails
// R^{sⱼ} = R̄ⱼ^m · Sⱼ^r, as [Presignature.Combine] does.
func (st Stored) Combine(digest []byte, shares []*big.Int) (r, s *big.Int, recoveryID byte, err error) {
	_, _, pubOff, _, _, err := st.layout()
	if err != nil {
		return nil, nil, 0, err
	}
	pub, err := secp256k1.ParsePubKey(st[pubOff : pubOff+33])
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	return st.combine(digest, shares, func(d []byte, r, s *big.Int) bool { return verifyWith(pub, d, r, s) })
}

// combine sums the shares, normalises to low S, derives the recovery ID
// from R and checks the signature with verify; on failure it finds the
// culprits from the decoded presignature.
func (st Stored) combine(digest []byte, shares []*big.Int, verify func(digest []byte, r, s *big.Int) bool) (r, s *big.Int, recoveryID byte, err error) {
	n, _, _, rOff, _, err := st.layout()
	if err != nil {
		return nil, nil, 0, err
	}
	if _, err := messageScalar(digest); err != nil {
		return nil, nil, 0, err
	}
	sum, err := sumShares(shares, n)
	if err != nil {
		return nil, nil, 0, err
	}
	r, recoveryID, err = st.smallR(rOff)
	if err != nil {
		return nil, nil, 0, err
	}
	if sum.Cmp(new(big.Int).Rsh(secp.Q, 1)) > 0 {
		sum.Sub(secp.Q, sum)
		recoveryID ^= 1
	}
	if sum.Sign() != 0 && verify(digest, r, sum) {
		return r, sum, recoveryID, nil
	}
	// Slow path: find who cheated.
	var ps Presignature
	if err := ps.UnmarshalStored(st); err != nil {
		return nil, nil, 0, err
	}
	defer ps.Wipe()
	_, _, _, err = ps.Combine(digest, shares)
	if err == nil {
		err = fmt.Errorf("%w: stored presignature disagrees with its decoding", ErrInternal)
	}
	return nil, nil, 0, err
}

func verifyWith(pub *secp256k1.PublicKey, digest []byte, r, s *big.Int) bool {
	var rs, ss secp256k1.ModNScalar
	rs.Set(secp.Scalar(r))
	ss.Set(secp.Scalar(s))
	return ecdsa.NewSignature(&rs, &ss).Verify(digest, pub)
}
