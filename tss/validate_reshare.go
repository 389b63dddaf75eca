package tss

import (
	"crypto/elliptic"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
)

// reshareValidator checks tss-lib resharing messages (tss-lib v2.0.2
// ecdsa/resharing, rounds 1–4 between the old and the new committee)
// beyond tss-lib's own checks.
type reshareValidator struct {
	ec           elliptic.Curve
	newThreshold int // tss-lib t of the new committee
	publicKey    *crypto.ECPoint
	ownNTilde    *big.Int // this party's Ñ when it is in the new committee
	moduli       *moduliRegistry
	vCommit      map[PartyID]*big.Int // old members' commitments to their VSS polynomials
	paillierN    map[PartyID]*big.Int // new members' Paillier moduli
}

// newReshareValidator returns the validator of a resharing of the key
// publicKey to a new committee of threshold newThreshold (tss-lib t).
func newReshareValidator(ec elliptic.Curve, newThreshold int, publicKey *crypto.ECPoint, self PartyID) *reshareValidator {
	return &reshareValidator{
		ec: ec, newThreshold: newThreshold, publicKey: publicKey,
		moduli:    newModuliRegistry(self),
		vCommit:   make(map[PartyID]*big.Int),
		paillierN: make(map[PartyID]*big.Int),
	}
}

// setOwnModuli records this party's moduli in the new committee: the
// Paillier modulus n and the ring-Pedersen modulus nTilde.
func (v *reshareValidator) setOwnModuli(n, nTilde *big.Int) {
	v.ownNTilde = nTilde
	v.moduli.add(v.moduli.self, n, nTilde)
}

func (v *reshareValidator) validate(from *member, msg tsslib.ParsedMessage) error {
	switch c := msg.Content().(type) {
	case *resharing.DGRound1Message:
		// Old → new: the key's public key, a commitment to the sender's VSS
		// polynomial and tss-lib's session ID. tss-lib v2.0.2 compares every
		// old member's key with member 0's key instead of with each other
		// (upstream SRC-2026-1155), so a wrong key is caught here.
		pub, err := checkPointBytes(v.ec, c.GetEcdsaPubX(), c.GetEcdsaPubY(), "public key")
		if err != nil {
			return err
		}
		if !pub.Equals(v.publicKey) {
			return ErrWrongPublicKey
		}
		vc, err := checkHash(c.GetVCommitment(), "VSS commitment")
		if err != nil {
			return err
		}
		if _, err := checkHash(c.GetSsid(), "session ID"); err != nil {
			return err
		}
		v.vCommit[from.site] = vc
	case *resharing.DGRound2Message1:
		// New → new: the sender's Paillier N with its modulus proof and its
		// ring (Ñ, h1, h2) with two DLN proofs.
		n, nTilde := new(big.Int).SetBytes(c.GetPaillierN()), c.UnmarshalNTilde()
		if err := checkRing(n, nTilde, c.UnmarshalH1(), c.UnmarshalH2()); err != nil {
			return err
		}
		if err := checkModProof(c.GetModProof(), n); err != nil {
			return err
		}
		if err := checkDLNProof(c.GetDlnproof_1(), nTilde, 1); err != nil {
			return err
		}
		if err := checkDLNProof(c.GetDlnproof_2(), nTilde, 2); err != nil {
			return err
		}
		if err := v.moduli.check(from.site, n, nTilde); err != nil {
			return err
		}
		v.moduli.add(from.site, n, nTilde)
		v.paillierN[from.site] = n
	case *resharing.DGRound3Message1:
		// Old → new, point to point: the sender's share of our new share.
		if _, err := checkScalar(c.GetShare(), false, "reshared share"); err != nil {
			return err
		}
	case *resharing.DGRound3Message2:
		// Old → new: the opening of the round-1 VSS commitment, t+1 points
		// of the new committee's threshold (tss-lib PR #291).
		if err := checkDecommittedPoints(v.ec, c.GetVDecommitment(), v.newThreshold+1); err != nil {
			return err
		}
		if _, err := openDecommitment(v.ec, v.vCommit[from.site], c.GetVDecommitment(), v.newThreshold+1, "VSS decommitment"); err != nil {
			return err
		}
	case *resharing.DGRound4Message1:
		// New → new, point to point: the sender's proof that its N has no
		// small factor, made against our Ñ. tss-lib v2.0.2's ValidateBasic
		// does not require it (for its NoProofFac switch, which is never
		// set here).
		if err := checkFacProof(c.GetFacProof(), v.paillierN[from.site], v.ownNTilde); err != nil {
			return err
		}
	}
	return nil
}
