package zkmta

import (
	"fmt"
	"io"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/internal/mtacheck"
)

// ProveBob proves that c2 = c1^x · Γ^y · r^N mod N² with x < q³ and y < q⁷
// (Bob's proof in MtA, GG18 Fig. 11) against Alice's key pk and Alice's
// ring-Pedersen parameters v.
func ProveBob(session []byte, pk *arith.Paillier, v *arith.RingPedersen, c1, c2, x, y, r *big.Int, rnd io.Reader) (*mta.ProofBob, error) {
	pf, err := proveBob(session, pk, v, c1, c2, x, y, r, nil, rnd)
	if err != nil {
		return nil, err
	}
	return pf.ProofBob, nil
}

// ProveBobWC is ProveBob with the additional statement X = g^x (MtA with
// check, GG18 Fig. 10).
func ProveBobWC(session []byte, pk *arith.Paillier, v *arith.RingPedersen, c1, c2, x, y, r *big.Int, X *secp.Point, rnd io.Reader) (*mta.ProofBobWC, error) {
	if X == nil || X.IsIdentity() {
		return nil, fmt.Errorf("%w: ProveBobWC needs a point X", ErrMalformed)
	}
	return proveBob(session, pk, v, c1, c2, x, y, r, X, rnd)
}

func proveBob(session []byte, pk *arith.Paillier, v *arith.RingPedersen, c1, c2, x, y, r *big.Int, X *secp.Point, rnd io.Reader) (*mta.ProofBobWC, error) {
	if pk == nil || v == nil || c1 == nil || c2 == nil || x == nil || y == nil || r == nil || session == nil {
		return nil, fmt.Errorf("%w: nil argument to ProveBob", ErrMalformed)
	}
	if x.Sign() < 0 || x.BitLen() > q3Bits || y.Sign() < 0 || y.BitLen() > q7Bits || r.Sign() < 0 || r.BitLen() > pk.N.BitLen() {
		return nil, fmt.Errorf("%w: witness of ProveBob out of range", ErrMalformed)
	}
	nt := v.N()
	qNt := new(big.Int).Mul(q, nt)
	q3Nt := new(big.Int).Mul(q3, nt)
	var rs [6]*big.Int
	bounds := [6]*big.Int{q3, qNt, qNt, q3Nt, q3Nt, q7}
	for i, b := range bounds {
		v, err := arith.RandomInt(rnd, b)
		if err != nil {
			return nil, err
		}
		rs[i] = v
	}
	alpha, rho, sigma, tau, rhoPrm, gam := rs[0], rs[1], rs[2], rs[3], rs[4], rs[5]
	beta, betaN, err := pk.RandomNonce(rnd)
	if err != nil {
		return nil, err
	}
	z := v.Commit(x, q3Bits, rho, qNt.BitLen())
	zPrm := v.Commit(alpha, q3Bits, rhoPrm, q3Nt.BitLen())
	t := v.Commit(y, q7Bits, sigma, qNt.BitLen())
	vv := pk.NN.Mul(pk.NN.Exp(c1, alpha, q3Bits), pk.NN.Mul(pk.GammaExp(gam), betaN))
	w := v.Commit(gam, q7Bits, tau, q3Nt.BitLen())

	var e *big.Int
	var U *crypto.ECPoint
	if X == nil {
		e = challenge(session, pk.N, gamma(pk), c1, c2, z, zPrm, t, vv, w)
		U = crypto.NewECPointNoCurveCheck(tss.S256(), new(big.Int), new(big.Int))
	} else {
		u := secp.BaseMult(alpha)
		ux, uy := u.XY()
		xx, xy := X.XY()
		e = challenge(session, pk.N, gamma(pk), xx, xy, c1, c2, ux, uy, z, zPrm, t, vv, w)
		U, err = crypto.NewECPoint(tss.S256(), ux, uy)
		if err != nil {
			return nil, err
		}
	}
	// s = r^e·β mod N: r and β are secret, e is not.
	s := pk.ModN.Mul(pk.ModN.Exp(r, e, qBits), beta)
	s1 := new(big.Int).Mul(e, x)
	s1.Add(s1, alpha)
	s2 := new(big.Int).Mul(e, rho)
	s2.Add(s2, rhoPrm)
	t1 := new(big.Int).Mul(e, y)
	t1.Add(t1, gam)
	t2 := new(big.Int).Mul(e, sigma)
	t2.Add(t2, tau)
	for _, s := range rs {
		arith.WipeInt(s)
	}
	arith.WipeInt(beta)
	return &mta.ProofBobWC{
		ProofBob: &mta.ProofBob{Z: z, ZPrm: zPrm, T: t, V: vv, W: w, S: s, S1: s1, S2: s2, T1: t1, T2: t2},
		U:        U,
	}, nil
}

// VerifyBob checks Bob's proof that c2 was formed from c1 as c1^x·Γ^y·r^N
// with x < q³, y < q⁷, against Alice's key pk and Alice's parameters v (the
// verifier is Alice, so both may use the CRT).
func VerifyBob(session []byte, pf *mta.ProofBob, pk *arith.Paillier, v *arith.RingPedersen, c1, c2 *big.Int) error {
	if pf == nil {
		return fmt.Errorf("%w: nil proof", ErrMalformed)
	}
	return verifyBob(session, pf, nil, pk, v, c1, c2, nil)
}

// VerifyBobWC is VerifyBob for the proof with check: additionally X = g^x.
func VerifyBobWC(session []byte, pf *mta.ProofBobWC, pk *arith.Paillier, v *arith.RingPedersen, c1, c2 *big.Int, X *secp.Point) error {
	if pf == nil || pf.ProofBob == nil || pf.U == nil {
		return fmt.Errorf("%w: nil proof", ErrMalformed)
	}
	if X == nil || X.IsIdentity() {
		return fmt.Errorf("%w: X is the identity", ErrMalformed)
	}
	U, err := secp.FromXY(pf.U.X(), pf.U.Y())
	if err != nil || U.IsIdentity() {
		return fmt.Errorf("%w: u is not a curve point", ErrMalformed)
	}
	return verifyBob(session, pf.ProofBob, U, pk, v, c1, c2, X)
}

func verifyBob(session []byte, pf *mta.ProofBob, U *secp.Point, pk *arith.Paillier, v *arith.RingPedersen, c1, c2 *big.Int, X *secp.Point) error {
	e, err := checkBob(session, pf, U, pk, v, c1, c2, X)
	if err != nil {
		return err
	}
	// c1^s1 · s^N · Γ^t1 ≟ c2^e · v  (mod N²)
	nn := pk.NN
	left := nn.MulVarTime(nn.ExpVarTime(c1, pf.S1), nn.MulVarTime(nn.ExpVarTime(pf.S, pk.N), pk.GammaExp(pf.T1)))
	right := nn.MulVarTime(nn.ExpVarTime(c2, e), pf.V)
	if left.Cmp(right) != 0 {
		return fmt.Errorf("%w: Paillier equation", ErrInvalid)
	}
	return nil
}

// checkBob checks everything of Bob's proof except the Paillier equation
// and returns the challenge e.
func checkBob(session []byte, pf *mta.ProofBob, U *secp.Point, pk *arith.Paillier, v *arith.RingPedersen, c1, c2 *big.Int, X *secp.Point) (*big.Int, error) {
	if !pf.ValidateBasic() || pk == nil || v == nil || c1 == nil || c2 == nil || session == nil {
		return nil, fmt.Errorf("%w: missing Bob proof field or argument", ErrMalformed)
	}
	if !pk.IsCiphertext(c1) || !pk.IsCiphertext(c2) {
		return nil, fmt.Errorf("%w: ciphertext is not a unit modulo N²", ErrMalformed)
	}
	if err := mtacheck.BobProof(pf, mtacheck.Moduli{N: pk.N, NN: pk.NN.M(), NTilde: v.N()}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var e *big.Int
	if X == nil {
		e = challenge(session, pk.N, gamma(pk), c1, c2, pf.Z, pf.ZPrm, pf.T, pf.V, pf.W)
	} else {
		xx, xy := X.XY()
		ux, uy := U.XY()
		e = challenge(session, pk.N, gamma(pk), xx, xy, c1, c2, ux, uy, pf.Z, pf.ZPrm, pf.T, pf.V, pf.W)
		// g^s1 ≟ X^e · u
		if !secp.BaseMultVarTime(pf.S1).Equal(X.MulVarTime(e).Add(U)) {
			return nil, fmt.Errorf("%w: curve equation", ErrInvalid)
		}
	}
	// h1^s1 · h2^s2 ≟ z^e · z'  (mod Ñ)
	if v.CommitVarTime(pf.S1, pf.S2).Cmp(v.NT.MulVarTime(v.NT.ExpVarTime(pf.Z, e), pf.ZPrm)) != 0 {
		return nil, fmt.Errorf("%w: first ring-Pedersen equation", ErrInvalid)
	}
	// h1^t1 · h2^t2 ≟ t^e · w  (mod Ñ)
	if v.CommitVarTime(pf.T1, pf.T2).Cmp(v.NT.MulVarTime(v.NT.ExpVarTime(pf.T, e), pf.W)) != 0 {
		return nil, fmt.Errorf("%w: second ring-Pedersen equation", ErrInvalid)
	}
	return e, nil
}

// Opening is a Paillier ciphertext with its plaintext, as its key owner
// knows it.
type Opening struct {
	C, M *big.Int
}

// VerifyBobOwnKey is VerifyBob (X == nil) or VerifyBobWC for Alice, who
// owns the Paillier key: c1 comes with its plaintext m1, and the Paillier
// equation c1^s1·s^N·Γ^t1 = c2^e·v (mod N²) is checked through the
// isomorphism Z_N × Z*_N → Z*_{N²}, (m, r) ↦ Γ^m·r^N, one component at a
// time:
//
//	s1·m1 + t1 ≡ e·Dec(c2) + Dec(v)      (mod N)   plaintexts
//	c1^s1 · s^N ≡ c2^e · v               (mod N)   nonces (Γ ≡ 1 mod N)
//
// which together are exactly equivalent to the equation modulo N² and
// cheaper for the key owner. It returns Dec(c2), which Alice needs anyway.
func VerifyBobOwnKey(session []byte, pf *mta.ProofBob, U *crypto.ECPoint, sk *arith.PaillierSecret, v *arith.RingPedersen, c1 *Opening, c2 *big.Int, X *secp.Point) (*big.Int, error) {
	if pf == nil || sk == nil || c1 == nil || c1.C == nil || c1.M == nil {
		return nil, fmt.Errorf("%w: nil proof or argument", ErrMalformed)
	}
	var Upt *secp.Point
	if X != nil {
		if X.IsIdentity() || U == nil {
			return nil, fmt.Errorf("%w: X is the identity or u is missing", ErrMalformed)
		}
		var err error
		if Upt, err = secp.FromXY(U.X(), U.Y()); err != nil || Upt.IsIdentity() {
			return nil, fmt.Errorf("%w: u is not a curve point", ErrMalformed)
		}
	}
	e, err := checkBob(session, pf, Upt, sk.Public(), v, c1.C, c2, X)
	if err != nil {
		return nil, err
	}
	m2, err := sk.Decrypt(c2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	mv, err := sk.Decrypt(pf.V)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The plaintexts are secret (m1 is Alice's kᵢ): constant-time mod N.
	N, modN := sk.N, sk.ModN
	s1k, em2 := modN.Mul(pf.S1, c1.M), modN.Mul(e, m2)
	left := modN.Add(s1k, pf.T1)
	right := modN.Add(em2, mv)
	equal := modN.Equal(left, right)
	for _, v := range []*big.Int{s1k, em2, left, right, mv} {
		arith.WipeInt(v)
	}
	if !equal {
		arith.WipeInt(m2)
		return nil, fmt.Errorf("%w: Paillier equation (plaintexts)", ErrInvalid)
	}
	// The nonces are public values; modN keeps the factors constant time.
	left = modN.MulVarTime(modN.ExpVarTime(c1.C, pf.S1), modN.ExpVarTime(pf.S, N))
	right = modN.MulVarTime(modN.ExpVarTime(c2, e), pf.V)
	if left.Cmp(right) != 0 {
		arith.WipeInt(m2)
		return nil, fmt.Errorf("%w: Paillier equation (nonces)", ErrInvalid)
	}
	// An honest Bob's plaintext k·x + y is below q⁶ (x < q, y < q⁵); the
	// proof bounds y only through t₁, so check the plaintext itself
	// (Alpha-Rays, eprint 2021/1621). Only the outcome is revealed: m2's
	// top words are Bob's random mask.
	if err := mtacheck.Plaintext(m2); err != nil {
		arith.WipeInt(m2)
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m2, nil
}
