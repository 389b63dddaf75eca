package tss

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/dlnproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/facproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/modproof"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/keyquorum/keyquorum/tss/internal/mtacheck"
)

// Inbound tss-lib messages are checked here before tss-lib sees them:
// tss-lib v2.0.2 leaves out checks that later versions added, and some
// hostile values make it dereference nil or index out of range inside
// goroutines it starts itself, where no recover can reach and the process
// dies. The checks are cheap (comparisons, gcds, hashes of commitments);
// the proofs themselves are still verified by tss-lib. docs/tsslib-v3-fixes.md
// lists which later tss-lib fixes these checks cover.
//
// The validators of this package are validate_keygen.go, validate_sign.go
// and validate_reshare.go; this file holds what they share.

// Bounds on the fields of inbound tss-lib messages. The largest legitimate
// field is a no-small-factor proof value of a few thousand bits; the longest
// list is a DLN proof (2 + 2·128 parts). Anything larger is hostile:
// oversized numbers make exponentiations slow enough to stall a party.
const (
	maxFieldBytes = 2048
	maxListLen    = 512
	paillierBits  = 2048
	// maxHashBytes bounds hash commitments and session IDs: tss-lib makes
	// both with SHA-512/256 (at most 32 bytes once leading zeros go).
	maxHashBytes = 32
)

// Errors naming the check an inbound message failed. A session that fails
// one ends with a *CulpritError naming the sender whose Reason matches the
// sentinel with errors.Is.
var (
	// ErrFieldTooLarge means a field or list exceeds the bounds any honest
	// message stays within.
	ErrFieldTooLarge = errors.New("tss: message field too large")
	// ErrVSSLength means a VSS commitment vector (a decommitment of the
	// polynomial's coefficients times g) has the wrong length for the
	// threshold: a short one panics tss-lib, a long one raises the degree.
	ErrVSSLength = errors.New("tss: VSS commitment vector has the wrong length")
	// ErrPointNotOnCurve means a curve point is not a canonical encoding of a
	// point on secp256k1 other than the identity (coordinates below the
	// field prime, on the curve).
	ErrPointNotOnCurve = errors.New("tss: not a valid curve point")
	// ErrModProofGCD means a Paillier-Blum modulus proof's W shares a factor
	// with N, the check tss-lib v2.0.2 lacks (tss-lib PR #323).
	ErrModProofGCD = errors.New("tss: modulus proof fails gcd(W, N) = 1")
	// ErrMissingProof means a required proof is absent or has the wrong
	// number of parts.
	ErrMissingProof = errors.New("tss: required proof missing or malformed")
	// ErrBadModulus means a Paillier modulus N or ring-Pedersen modulus Ñ is
	// not 2048 bits, even, or prime.
	ErrBadModulus = errors.New("tss: Paillier or ring-Pedersen modulus has the wrong size or shape")
	// ErrSmallFactor means a Paillier or ring-Pedersen modulus has a prime
	// factor below 2¹⁶, the shape of a BitForge modulus (CVE-2023-33241).
	ErrSmallFactor = errors.New("tss: modulus has a small prime factor")
	// ErrBadGenerator means the ring-Pedersen generators h1, h2 are not
	// distinct units of Z*_Ñ other than ±1, or satisfy h1·h2 ≡ 1 (mod Ñ): the
	// relation a party that copied another's Ñ without knowing its
	// factorization needs to pass both DLN proofs.
	ErrBadGenerator = errors.New("tss: ring-Pedersen generators h1, h2 are degenerate")
	// ErrDuplicateModulus means a party's Paillier N or ring-Pedersen Ñ
	// equals a modulus another party of the session uses.
	ErrDuplicateModulus = errors.New("tss: modulus already used by another party")
	// ErrModulusReuse means a party's Paillier modulus N equals its own
	// ring-Pedersen modulus Ñ.
	ErrModulusReuse = errors.New("tss: Paillier modulus equals the ring-Pedersen modulus")
	// ErrWrongPublicKey means an old committee member announced another
	// public key than the one being reshared.
	ErrWrongPublicKey = errors.New("tss: old committee announced a different public key")
	// ErrBadCiphertext means a Paillier ciphertext is not a unit modulo N²
	// (0 < c < N², gcd(c, N) = 1). tss-lib v2.0.2 dereferences nil on one
	// in a goroutine, which kills the process.
	ErrBadCiphertext = errors.New("tss: Paillier ciphertext is not a unit modulo N²")
	// ErrProofRange means a value of a zero-knowledge proof is not in the
	// group or interval an honest prover's value lies in.
	ErrProofRange = errors.New("tss: proof value out of range")
	// ErrMtAPlaintext means an MtA ciphertext decrypts to a value no honest
	// party produces (not below q⁶), the shape of a key-extraction attempt.
	ErrMtAPlaintext = errors.New("tss: MtA ciphertext decrypts out of range")
	// ErrScalarRange means a scalar is not below the group order q, or is
	// zero where zero is not allowed.
	ErrScalarRange = errors.New("tss: scalar out of range")
	// ErrDecommitment means a decommitment does not open the sender's
	// earlier commitment, or has the wrong number of values.
	ErrDecommitment = errors.New("tss: decommitment does not open the commitment")
)

var (
	one      = big.NewInt(1)
	curveQ   = tsslib.S256().Params().N
	curveP   = tsslib.S256().Params().P
	dlnParts = 2 + 2*dlnproof.Iterations
)

// unattributedError is a validation failure that proves that one of several
// parties misbehaved without telling which: two other parties announcing
// the same modulus (one copied the other's). The session fails, but no
// one is named a culprit: naming both would name an honest party.
type unattributedError struct {
	parties []PartyID
	err     error
}

func (e *unattributedError) Error() string {
	return fmt.Sprintf("%v; one of %s copied the other's, which cannot be told from here", e.err, joinParties(e.parties))
}

func (e *unattributedError) Unwrap() error { return e.err }

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

// checkPoint checks that (x, y) is a canonical encoding of a point of
// secp256k1 other than the identity: both coordinates below the field
// prime p and on the curve. tss-lib's curve check reduces coordinates
// modulo p first, so x + p passes it as x; the commitment hashes and
// equality tests downstream would see two encodings of one point.
func checkPoint(ec elliptic.Curve, x, y *big.Int, what string) (*crypto.ECPoint, error) {
	if x == nil || y == nil || x.Sign() < 0 || y.Sign() < 0 || x.Cmp(curveP) >= 0 || y.Cmp(curveP) >= 0 {
		return nil, fmt.Errorf("%w: %s has a coordinate outside [0, p)", ErrPointNotOnCurve, what)
	}
	if x.Sign() == 0 && y.Sign() == 0 {
		return nil, fmt.Errorf("%w: %s is the identity", ErrPointNotOnCurve, what)
	}
	pt, err := crypto.NewECPoint(ec, x, y)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not on the curve", ErrPointNotOnCurve, what)
	}
	return pt, nil
}

// checkPointBytes is checkPoint for big-endian coordinates, at most 32
// bytes each.
func checkPointBytes(ec elliptic.Curve, xb, yb []byte, what string) (*crypto.ECPoint, error) {
	if len(xb) == 0 || len(yb) == 0 || len(xb) > 32 || len(yb) > 32 {
		return nil, fmt.Errorf("%w: %s coordinates missing or longer than 32 bytes", ErrPointNotOnCurve, what)
	}
	return checkPoint(ec, new(big.Int).SetBytes(xb), new(big.Int).SetBytes(yb), what)
}

// checkScalar checks a big-endian scalar: present, at most 32 bytes, below
// the group order q and, when nonZero is set, not zero (tss-lib multiplies
// points by some scalars and panics on the identity that zero gives).
func checkScalar(b []byte, nonZero bool, what string) (*big.Int, error) {
	if len(b) == 0 || len(b) > 32 {
		return nil, fmt.Errorf("%w: %s is empty or longer than 32 bytes", ErrScalarRange, what)
	}
	v := new(big.Int).SetBytes(b)
	if v.Cmp(curveQ) >= 0 || (nonZero && v.Sign() == 0) {
		return nil, fmt.Errorf("%w: %s not in [%d, q)", ErrScalarRange, what, boolInt(nonZero))
	}
	return v, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkHash checks a hash commitment or session ID: present and no longer
// than a SHA-512/256 output.
func checkHash(b []byte, what string) (*big.Int, error) {
	if len(b) == 0 || len(b) > maxHashBytes {
		return nil, fmt.Errorf("%w: %s must be 1 to %d bytes, not %d", ErrMalformedMessage, what, maxHashBytes, len(b))
	}
	return new(big.Int).SetBytes(b), nil
}

// openDecommitment checks that d (the randomness, then x and y of each
// point) opens the hash commitment c to exactly `points` valid curve
// points, and returns them. tss-lib opens the same commitment later; doing
// it first lets the points be checked before tss-lib uses them.
func openDecommitment(ec elliptic.Curve, c *big.Int, d [][]byte, points int, what string) ([]*crypto.ECPoint, error) {
	if len(d) != 1+2*points {
		return nil, fmt.Errorf("%w: %s has %d values, want %d", ErrDecommitment, what, len(d), 1+2*points)
	}
	if c == nil {
		return nil, fmt.Errorf("%w: no commitment for %s", ErrDecommitment, what)
	}
	vals := common.MultiBytesToBigInts(d)
	if common.SHA512_256i(vals...).Cmp(c) != 0 {
		return nil, fmt.Errorf("%w: %s", ErrDecommitment, what)
	}
	out := make([]*crypto.ECPoint, points)
	for i := range out {
		pt, err := checkPoint(ec, vals[1+2*i], vals[2+2*i], fmt.Sprintf("%s point %d", what, i))
		if err != nil {
			return nil, err
		}
		out[i] = pt
	}
	return out, nil
}

// checkDecommittedPoints checks a VSS decommitment of `points` curve
// points without its commitment: exactly 1 + 2·points values (the
// randomness, then x and y of each point), every point valid. This is the
// check that tss-lib v2.0.2 lacks before vss.Share.Verify (tss-lib PR #291:
// a short vector panics a tss-lib goroutine, a long one raises the
// polynomial degree).
func checkDecommittedPoints(ec elliptic.Curve, d [][]byte, points int) error {
	if len(d) != 1+2*points {
		return fmt.Errorf("%w: %d values, want %d", ErrVSSLength, len(d), 1+2*points)
	}
	for i := 0; i < points; i++ {
		if _, err := checkPoint(ec, new(big.Int).SetBytes(d[1+2*i]), new(big.Int).SetBytes(d[2+2*i]), fmt.Sprintf("commitment point %d", i)); err != nil {
			return err
		}
	}
	return nil
}

// checkModProof checks a Paillier-Blum modulus proof (CGGMP Fig. 16, tss-lib
// crypto/modproof) for N before tss-lib verifies it: the right number of
// parts, W a unit modulo N (0 < W < N and gcd(W, N) = 1, the gcd being the
// check tss-lib v2.0.2's ProofMod.Verify omits, tss-lib PR #323: a W sharing
// a factor with N has Jacobi symbol 0, passes the non-residue test and lets
// a prover forge the proof), every x_i and z_i in (0, N), and A, B of 81 bits.
func checkModProof(parts [][]byte, n *big.Int) error {
	if len(parts) != modproof.ProofModBytesParts {
		return fmt.Errorf("%w: modulus proof has %d parts, want %d", ErrMissingProof, len(parts), modproof.ProofModBytesParts)
	}
	if n == nil || n.Sign() <= 0 {
		return fmt.Errorf("%w: no modulus for the modulus proof", ErrMissingProof)
	}
	w := new(big.Int).SetBytes(parts[0])
	if w.Sign() <= 0 || w.Cmp(n) >= 0 {
		return fmt.Errorf("%w: modulus proof W not in (0, N)", ErrProofRange)
	}
	if new(big.Int).GCD(nil, nil, w, n).Cmp(one) != 0 {
		return ErrModProofGCD
	}
	for i := 1; i < len(parts); i++ {
		v := new(big.Int).SetBytes(parts[i])
		if i == modproof.Iterations+1 || i == modproof.Iterations+2 {
			if v.BitLen() != modproof.Iterations+1 {
				return fmt.Errorf("%w: modulus proof A or B is not %d bits", ErrProofRange, modproof.Iterations+1)
			}
			continue
		}
		if v.Sign() <= 0 || v.Cmp(n) >= 0 {
			return fmt.Errorf("%w: modulus proof value %d not in (0, N)", ErrProofRange, i)
		}
	}
	return nil
}

// checkDLNProof checks the shape of a DLN proof (tss-lib crypto/dlnproof)
// for the ring (Ñ, h1, h2): 2 + 2·128 parts, two length prefixes of exactly
// 128 and every α_i, t_i in (1, Ñ). tss-lib v2.0.2 reads the length
// prefixes with Int64 and slices with them inside a goroutine: a prefix of
// 2⁶³ or more turns negative there and the slice panics, killing the
// process. The proof itself is verified by tss-lib.
func checkDLNProof(parts [][]byte, nTilde *big.Int, which int) error {
	if len(parts) != dlnParts {
		return fmt.Errorf("%w: DLN proof %d has %d parts, want %d", ErrMissingProof, which, len(parts), dlnParts)
	}
	iters := big.NewInt(dlnproof.Iterations)
	for i, p := range parts {
		v := new(big.Int).SetBytes(p)
		if i == 0 || i == 1+dlnproof.Iterations {
			if v.Cmp(iters) != 0 {
				return fmt.Errorf("%w: DLN proof %d has a bad length prefix", ErrMissingProof, which)
			}
			continue
		}
		if v.Cmp(one) <= 0 || v.Cmp(nTilde) >= 0 {
			return fmt.Errorf("%w: DLN proof %d value %d not in (1, Ñ)", ErrProofRange, which, i)
		}
	}
	return nil
}

// checkFacProof checks the values of a no-small-factor proof (CGGMP
// Fig. 28, tss-lib crypto/facproof) for the prover's Paillier modulus n0,
// made against the verifier's ring-Pedersen modulus nTilde: the right number
// of parts; P, Q, A, B, T units mod Ñ; z1, z2 ≤ q³·√N0 (as tss-lib checks);
// σ < q·N0·Ñ, w1, w2 < 2q³·Ñ and v < 2q³·N0·Ñ, the intervals an honest
// prover's values lie in. The equations are tss-lib's to check.
func checkFacProof(parts [][]byte, n0, nTilde *big.Int) error {
	if len(parts) != facproof.ProofFacBytesParts {
		return fmt.Errorf("%w: no-small-factor proof has %d parts, want %d", ErrMissingProof, len(parts), facproof.ProofFacBytesParts)
	}
	for _, p := range parts {
		if len(p) == 0 {
			return fmt.Errorf("%w: no-small-factor proof has an empty part", ErrMissingProof)
		}
	}
	if n0 == nil || nTilde == nil {
		return fmt.Errorf("%w: no moduli for the no-small-factor proof", ErrMissingProof)
	}
	v := common.MultiBytesToBigInts(parts)
	for i := 0; i < 5; i++ { // P, Q, A, B, T
		if !mtacheck.IsUnit(v[i], nTilde) {
			return fmt.Errorf("%w: no-small-factor proof value %d is not a unit mod Ñ", ErrProofRange, i)
		}
	}
	q3 := new(big.Int).Exp(curveQ, big.NewInt(3), nil)
	zMax := new(big.Int).Mul(q3, new(big.Int).Sqrt(n0))
	q3Nt2 := new(big.Int).Lsh(new(big.Int).Mul(q3, nTilde), 1)
	sigmaMax := new(big.Int).Mul(new(big.Int).Mul(curveQ, n0), nTilde)
	vMax := new(big.Int).Mul(q3Nt2, n0)
	switch sigma, z1, z2, w1, w2, vv := v[5], v[6], v[7], v[8], v[9], v[10]; {
	case sigma.Cmp(sigmaMax) >= 0:
		return fmt.Errorf("%w: no-small-factor proof σ not below q·N0·Ñ", ErrProofRange)
	case z1.Cmp(zMax) >= 0, z2.Cmp(zMax) >= 0:
		return fmt.Errorf("%w: no-small-factor proof z1 or z2 not below q³·√N0", ErrProofRange)
	case w1.Cmp(q3Nt2) >= 0, w2.Cmp(q3Nt2) >= 0:
		return fmt.Errorf("%w: no-small-factor proof w1 or w2 not below 2q³·Ñ", ErrProofRange)
	case vv.Cmp(vMax) >= 0:
		return fmt.Errorf("%w: no-small-factor proof v not below 2q³·N0·Ñ", ErrProofRange)
	}
	return nil
}

// smallPrimesProduct is the product of the primes below 2¹⁶: one gcd with
// it finds any of them in a modulus. It is computed on first use (about
// 10 ms), not when the package loads, so that a command that never checks
// a modulus (every kqnode client command) does not wait for it.
var smallPrimesProduct = sync.OnceValue(func() *big.Int {
	const limit = 1 << 16
	sieve := make([]bool, limit)
	prod := big.NewInt(1)
	for i := 2; i < limit; i++ {
		if sieve[i] {
			continue
		}
		prod.Mul(prod, big.NewInt(int64(i)))
		for j := i * i; j < limit; j += i {
			sieve[j] = true
		}
	}
	return prod
})

// checkModulus checks a Paillier or ring-Pedersen modulus announced by a
// peer: exactly 2048 bits, odd (tss-lib's modulus proof computes Jacobi
// symbols modulo N, which panics for an even N inside a tss-lib goroutine),
// no prime factor below 2¹⁶ (BitForge moduli are products of many small
// primes; the no-small-factor proof is the complete check, this one is
// cheap and early) and not prime.
func checkModulus(m *big.Int, what string) error {
	switch {
	case m.BitLen() != paillierBits:
		return fmt.Errorf("%w: %s has %d bits, want %d", ErrBadModulus, what, m.BitLen(), paillierBits)
	case m.Bit(0) == 0:
		return fmt.Errorf("%w: %s is even", ErrBadModulus, what)
	case new(big.Int).GCD(nil, nil, m, smallPrimesProduct()).Cmp(one) != 0:
		return fmt.Errorf("%w: %s", ErrSmallFactor, what)
	case m.ProbablyPrime(0):
		return fmt.Errorf("%w: %s is prime", ErrBadModulus, what)
	}
	return nil
}

// checkRing checks a party's Paillier modulus n and ring-Pedersen
// parameters (Ñ, h1, h2) as announced in keygen round 1 or resharing
// round 2: both moduli well formed, N ≠ Ñ, and h1, h2 distinct units of
// Z*_Ñ other than ±1 with h1·h2 ≢ 1 (mod Ñ).
//
// The last test is the one that matters against a copied Ñ: a party that
// takes another's Ñ without its factorization can still pass both DLN
// proofs (that h2 ∈ ⟨h1⟩ and h1 ∈ ⟨h2⟩) by choosing h1' = h1², h2' = h1'⁻¹,
// since the exponents ±1 need no group order; any other pair would need it.
func checkRing(n, nTilde, h1, h2 *big.Int) error {
	if err := checkModulus(n, "Paillier modulus N"); err != nil {
		return err
	}
	if err := checkModulus(nTilde, "ring-Pedersen modulus Ñ"); err != nil {
		return err
	}
	if n.Cmp(nTilde) == 0 {
		return ErrModulusReuse
	}
	minusOne := new(big.Int).Sub(nTilde, one)
	for _, h := range []*big.Int{h1, h2} {
		if h.Cmp(one) <= 0 || h.Cmp(minusOne) == 0 || !mtacheck.IsUnit(h, nTilde) {
			return fmt.Errorf("%w: h1 or h2 is not a unit of Z*_Ñ other than ±1", ErrBadGenerator)
		}
	}
	if h1.Cmp(h2) == 0 {
		return fmt.Errorf("%w: h1 = h2", ErrBadGenerator)
	}
	if new(big.Int).Mod(new(big.Int).Mul(h1, h2), nTilde).Cmp(one) == 0 {
		return fmt.Errorf("%w: h1·h2 ≡ 1 (mod Ñ)", ErrBadGenerator)
	}
	return nil
}

// moduliRegistry remembers every Paillier modulus and ring-Pedersen
// modulus of a session, this party's own included, so that no party can
// announce one another party uses.
type moduliRegistry struct {
	self   PartyID
	owners map[string]PartyID // modulus in hex -> the party that announced it
}

func newModuliRegistry(self PartyID) *moduliRegistry {
	return &moduliRegistry{self: self, owners: make(map[string]PartyID)}
}

// check reports whether from may announce moduli ms without recording them.
// A modulus this party uses makes from the culprit; one another peer uses
// gives an unattributedError, since the copy cannot be told from the
// original here.
func (r *moduliRegistry) check(from PartyID, ms ...*big.Int) error {
	for _, m := range ms {
		owner, ok := r.owners[m.Text(16)]
		if !ok || owner == from {
			continue
		}
		if owner == r.self {
			return fmt.Errorf("%w: it is this party's own", ErrDuplicateModulus)
		}
		return &unattributedError{parties: SortParties([]PartyID{owner, from}), err: ErrDuplicateModulus}
	}
	return nil
}

// add records moduli ms as announced by from.
func (r *moduliRegistry) add(from PartyID, ms ...*big.Int) {
	for _, m := range ms {
		r.owners[m.Text(16)] = from
	}
}
