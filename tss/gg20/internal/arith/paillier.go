package arith

import (
	"crypto/rand"
	"errors"
	"io"
	"math/big"

	"filippo.io/bigmod"
	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
)

// Paillier is a Paillier public key N (generator Γ = N+1) with N² and N as
// Moduli. When it comes from NewPaillierSecret, both compute with the CRT.
type Paillier struct {
	N    *big.Int
	NN   *Modulus // N²
	ModN *Modulus // N

	nNN    *bigmod.Nat     // N as an element modulo N²
	nBytes []byte          // N as an exponent
	sec    *PaillierSecret // set when the key owner computes
}

// NewPaillier returns the public-key arithmetic for an odd modulus N > 1.
func NewPaillier(N *big.Int) *Paillier {
	pk := &Paillier{N: new(big.Int).Set(N), NN: New(new(big.Int).Mul(N, N)), ModN: New(N), nBytes: N.Bytes()}
	pk.init()
	return pk
}

func (pk *Paillier) init() {
	if pk.NN.ct != nil {
		pk.nNN = pk.NN.ct.reducePublic(pk.N, pk.NN.m)
	}
}

// GammaExp returns Γ^m mod N² = 1 + (m mod N)·N (Γ = N+1 has order N modulo
// N², and (1+N)^m ≡ 1 + m·N by the binomial theorem), in constant time for
// 0 ≤ m < 2^(8·size of N²); a longer or negative m (only public values
// are) is reduced with math/big first.
func (pk *Paillier) GammaExp(m *big.Int) *big.Int {
	if pk.NN.ct == nil {
		return new(big.Int)
	}
	g := pk.gammaExp(m)
	out := pk.NN.ct.int(g)
	wipeNat(g)
	return out
}

func (pk *Paillier) gammaExp(m *big.Int) *bigmod.Nat {
	if m.Sign() < 0 || m.BitLen() > 8*pk.NN.ct.size {
		m = new(big.Int).Mod(m, pk.N)
	}
	width := pk.ModN.ct.size // every plaintext below N fits; only public values are longer
	if m.BitLen() > 8*width {
		width = pk.NN.ct.size
	}
	t, _ := pk.ModN.ct.reduce(m, width) // m mod N
	t.ExpandFor(pk.NN.ct.m)
	t.Mul(pk.nNN, pk.NN.ct.m) // (m mod N)·N < N²
	return t.Add(pk.NN.ct.natOne(), pk.NN.ct.m)
}

// nthPower returns r^N mod N² for 0 ≤ r < N² in constant time.
func (pk *Paillier) nthPower(r *big.Int) (*bigmod.Nat, bool) {
	if pk.NN.ct == nil {
		return nil, false
	}
	if pk.sec != nil {
		return pk.sec.nthPower(r)
	}
	rn, ok := pk.NN.ct.reduce(r, pk.NN.ct.size)
	if !ok {
		return nil, false
	}
	out := pk.NN.ct.exp(rn, pk.nBytes)
	wipeNat(rn)
	return out, true
}

// EncryptWithNonce returns Γ^m · r^N mod N² in constant time, for a
// plaintext m and a nonce r in [0, 2^⌈log₂ N⌉) (0 if either is out of that
// range; values from N up are reduced modulo N).
func (pk *Paillier) EncryptWithNonce(m, r *big.Int) *big.Int {
	if m.Sign() < 0 || m.BitLen() > pk.N.BitLen() || r.Sign() < 0 || r.BitLen() > pk.N.BitLen() {
		return new(big.Int)
	}
	rN, ok := pk.nthPower(r)
	if !ok {
		return new(big.Int)
	}
	c := pk.gammaExp(m)
	c.Mul(rN, pk.NN.ct.m)
	out := pk.NN.ct.int(c)
	wipeNat(c)
	wipeNat(rN)
	return out
}

// EncryptWithNonceVarTime is EncryptWithNonce for a public m and r (as in
// checking a revealed opening).
func (pk *Paillier) EncryptWithNonceVarTime(m, r *big.Int) *big.Int {
	g := new(big.Int).Mod(m, pk.N)
	g.Mul(g, pk.N).Add(g, one)
	return pk.NN.MulVarTime(g, pk.NN.ExpVarTime(r, pk.N))
}

// Encrypt returns a fresh encryption of m ∈ [0, N) and its nonce r ∈ Z*_N,
// in constant time.
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

// RandomNonce returns a uniform nonce r and r^N mod N², in constant time.
// For the key owner r is a uniform unit (see PaillierSecret.randomNonce);
// otherwise r is uniform in [1, N), which is a unit except with probability
// below 2^−1000 for a valid key — testing it with a GCD would make the
// time depend on r.
func (pk *Paillier) RandomNonce(rnd io.Reader) (r, rN *big.Int, err error) {
	if pk.NN.ct == nil {
		return nil, nil, errors.New("arith: Paillier modulus must be odd and greater than 1")
	}
	if pk.sec != nil {
		return pk.sec.randomNonce(rnd)
	}
	r, err = randomNonZero(rnd, pk.N)
	if err != nil {
		return nil, nil, err
	}
	n, ok := pk.nthPower(r)
	if !ok {
		return nil, nil, errSize
	}
	rN = pk.NN.ct.int(n)
	wipeNat(n)
	return r, rN, nil
}

// IsCiphertext reports whether c is a unit modulo N² (0 < c < N², gcd(c, N) = 1).
func (pk *Paillier) IsCiphertext(c *big.Int) bool {
	if c == nil || c.Sign() <= 0 || c.Cmp(pk.NN.m) >= 0 {
		return false
	}
	return new(big.Int).GCD(nil, nil, c, pk.N).Cmp(one) == 0
}

var errWiped = errors.New("arith: Paillier private key was wiped")

// PaillierSecret is a party's own Paillier key with CRT arithmetic, all of
// it constant time in the factors.
type PaillierSecret struct {
	Paillier
	p, q       *ctMod      // primes (the factors of ModN's CRT)
	pp, qq     *ctMod      // p², q² (the factors of NN's CRT)
	pm1, qm1   []byte      // p−1, q−1 as exponents
	pE, qE     []byte      // p, q as exponents
	qModP1     []byte      // q mod (p−1) as an exponent
	pModQ1     []byte      // p mod (q−1) as an exponent
	nInvP1     []byte      // N⁻¹ mod (p−1) as an exponent
	nInvQ1     []byte      // N⁻¹ mod (q−1) as an exponent
	hp, hq     *bigmod.Nat // (−q)⁻¹ mod p, (−p)⁻¹ mod q
	pHensel    *hensel     // exact division by p
	qHensel    *hensel     // exact division by q
	unsafeNInv bool        // nInvP1, nInvQ1 came from math/big (see nInverse)
}

// NewPaillierSecret builds CRT arithmetic from a tss-lib Paillier private
// key. It checks that N = P·Q with distinct odd factors. Its
// precomputations on P and Q are constant time (see nInverse for the one
// exception, which tss-lib's keys never meet).
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
	defer func() {
		for _, v := range []*big.Int{pm1, qm1, pp, qq} {
			WipeInt(v)
		}
	}()
	modN, err := NewCRT(p, pm1, q, qm1)
	if err != nil {
		return nil, err
	}
	op, oq := new(big.Int).Mul(p, pm1), new(big.Int).Mul(q, qm1) // φ(p²), φ(q²)
	nn, err := NewCRT(pp, op, qq, oq)
	WipeInt(op)
	WipeInt(oq)
	if err != nil {
		return nil, err
	}
	out := &PaillierSecret{
		Paillier: Paillier{N: new(big.Int).Set(N), NN: nn, ModN: modN, nBytes: N.Bytes()},
		p:        modN.crt.m1, q: modN.crt.m2,
		pp: nn.crt.m1, qq: nn.crt.m2,
	}
	out.Paillier.init()
	out.Paillier.sec = out
	out.pm1, _ = expBytes(pm1, out.p.bits)
	out.qm1, _ = expBytes(qm1, out.q.bits)
	out.pE, _ = expBytes(p, out.p.bits)
	out.qE, _ = expBytes(q, out.q.bits)
	out.qModP1 = reduceToExp(modN.crt.o1, q, out.q.size)
	out.pModQ1 = reduceToExp(modN.crt.o2, p, out.p.size)

	// (−q)⁻¹ mod p = −(q⁻¹ mod p), and q⁻¹ mod p is the CRT's m2⁻¹.
	out.hp = bigmod.NewNat().ExpandFor(out.p.m).Sub(modN.crt.m2inv, out.p.m)
	// p⁻¹ mod q = p^(q−2) mod q (Fermat).
	qMinus2 := new(big.Int).Sub(q, two)
	qm2, _ := expBytes(qMinus2, out.q.bits)
	WipeInt(qMinus2)
	pr, _ := out.q.reduce(p, out.p.size)
	pInvQ := out.q.exp(pr, qm2)
	out.hq = bigmod.NewNat().ExpandFor(out.q.m).Sub(pInvQ, out.q.m)
	clear(qm2)
	wipeNat(pr)
	wipeNat(pInvQ)

	if out.pHensel, err = newHensel(p, out.p); err != nil {
		return nil, err
	}
	if out.qHensel, err = newHensel(q, out.q); err != nil {
		return nil, err
	}
	var safeP, safeQ bool
	out.nInvP1, safeP = nInverse(N, p, out.p, modN.crt.o1)
	out.nInvQ1, safeQ = nInverse(N, q, out.q, modN.crt.o2)
	out.unsafeNInv = !safeP || !safeQ
	if out.nInvP1 == nil || out.nInvQ1 == nil {
		return nil, errors.New("arith: Paillier key is not of the form N = p·q with gcd(N, φ(N)) = 1")
	}
	return out, nil
}

// reduceToExp returns x mod o (o secret) as an exponent of o's size,
// reducing in constant time; x must have at most width bytes.
func reduceToExp(o *ctMod, x *big.Int, width int) []byte {
	r, _ := o.reduce(x, width)
	b := r.Bytes(o.m)
	wipeNat(r)
	return b
}

// nInverse returns N⁻¹ mod (p−1) as an exponent of p's size. tss-lib's
// Paillier primes are safe primes, p = 2p'+1 with p' prime; then the
// inverse is the d ≡ 1 (mod 2) with d ≡ N^(p'−2) (mod p') (Fermat), which
// is computed in constant time and checked (N·d ≡ 1 mod p−1, also in
// constant time). For any other p it falls back to math/big's variable-time
// ModInverse and reports safe = false. It returns nil if N is not
// invertible modulo p−1.
func nInverse(N, p *big.Int, pm *ctMod, pm1 *ctMod) (d []byte, safe bool) {
	pPrime := new(big.Int).Rsh(p, 1) // (p−1)/2
	defer WipeInt(pPrime)
	if pp, err := newCTMod(pPrime); err == nil && pPrime.Bit(0) == 1 {
		nr, _ := pp.reduce(N, (N.BitLen()+7)/8)
		pm2 := new(big.Int).Sub(pPrime, two)
		e, _ := expBytes(pm2, pp.bits)
		WipeInt(pm2)
		v := pp.exp(nr, e) // N⁻¹ mod p' if p' is prime
		clear(e)
		wipeNat(nr)
		// d = v + p'·(1 − v mod 2) modulo p−1 (v + p' is odd when v is even).
		vb := v.Bytes(pp.m)
		wipeNat(v)
		dn := bigmod.NewNat().ExpandFor(pm1.m)
		if _, err := dn.SetBytes(vb, pm1.m); err != nil {
			clear(vb)
			return nil, false // unreachable: v < p' < p−1
		}
		clear(vb)
		flip := bigmod.NewNat().SetUint(1 - dn.IsOdd()).ExpandFor(pm1.m)
		pn, _ := pm1.reduce(pPrime, pm.size)
		flip.Mul(pn, pm1.m)
		dn.Add(flip, pm1.m)
		// Check N·d ≡ 1 (mod p−1).
		chk, _ := pm1.reduce(N, (N.BitLen()+7)/8)
		chk.Mul(dn, pm1.m)
		ok := chk.IsOne() == 1
		d = dn.Bytes(pm1.m)
		for _, n := range []*bigmod.Nat{dn, flip, pn, chk} {
			wipeNat(n)
		}
		if ok {
			return d, true
		}
		clear(d)
	}
	pm1Int := new(big.Int).Sub(p, one)
	defer WipeInt(pm1Int)
	inv := new(big.Int).ModInverse(N, pm1Int)
	if inv == nil {
		return nil, false
	}
	d = inv.FillBytes(make([]byte, pm.size))
	WipeInt(inv)
	return d, false
}

// hensel divides exactly by an odd p: if x = p·t with 0 ≤ t < p, then
// t = x·p⁻¹ mod 2^K for K = 64·(limbs of p), so t follows from a
// multiplication modulo a power of two, without a division (whose time
// math/big makes depend on the values).
type hensel struct {
	twoK *ctMod      // 2^K
	pInv *bigmod.Nat // p⁻¹ mod 2^K
	p    *ctMod
}

// newHensel computes p⁻¹ mod 2^K by Newton's iteration y ← y·(2 − p·y),
// which doubles the number of correct low bits each step, starting from
// y = p (correct to 3 bits for odd p), in constant time.
func newHensel(p *big.Int, pm *ctMod) (*hensel, error) {
	limbs := (pm.bits + 63) / 64
	pow := new(big.Int).Lsh(one, uint(64*limbs))
	twoK, err := newCTMod(pow)
	if err != nil {
		return nil, err
	}
	y, _ := twoK.reduce(p, pm.size)
	for correct := 3; correct < 64*limbs; correct *= 2 {
		t, _ := twoK.reduce(p, pm.size)
		t.Mul(y, twoK.m) // p·y
		u, _ := twoK.reduce(two, 1)
		u.Sub(t, twoK.m) // 2 − p·y
		y.Mul(u, twoK.m)
		wipeNat(t)
		wipeNat(u)
	}
	chk, _ := twoK.reduce(p, pm.size)
	chk.Mul(y, twoK.m)
	ok := chk.IsOne() == 1
	wipeNat(chk)
	if !ok {
		return nil, errors.New("arith: no inverse modulo 2^K for an even factor")
	}
	return &hensel{twoK: twoK, pInv: y, p: pm}, nil
}

// divide returns x/p as an element modulo p, for x (any size) = p·t with
// t < p; ok is false if the quotient is not below p, which means x was not
// such a multiple.
func (h *hensel) divide(x *bigmod.Nat) (*bigmod.Nat, bool) {
	t := bigmod.NewNat().Mod(x, h.twoK.m)
	t.Mul(h.pInv, h.twoK.m)
	b := t.Bytes(h.twoK.m) // K/8 + 1 bytes; t < 2^K, so the first is 0
	wipeNat(t)
	q, err := bigmod.NewNat().SetBytes(b[1:], h.p.m)
	clear(b)
	return q, err == nil
}

// nthPower returns r^N mod N² for 0 ≤ r < N² with the factorisation, in
// constant time: modulo p², x ↦ x^p depends only on x mod p (binomial
// theorem), so
//
//	r^N = (r^q)^p ≡ ((r mod p)^{q mod (p−1)} mod p)^p   (mod p²),
//
// which holds for r ≡ 0 (mod p) too, and likewise modulo q²; the two are
// recombined by the CRT. That is an exponentiation modulo p with a
// 1024-bit exponent and one modulo p² with exponent p per prime, instead
// of one modulo N² with a 2048-bit exponent.
func (sk *PaillierSecret) nthPower(r *big.Int) (*bigmod.Nat, bool) {
	rn, ok := sk.NN.ct.reduce(r, sk.NN.ct.size)
	if !ok {
		return nil, false
	}
	rp := bigmod.NewNat().Mod(rn, sk.p.m)
	rq := bigmod.NewNat().Mod(rn, sk.q.m)
	wipeNat(rn)
	out := sk.nthPowerCRT(rp, rq)
	wipeNat(rp)
	wipeNat(rq)
	return out, true
}

// nthPowerCRT returns r^N mod N² for the r with r ≡ rp (mod p), r ≡ rq
// (mod q).
func (sk *PaillierSecret) nthPowerCRT(rp, rq *bigmod.Nat) *bigmod.Nat {
	yp := sk.p.exp(rp, sk.qModP1).ExpandFor(sk.pp.m)
	yq := sk.q.exp(rq, sk.pModQ1).ExpandFor(sk.qq.m)
	zp := sk.pp.exp(yp, sk.pE)
	zq := sk.qq.exp(yq, sk.qE)
	wipeNat(yp)
	wipeNat(yq)
	return sk.NN.crt.combine(zp, zq, sk.NN.ct)
}

// randomNonce returns a uniform r ∈ Z*_N and r^N mod N², drawing r mod p
// and r mod q uniformly from [1, p) and [1, q) — every such pair is a unit —
// so no GCD is needed.
func (sk *PaillierSecret) randomNonce(rnd io.Reader) (r, rN *big.Int, err error) {
	rp, err := randomModPrime(rnd, sk.p)
	if err != nil {
		return nil, nil, err
	}
	rq, err := randomModPrime(rnd, sk.q)
	if err != nil {
		return nil, nil, err
	}
	n := sk.nthPowerCRT(rp, rq)
	rN = sk.NN.ct.int(n)
	wipeNat(n)
	rc := sk.ModN.crt.combine(rp, rq, sk.ModN.ct)
	r = sk.ModN.ct.int(rc)
	wipeNat(rc)
	wipeNat(rq)
	return r, rN, nil
}

// randomModPrime returns a uniform non-zero residue modulo the secret prime
// p: 128 more random bits than p has, reduced in constant time (a
// statistical distance below 2^−128 from uniform). crypto/rand.Int would
// compare candidates with p and reject some, at a rate that shows p's
// leading bits.
func randomModPrime(rnd io.Reader, p *ctMod) (*bigmod.Nat, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, p.size+16)
	defer clear(b)
	for i := 0; i < 128; i++ {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, err
		}
		w := wideNat(b)
		n := bigmod.NewNat().Mod(w, p.m)
		wipeNat(w)
		if n.IsZero() == 0 {
			return n, nil
		}
	}
	return nil, errors.New("arith: no non-zero residue found in 128 draws")
}

// Public returns the public part. It keeps the CRT and the link to sk, so it
// must stay with the key owner.
func (sk *PaillierSecret) Public() *Paillier { return &sk.Paillier }

// Decrypt returns the plaintext of c ∈ Z*_{N²} in [0, N), in constant time.
// It computes m_p = L_p(c^{p−1} mod p²)·h_p mod p and likewise mod q, then
// recombines (Paillier 1999, §7 "decryption using Chinese-remaindering");
// L_p(x) = (x−1)/p is an exact division, done by Hensel (see hensel).
func (sk *PaillierSecret) Decrypt(c *big.Int) (*big.Int, error) {
	if sk.p == nil {
		return nil, errWiped
	}
	if !sk.IsCiphertext(c) {
		return nil, errors.New("arith: Paillier ciphertext is not a unit modulo N²")
	}
	cn := sk.NN.ct.reducePublic(c, sk.NN.m)
	mp, okP := sk.decryptPart(cn, sk.pp, sk.pm1, sk.pHensel, sk.hp)
	mq, okQ := sk.decryptPart(cn, sk.qq, sk.qm1, sk.qHensel, sk.hq)
	wipeNat(cn)
	if !okP || !okQ {
		return nil, errors.New("arith: Paillier decryption failed: the key's factors are inconsistent")
	}
	m := sk.ModN.crt.combine(mp, mq, sk.ModN.ct)
	out := sk.ModN.ct.int(m)
	wipeNat(m)
	wipeNat(mq)
	return out, nil
}

func (sk *PaillierSecret) decryptPart(c *bigmod.Nat, pp *ctMod, pm1 []byte, h *hensel, hp *bigmod.Nat) (*bigmod.Nat, bool) {
	x := bigmod.NewNat().Mod(c, pp.m)
	y := pp.exp(x, pm1) // ≡ 1 (mod p) for a unit c
	wipeNat(x)
	y.SubOne(pp.m)       // p·L
	l, ok := h.divide(y) // L
	wipeNat(y)
	if !ok {
		return nil, false
	}
	return l.Mul(hp, h.p.m), true
}

// Nonce returns the r ∈ Z*_N with c = Γ^m·r^N mod N² for the plaintext m of
// c: since c ≡ r^N (mod N), r = c^{N⁻¹ mod φ(N)} mod N, computed modulo p
// and q in constant time.
func (sk *PaillierSecret) Nonce(c *big.Int) (*big.Int, error) {
	if sk.p == nil {
		return nil, errWiped
	}
	if !sk.IsCiphertext(c) {
		return nil, errors.New("arith: Paillier ciphertext is not a unit modulo N²")
	}
	cn := sk.NN.ct.reducePublic(c, sk.NN.m)
	rp := sk.p.exp(bigmod.NewNat().Mod(cn, sk.p.m), sk.nInvP1)
	rq := sk.q.exp(bigmod.NewNat().Mod(cn, sk.q.m), sk.nInvQ1)
	wipeNat(cn)
	r := sk.ModN.crt.combine(rp, rq, sk.ModN.ct)
	out := sk.ModN.ct.int(r)
	wipeNat(r)
	wipeNat(rq)
	return out, nil
}

// Wipe overwrites the values derived from the factors that sk holds and
// drops the factorisation (see Modulus.wipe for what bigmod keeps).
func (sk *PaillierSecret) Wipe() {
	for _, b := range [][]byte{sk.pm1, sk.qm1, sk.pE, sk.qE, sk.qModP1, sk.pModQ1, sk.nInvP1, sk.nInvQ1} {
		clear(b)
	}
	for _, n := range []*bigmod.Nat{sk.hp, sk.hq} {
		wipeNat(n)
	}
	for _, h := range []*hensel{sk.pHensel, sk.qHensel} {
		if h != nil {
			wipeNat(h.pInv)
		}
	}
	sk.p, sk.q, sk.pp, sk.qq, sk.pHensel, sk.qHensel = nil, nil, nil, nil, nil, nil
	sk.NN.wipe()
	sk.ModN.wipe()
	sk.Paillier.sec = nil
}

// randomNonZero returns a uniform integer in [1, n). crypto/rand.Int
// rejects candidates ≥ n, which depends only on discarded values; the
// retry on 0 happens with probability 1/n.
func randomNonZero(rnd io.Reader, n *big.Int) (*big.Int, error) {
	if n.Cmp(one) <= 0 {
		return nil, errors.New("arith: no non-zero value below a bound of 1 or less")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	for i := 0; i < 128; i++ {
		r, err := rand.Int(rnd, n)
		if err != nil {
			return nil, err
		}
		if r.Sign() != 0 {
			return r, nil
		}
	}
	return nil, errors.New("arith: no non-zero value found in 128 draws")
}

// RandomInt returns a uniform integer in [0, n) for n > 0.
func RandomInt(rnd io.Reader, n *big.Int) (*big.Int, error) {
	if n == nil || n.Sign() <= 0 {
		return nil, errors.New("arith: random integer bound must be positive")
	}
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
