package tss

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/commitments"
	"github.com/bnb-chain/tss-lib/v2/crypto/facproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/modproof"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Bounds on the fields of inbound tss-lib messages. The largest legitimate
// field is a facproof value of a few thousand bits; the longest list is a
// DLN proof (2 + 2·128 parts). Anything larger is hostile: oversized numbers
// make exponentiations slow enough to stall a party.
const (
	maxFieldBytes = 2048
	maxListLen    = 512
	paillierBits  = 2048
)

// Errors naming the check a message failed, for tests and callers.
var (
	ErrFieldTooLarge   = errors.New("tss: message field too large")
	ErrVSSLength       = errors.New("tss: VSS commitment vector has the wrong length")
	ErrPointNotOnCurve = errors.New("tss: point not on the curve")
	ErrModProofGCD     = errors.New("tss: modulus proof fails gcd(W, N) = 1")
	ErrMissingProof    = errors.New("tss: required proof missing")
	ErrBadModulus      = errors.New("tss: Paillier or ring-Pedersen modulus has the wrong size")
	ErrWrongPublicKey  = errors.New("tss: old committee announced a different public key")
)

// checkFieldSizes bounds every bytes field and list of a tss-lib message,
// whatever its type, before any of its content is interpreted.
func checkFieldSizes(msg tsslib.ParsedMessage) error {
	pm, ok := msg.Content().(proto.Message)
	if !ok {
		return fmt.Errorf("%w: content is not a protobuf message", ErrMalformedMessage)
	}
	var err error
	pm.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			if l.Len() > maxListLen {
				err = fmt.Errorf("%w: %s has %d elements", ErrFieldTooLarge, fd.Name(), l.Len())
				return false
			}
			if fd.Kind() == protoreflect.BytesKind {
				for i := 0; i < l.Len(); i++ {
					if len(l.Get(i).Bytes()) > maxFieldBytes {
						err = fmt.Errorf("%w: %s[%d]", ErrFieldTooLarge, fd.Name(), i)
						return false
					}
				}
			}
		case fd.Kind() == protoreflect.BytesKind:
			if len(v.Bytes()) > maxFieldBytes {
				err = fmt.Errorf("%w: %s", ErrFieldTooLarge, fd.Name())
				return false
			}
		case fd.Kind() == protoreflect.MessageKind:
			err = fmt.Errorf("%w: unexpected nested message %s", ErrMalformedMessage, fd.Name())
			return false
		}
		return true
	})
	return err
}

// checkDecommittedPoints checks a hash decommitment that opens to
// `points` curve points: exactly 1 + 2·points values (the randomness, then
// x and y of each point), every point on the curve. This is the check that
// tss-lib v2.0.2 lacks before vss.Share.Verify (a short vector panics a
// tss-lib goroutine, a long one raises the polynomial degree).
func checkDecommittedPoints(ec elliptic.Curve, d commitments.HashDeCommitment, points int) error {
	if len(d) != 1+2*points {
		return fmt.Errorf("%w: %d values, want %d", ErrVSSLength, len(d), 1+2*points)
	}
	for i := 0; i < points; i++ {
		x, y := d[1+2*i], d[2+2*i]
		if x == nil || y == nil {
			return ErrPointNotOnCurve
		}
		if _, err := crypto.NewECPoint(ec, x, y); err != nil {
			return fmt.Errorf("%w: commitment point %d", ErrPointNotOnCurve, i)
		}
	}
	return nil
}

// checkModProofGCD performs the gcd(W, N) = 1 check that tss-lib v2.0.2's
// modproof.ProofMod.Verify omits (fixed upstream in tss-lib PR #323): a W
// sharing a factor with N has Jacobi symbol 0, passes the non-residue test,
// and lets a prover forge the proof.
func checkModProofGCD(parts [][]byte, n *big.Int) error {
	if len(parts) != modproof.ProofModBytesParts {
		return fmt.Errorf("%w: modulus proof", ErrMissingProof)
	}
	w := new(big.Int).SetBytes(parts[0])
	if w.Sign() <= 0 || n == nil || n.Sign() <= 0 {
		return ErrModProofGCD
	}
	if new(big.Int).GCD(nil, nil, w, n).Cmp(big.NewInt(1)) != 0 {
		return ErrModProofGCD
	}
	return nil
}

func checkModuli(n, nTilde, h1, h2 *big.Int) error {
	if n.BitLen() != paillierBits || nTilde.BitLen() != paillierBits {
		return ErrBadModulus
	}
	one := big.NewInt(1)
	for _, h := range []*big.Int{h1, h2} {
		if h.Cmp(one) <= 0 || h.Cmp(nTilde) >= 0 {
			return fmt.Errorf("%w: h1/h2 out of range", ErrBadModulus)
		}
	}
	if h1.Cmp(h2) == 0 {
		return fmt.Errorf("%w: h1 equals h2", ErrBadModulus)
	}
	return nil
}

// keygenValidator checks keygen messages beyond tss-lib's own checks.
type keygenValidator struct {
	ec        elliptic.Curve
	threshold int // tss-lib t
	paillierN map[PartyID]*big.Int
}

func (v *keygenValidator) validate(from *member, msg tsslib.ParsedMessage) error {
	switch c := msg.Content().(type) {
	case *keygen.KGRound1Message:
		n := new(big.Int).SetBytes(c.GetPaillierN())
		if err := checkModuli(n, c.UnmarshalNTilde(), c.UnmarshalH1(), c.UnmarshalH2()); err != nil {
			return err
		}
		v.paillierN[from.site] = n
	case *keygen.KGRound2Message1:
		if new(big.Int).SetBytes(c.GetShare()).Cmp(v.ec.Params().N) >= 0 {
			return fmt.Errorf("%w: share out of range", ErrMalformedMessage)
		}
		if len(c.GetFacProof()) != facproof.ProofFacBytesParts {
			return fmt.Errorf("%w: no-small-factor proof", ErrMissingProof)
		}
	case *keygen.KGRound2Message2:
		if err := checkDecommittedPoints(v.ec, c.UnmarshalDeCommitment(), v.threshold+1); err != nil {
			return err
		}
		if err := checkModProofGCD(c.GetModProof(), v.paillierN[from.site]); err != nil {
			return err
		}
	}
	return nil
}

// reshareValidator checks resharing messages beyond tss-lib's own checks.
type reshareValidator struct {
	ec           elliptic.Curve
	newThreshold int // tss-lib t of the new committee
	publicKey    *crypto.ECPoint
}

func (v *reshareValidator) validate(from *member, msg tsslib.ParsedMessage) error {
	switch c := msg.Content().(type) {
	case *resharing.DGRound1Message:
		pub, err := c.UnmarshalECDSAPub(v.ec)
		if err != nil {
			return fmt.Errorf("%w: public key", ErrPointNotOnCurve)
		}
		if !pub.Equals(v.publicKey) {
			return ErrWrongPublicKey
		}
	case *resharing.DGRound2Message1:
		n := new(big.Int).SetBytes(c.GetPaillierN())
		if err := checkModuli(n, c.UnmarshalNTilde(), c.UnmarshalH1(), c.UnmarshalH2()); err != nil {
			return err
		}
		if err := checkModProofGCD(c.GetModProof(), n); err != nil {
			return err
		}
	case *resharing.DGRound3Message1:
		if new(big.Int).SetBytes(c.GetShare()).Cmp(v.ec.Params().N) >= 0 {
			return fmt.Errorf("%w: share out of range", ErrMalformedMessage)
		}
	case *resharing.DGRound3Message2:
		if err := checkDecommittedPoints(v.ec, c.UnmarshalVDeCommitment(), v.newThreshold+1); err != nil {
			return err
		}
	case *resharing.DGRound4Message1:
		if len(c.GetFacProof()) != facproof.ProofFacBytesParts {
			return fmt.Errorf("%w: no-small-factor proof", ErrMissingProof)
		}
	}
	return nil
}
