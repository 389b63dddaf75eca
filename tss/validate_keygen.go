package tss

import (
	"crypto/elliptic"
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
)

// keygenValidator checks tss-lib keygen messages (GG18 §4.1 as tss-lib
// v2.0.2 implements it) beyond tss-lib's own checks.
type keygenValidator struct {
	ec        elliptic.Curve
	threshold int      // tss-lib t
	ownNTilde *big.Int // this party's Ñ, against which peers prove their N has no small factor
	paillierN map[PartyID]*big.Int
	moduli    *moduliRegistry
}

// newKeygenValidator returns the validator of a keygen session in which
// this party (self) uses the Paillier modulus ownN and the ring-Pedersen
// modulus ownNTilde.
func newKeygenValidator(ec elliptic.Curve, threshold int, self PartyID, ownN, ownNTilde *big.Int) *keygenValidator {
	v := &keygenValidator{
		ec: ec, threshold: threshold, ownNTilde: ownNTilde,
		paillierN: make(map[PartyID]*big.Int),
		moduli:    newModuliRegistry(self),
	}
	v.moduli.add(self, ownN, ownNTilde)
	return v
}

func (v *keygenValidator) validate(from *member, msg tsslib.ParsedMessage) error {
	switch c := msg.Content().(type) {
	case *keygen.KGRound1Message:
		// Round 1: commitment to the VSS polynomial, Paillier N, ring
		// (Ñ, h1, h2) with its two DLN proofs.
		if _, err := checkHash(c.GetCommitment(), "VSS commitment"); err != nil {
			return err
		}
		n, nTilde := new(big.Int).SetBytes(c.GetPaillierN()), c.UnmarshalNTilde()
		if err := checkRing(n, nTilde, c.UnmarshalH1(), c.UnmarshalH2()); err != nil {
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
	case *keygen.KGRound2Message1:
		// Round 2, point to point: our Shamir share and the sender's proof
		// that its N has no small factor, made against our Ñ.
		if _, err := checkScalar(c.GetShare(), false, "Shamir share"); err != nil {
			return err
		}
		if err := checkFacProof(c.GetFacProof(), v.paillierN[from.site], v.ownNTilde); err != nil {
			return err
		}
	case *keygen.KGRound2Message2:
		// Round 2, broadcast: opening of the VSS commitment, and the proof
		// that N is a Paillier-Blum modulus.
		if err := checkDecommittedPoints(v.ec, c.GetDeCommitment(), v.threshold+1); err != nil {
			return err
		}
		if err := checkModProof(c.GetModProof(), v.paillierN[from.site]); err != nil {
			return err
		}
	case *keygen.KGRound3Message:
		// Round 3: the legacy Paillier key proof, 13 values below N.
		n := v.paillierN[from.site]
		for i, b := range c.GetPaillierProof() {
			if x := new(big.Int).SetBytes(b); n == nil || x.Cmp(n) >= 0 {
				return fmt.Errorf("%w: Paillier key proof value %d not below N", ErrProofRange, i)
			}
		}
	}
	return nil
}
