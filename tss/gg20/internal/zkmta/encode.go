package zkmta

import (
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

// EncodeRange writes a range proof.
func EncodeRange(w *wire.Writer, pf *mta.RangeProofAlice) {
	for _, v := range []*big.Int{pf.Z, pf.U, pf.W, pf.S, pf.S1, pf.S2} {
		w.Int(v)
	}
}

// DecodeRange reads a range proof written by EncodeRange.
func DecodeRange(r *wire.Reader) *mta.RangeProofAlice {
	return &mta.RangeProofAlice{
		Z: r.Int(wire.MaxIntLen, "range z"), U: r.Int(wire.MaxIntLen, "range u"),
		W: r.Int(wire.MaxIntLen, "range w"), S: r.Int(wire.MaxIntLen, "range s"),
		S1: r.Int(wire.MaxIntLen, "range s1"), S2: r.Int(wire.MaxIntLen, "range s2"),
	}
}

// EncodeBob writes Bob's proof without check.
func EncodeBob(w *wire.Writer, pf *mta.ProofBob) {
	for _, v := range []*big.Int{pf.Z, pf.ZPrm, pf.T, pf.V, pf.W, pf.S, pf.S1, pf.S2, pf.T1, pf.T2} {
		w.Int(v)
	}
}

// DecodeBob reads a proof written by EncodeBob.
func DecodeBob(r *wire.Reader) *mta.ProofBob {
	var v [10]*big.Int
	names := [10]string{"bob z", "bob z'", "bob t", "bob v", "bob w", "bob s", "bob s1", "bob s2", "bob t1", "bob t2"}
	for i := range v {
		v[i] = r.Int(wire.MaxIntLen, names[i])
	}
	return &mta.ProofBob{Z: v[0], ZPrm: v[1], T: v[2], V: v[3], W: v[4], S: v[5], S1: v[6], S2: v[7], T1: v[8], T2: v[9]}
}

// EncodeBobWC writes Bob's proof with check; u is written as a compressed
// point.
func EncodeBobWC(w *wire.Writer, pf *mta.ProofBobWC) {
	EncodeBob(w, pf.ProofBob)
	u, err := secp.FromXY(pf.U.X(), pf.U.Y())
	if err != nil {
		u = secp.Identity() // encodes as zeros, which DecodeBobWC rejects
	}
	w.Point(u)
}

// DecodeBobWC reads a proof written by EncodeBobWC.
func DecodeBobWC(r *wire.Reader) *mta.ProofBobWC {
	pb := DecodeBob(r)
	u := r.Point("bob u")
	x, y := u.XY()
	return &mta.ProofBobWC{ProofBob: pb, U: crypto.NewECPointNoCurveCheck(tss.S256(), x, y)}
}
