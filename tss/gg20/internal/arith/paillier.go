package arith

import (
	"crypto/rand"
	"errors"
	"io"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
)

// Paillier is a Paillier public key N (generator Γ = N+1) with N² as a
// Modulus. When it comes from NewPaillierSecret, N² computes with the CRT.
type Paillier struct {
	N  *big.Int
	NN *Modulus // N²

	sec *PaillierSecret // set when the key owner computes
}

// NewPaillier returns the public-key arithmetic for modulus N.
func NewPaillier(N *big.Int) *Paillier {
	return &Paillier{N: new(big.Int).Set(N), NN: New(new(big.Int).Mul(N, N))}
}

// GammaExp returns Γ^m mod N² for m ≥ 0, computed as 1 + (m mod N)·N (Γ = N+1
// has order N modulo N², and (1+N)^m ≡ 1 + m·N by the binomial theorem).
func (pk *Paillier) GammaExp(m *big.Int) *big.Int {
	t := new(big.Int).Mod(m, pk.N)
	t.Mul(t, pk.N)
	t.Add(t, one)
	return t.Mod(t, pk.NN.m)
}

// EncryptWithNonce returns Γ^m · r^N mod N².
func (pk *Paillier) EncryptWithNonce(m, r *big.Int) *big.Int {
	return pk.NN.Mul(pk.GammaExp(m), pk.NN.Exp(r, pk.N))
}

// Encrypt returns a fresh encryption of m ∈ [0, N) and its nonce r ∈ Z*_N.
func (pk *Paillier) Encrypt(rnd io.Reader, m *big.Int) (c, r *big.Int, err error) {
	if m == nil || m.Sign() < 0 || m.Cmp(pk.N) >= 0 {
		return nil, nil, errors.New("arith: Paillier plaintext out of range [0, N)")
	}
	r, rN, err := pk.RandomNonce(rnd)
	if err != nil {
		return nil, nil, err
	}
	return pk.NN.Mul(pk.GammaExp(m), rN), r, nil
}

// RandomNonce returns a uniform r ∈ Z*_N and r^N mod N². For the key owner
// it uses the factorisation (see PaillierSecret.randomNonce).
func (pk *Paillier) RandomNonce(rnd io.Reader) (r, rN *big.Int, err error) {
	if pk.sec != nil {
		return pk.sec.randomNonce(rnd)
	}
	r, err = RandomUnit(rnd, pk.N)
	if err != nil {
		return nil, nil, err
	}
	return r, pk.NN.Exp(r, pk.N), nil
}

// IsCiphertext reports whether c is a unit modulo N² (0 < c < N², gcd(c, N) = 1).
func (pk *Paillier) IsCiphertext(c *big.Int) bool {
	if c == nil || c.Sign() <= 0 || c.Cmp(pk.NN.m) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, c, pk.N).Cmp(one) == 0
}

// PaillierSecret is a party's own Paillier key with CRT decryption.
type PaillierSecret struct {
	Paillier
	p, q     *big.Int
	pp, qq   *big.Int // p², q²
	hp, hq   *big.Int // (−q)⁻¹ mod p, (−p)⁻¹ mod q
	nInvP1   *big.Int // N⁻¹ mod (p−1)
	nInvQ1   *big.Int // N⁻¹ mod (q−1)
	modN     *Modulus // N with CRT over p, q
	pInvQ    *big.Int // p⁻¹ mod q
	pm1, qm1 *big.Int
	qModP1   *big.Int // q mod (p−1)
	pModQ1   *big.Int // p mod (q−1)
}

// NewPaillierSecret builds CRT arithmetic from a tss-lib Paillier private
// key. It checks that N = P·Q with distinct odd factors.
func NewPaillierSecret(sk *paillier.PrivateKey) (*PaillierSecret, error) {
	if sk == nil || sk.N == nil || sk.P == nil || sk.Q == nil {
		return nil, errors.New("arith: Paillier private key lacks N, P or Q")
	}
	p, q, N := sk.P, sk.Q, sk.N
	if p.Cmp(q) == 0 || p.Bit(0) == 0 || q.Bit(0) == 0 || p.Cmp(one) <= 0 || q.Cmp(one) <= 0 {
		return nil, errors.New("arith: Paillier factors must be distinct odd numbers")
	}
	if new(big.Int).Mul(p, q).Cmp(N) != 0 {
		return nil, errors.New("arith: Paillier N != P·Q")
	}
	pm1 := new(big.Int).Sub(p, one)
	qm1 := new(big.Int).Sub(q, one)
	pp := new(big.Int).Mul(p, p)
	qq := new(big.Int).Mul(q, q)
	nn, err := NewCRT(pp, new(big.Int).Mul(p, pm1), qq, new(big.Int).Mul(q, qm1))
	if err != nil {
		return nil, err
	}
	modN, err := NewCRT(p, pm1, q, qm1)
	if err != nil {
		return nil, err
	}
	hp := new(big.Int).ModInverse(new(big.Int).Sub(p, new(big.Int).Mod(q, p)), p)
	hq := new(big.Int).ModInverse(new(big.Int).Sub(q, new(big.Int).Mod(p, q)), q)
	nInvP1 := new(big.Int).ModInverse(N, pm1)
	nInvQ1 := new(big.Int).ModInverse(N, qm1)
	pInvQ := new(big.Int).ModInverse(p, q)
	if hp == nil || hq == nil || nInvP1 == nil || nInvQ1 == nil || pInvQ == nil {
		return nil, errors.New("arith: Paillier key is not of the form N = p·q with gcd(N, φ(N)) = 1")
	}
	out := &PaillierSecret{
		Paillier: Paillier{N: new(big.Int).Set(N), NN: nn},
		p:        new(big.Int).Set(p), q: new(big.Int).Set(q),
		pp: pp, qq: qq, hp: hp, hq: hq,
		nInvP1: nInvP1, nInvQ1: nInvQ1,
		modN: modN, pInvQ: pInvQ, pm1: pm1, qm1: qm1,
		qModP1: new(big.Int).Mod(q, pm1), pModQ1: new(big.Int).Mod(p, qm1),
	}
	out.Paillier.sec = out
	return out, nil
}

// randomNonce returns a uniform r ∈ Z*_N and r^N mod N² with about 60% of
// the work of one CRT exponentiation. Modulo p², x ↦ x^p depends only on
// x mod p (binomial theorem), so for r ≡ r_p (mod p)
//
//	r^N = (r^q)^p ≡ ((r_p^{q mod (p−1)} mod p)^p) (mod p²),
//
// an exponentiation modulo p with a 1024-bit exponent followed by one modulo
// p² with exponent p, instead of one modulo p² with a 2048-bit exponent. The
// same holds for q; r and r^N mod N² are then recombined by the CRT.
func (sk *PaillierSecret) randomNonce(rnd io.Reader) (r, rN *big.Int, err error) {
	rp, err := RandomUnit(rnd, sk.p)
	if err != nil {
		return nil, nil, err
	}
	rq, err := RandomUnit(rnd, sk.q)
	if err != nil {
		return nil, nil, err
	}
	yp := new(big.Int).Exp(rp, sk.qModP1, sk.p)
	yp.Exp(yp, sk.p, sk.pp)
	yq := new(big.Int).Exp(rq, sk.pModQ1, sk.q)
	yq.Exp(yq, sk.q, sk.qq)
	rN = sk.NN.crt.combine(yp, yq)
	r = sk.modN.crt.combine(rp, rq)
	return r, rN, nil
}

// Public returns the public part. It keeps the CRT and the link to sk, so it
// must stay with the key owner.
func (sk *PaillierSecret) Public() *Paillier { return &sk.Paillier }

// Decrypt returns the plaintext of c ∈ Z*_{N²} in [0, N). It computes
// m_p = L_p(c^{p−1} mod p²)·h_p mod p and likewise mod q, then recombines
// (Paillier 1999, §7 "decryption using Chinese-remaindering").
func (sk *PaillierSecret) Decrypt(c *big.Int) (*big.Int, error) {
	if !sk.IsCiphertext(c) {
		return nil, errors.New("arith: Paillier ciphertext is not a unit modulo N²")
	}
	mp := sk.decryptPart(c, sk.p, sk.pp, sk.pm1, sk.hp)
	mq := sk.decryptPart(c, sk.q, sk.qq, sk.qm1, sk.hq)
	// m = mp + p·((mq − mp)·p⁻¹ mod q)
	t := new(big.Int).Sub(mq, mp)
	t.Mul(t, sk.pInvQ)
	t.Mod(t, sk.q)
	t.Mul(t, sk.p)
	return t.Add(t, mp), nil
}

func (sk *PaillierSecret) decryptPart(c, p, pp, pm1, h *big.Int) *big.Int {
	x := new(big.Int).Mod(c, pp)
	x.Exp(x, pm1, pp)
	x.Sub(x, one)
	x.Div(x, p)
	x.Mul(x, h)
	return x.Mod(x, p)
}

// Nonce returns the r ∈ Z*_N with c = Γ^m·r^N mod N² for the plaintext m of
// c: since c ≡ r^N (mod N), r = c^{N⁻¹ mod φ(N)} mod N.
func (sk *PaillierSecret) Nonce(c *big.Int) (*big.Int, error) {
	if !sk.IsCiphertext(c) {
		return nil, errors.New("arith: Paillier ciphertext is not a unit modulo N²")
	}
	rp := new(big.Int).Mod(c, sk.p)
	rp.Exp(rp, sk.nInvP1, sk.p)
	rq := new(big.Int).Mod(c, sk.q)
	rq.Exp(rq, sk.nInvQ1, sk.q)
	t := new(big.Int).Sub(rq, rp)
	t.Mul(t, sk.pInvQ)
	t.Mod(t, sk.q)
	t.Mul(t, sk.p)
	return t.Add(t, rp), nil
}

// ExpN returns x^e mod N using the CRT.
func (sk *PaillierSecret) ExpN(x, e *big.Int) *big.Int { return sk.modN.Exp(x, e) }

// Wipe overwrites the factors held by sk.
func (sk *PaillierSecret) Wipe() {
	for _, v := range []*big.Int{sk.p, sk.q, sk.pp, sk.qq, sk.hp, sk.hq, sk.nInvP1, sk.nInvQ1, sk.pInvQ, sk.pm1, sk.qm1, sk.qModP1, sk.pModQ1} {
		WipeInt(v)
	}
	sk.NN.wipe()
	sk.modN.wipe()
}

// RandomUnit returns a uniform element of Z*_n.
func RandomUnit(rnd io.Reader, n *big.Int) (*big.Int, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	for i := 0; i < 128; i++ {
		r, err := rand.Int(rnd, n)
		if err != nil {
			return nil, err
		}
		if IsUnit(r, n) {
			return r, nil
		}
	}
	return nil, errors.New("arith: no unit found in 128 draws; the modulus is not an RSA modulus")
}

// RandomInt returns a uniform integer in [0, n).
func RandomInt(rnd io.Reader, n *big.Int) (*big.Int, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	return rand.Int(rnd, n)
}

// WipeInt overwrites the words of x and sets it to zero.
func WipeInt(x *big.Int) {
	if x == nil {
		return
	}
	w := x.Bits()
	for i := range w {
		w[i] = 0
	}
	x.SetInt64(0)
}
