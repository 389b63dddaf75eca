package arith

import (
	"crypto/rand"
	"math/big"
	"testing"

	"filippo.io/bigmod"
	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
)

func randBelow(t *testing.T, n *big.Int) *big.Int {
	t.Helper()
	v, err := rand.Int(rand.Reader, n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pow2(bits int) *big.Int { return new(big.Int).Lsh(one, uint(bits)) }

// edgeValues are 0, 1, m−1 and a random value below m.
func edgeValues(t *testing.T, m *big.Int) []*big.Int {
	return []*big.Int{new(big.Int), big.NewInt(1), new(big.Int).Sub(m, one), randBelow(t, m)}
}

// TestModulus_ConstantTimeMatchesMathBig checks Exp and Mul against
// math/big for the moduli presigning uses (N, N², Ñ, with and without the
// CRT, and a one-word modulus), edge and random bases, and exponents at
// the edges of their declared widths.
func TestModulus_ConstantTimeMatchesMathBig(t *testing.T) {
	pp, err := fixtures.PreParams(6)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	N := pp.PaillierSK.N
	cases := map[string]*Modulus{
		"N": New(N), "N²": New(new(big.Int).Mul(N, N)), "Ñ": New(pp.NTildei),
		"N with CRT": sk.ModN, "N² with CRT": sk.NN, "Ñ with CRT": rp.NT,
		"35": New(big.NewInt(35)),
	}
	for name, M := range cases {
		m := M.M()
		bases := edgeValues(t, m)
		if m.BitLen() > 1024 {
			bases = append(bases, new(big.Int).Set(pp.PaillierSK.P)) // a non-unit for N and N²
		}
		for _, bits := range []int{1, 63, 256, 768} {
			exps := []*big.Int{new(big.Int), big.NewInt(1), new(big.Int).Sub(pow2(bits), one), randBelow(t, pow2(bits))}
			for _, x := range bases {
				for _, e := range exps {
					want := new(big.Int).Exp(x, e, m)
					if got := M.Exp(x, e, bits); got.Cmp(want) != 0 {
						t.Fatalf("%s: Exp(%d-bit x, %d-bit e, %d) differs from math/big", name, x.BitLen(), e.BitLen(), bits)
					}
				}
			}
		}
		for _, a := range bases {
			for _, b := range bases {
				want := new(big.Int).Mul(a, b)
				want.Mod(want, m)
				if got := M.Mul(a, b); got.Cmp(want) != 0 {
					t.Fatalf("%s: Mul differs from math/big", name)
				}
				if got := M.MulVarTime(a, b); got.Cmp(want) != 0 {
					t.Fatalf("%s: MulVarTime differs from math/big", name)
				}
			}
		}
	}
}

// TestPaillier_ConstantTimeMatchesVarTime checks GammaExp, EncryptWithNonce
// and RandomNonce, for the key owner (CRT) and for everyone else, against
// the variable-time formulas.
func TestPaillier_ConstantTimeMatchesVarTime(t *testing.T) {
	pp, err := fixtures.PreParams(7)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	N := sk.N
	NN := new(big.Int).Mul(N, N)
	p := pp.PaillierSK.P
	for name, pk := range map[string]*Paillier{"owner": sk.Public(), "public": NewPaillier(N)} {
		ms := append(edgeValues(t, N), new(big.Int).Set(N), new(big.Int).Add(N, big.NewInt(5)),
			randBelow(t, pow2(3000)), randBelow(t, pow2(5000)), big.NewInt(-3))
		for _, m := range ms {
			want := new(big.Int).Mod(m, N)
			want.Mul(want, N).Add(want, one).Mod(want, NN)
			if got := pk.GammaExp(m); got.Cmp(want) != 0 {
				t.Fatalf("%s: GammaExp(%d-bit m) differs", name, m.BitLen())
			}
		}
		rs := append(edgeValues(t, N)[1:], new(big.Int).Set(p), new(big.Int).Mul(p, big.NewInt(3)))
		for _, m := range edgeValues(t, N) {
			for _, r := range rs {
				if got, want := pk.EncryptWithNonce(m, r), pk.EncryptWithNonceVarTime(m, r); got.Cmp(want) != 0 {
					t.Fatalf("%s: EncryptWithNonce differs from EncryptWithNonceVarTime", name)
				}
			}
		}
		for i := 0; i < 3; i++ {
			r, rN, err := pk.RandomNonce(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if !IsUnit(r, N) || rN.Cmp(new(big.Int).Exp(r, N, NN)) != 0 {
				t.Fatalf("%s: RandomNonce returned a non-unit or a wrong r^N", name)
			}
		}
		if pk.EncryptWithNonce(big.NewInt(-1), one).Sign() != 0 || pk.EncryptWithNonce(one, NN).Sign() != 0 {
			t.Fatalf("%s: out-of-range plaintext or nonce did not give 0", name)
		}
	}
}

// TestPaillierSecret_DecryptAndNonceMatchVarTime decrypts and recovers the
// nonce of ciphertexts of edge plaintexts with edge nonces, and compares
// with tss-lib's (math/big) decryption and the plain nonce formula.
func TestPaillierSecret_DecryptAndNonceMatchVarTime(t *testing.T) {
	pp, err := fixtures.PreParams(8)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	if sk.unsafeNInv {
		t.Fatal("tss-lib key (safe primes) took the variable-time N⁻¹ mod (p−1) path")
	}
	checkDecryptAndNonce(t, sk, pp.PaillierSK)
}

func checkDecryptAndNonce(t *testing.T, sk *PaillierSecret, tl *paillier.PrivateKey) {
	t.Helper()
	N := sk.N
	pub := NewPaillier(N)
	phi := new(big.Int).Mul(new(big.Int).Sub(tl.P, one), new(big.Int).Sub(tl.Q, one))
	nInv := new(big.Int).ModInverse(N, phi)
	for _, m := range edgeValues(t, N) {
		for _, r := range edgeValues(t, N)[1:] {
			if !IsUnit(r, N) {
				continue
			}
			c := pub.EncryptWithNonceVarTime(m, r)
			got, err := sk.Decrypt(c)
			if err != nil || got.Cmp(m) != 0 {
				t.Fatalf("Decrypt: got %v, err %v", got, err)
			}
			if want, err := tl.Decrypt(c); err != nil || want.Cmp(got) != 0 {
				t.Fatalf("Decrypt differs from tss-lib's (%v)", err)
			}
			nonce, err := sk.Nonce(c)
			if err != nil || nonce.Cmp(r) != 0 {
				t.Fatalf("Nonce did not recover r (err %v)", err)
			}
			if want := new(big.Int).Exp(c, nInv, N); want.Cmp(nonce) != 0 {
				t.Fatal("Nonce differs from c^(N⁻¹ mod φ(N)) mod N")
			}
		}
	}
}

// TestPaillierSecret_NonSafePrimes covers keys whose primes are not safe
// primes (not made by tss-lib): N⁻¹ mod (p−1) then comes from math/big,
// and everything else must still be right.
func TestPaillierSecret_NonSafePrimes(t *testing.T) {
	var p, q *big.Int
	for {
		var err error
		if p, err = rand.Prime(rand.Reader, 512); err != nil {
			t.Fatal(err)
		}
		if q, err = rand.Prime(rand.Reader, 512); err != nil {
			t.Fatal(err)
		}
		N := new(big.Int).Mul(p, q)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		if p.Cmp(q) != 0 && new(big.Int).GCD(nil, nil, N, phi).Cmp(one) == 0 {
			break
		}
	}
	N := new(big.Int).Mul(p, q)
	tl := &paillier.PrivateKey{PublicKey: paillier.PublicKey{N: N}, P: p, Q: q,
		PhiN:    new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)),
		LambdaN: new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))}
	sk, err := NewPaillierSecret(tl)
	if err != nil {
		t.Fatal(err)
	}
	if !sk.unsafeNInv && (new(big.Int).Rsh(p, 1).ProbablyPrime(20) == false || new(big.Int).Rsh(q, 1).ProbablyPrime(20) == false) {
		t.Fatal("a key with non-safe primes took the safe-prime path")
	}
	checkDecryptAndNonce(t, sk, tl)
}

// TestHensel_DividesExactly checks the exact division behind Decrypt on
// edge and random quotients.
func TestHensel_DividesExactly(t *testing.T) {
	pp, err := fixtures.PreParams(9)
	if err != nil {
		t.Fatal(err)
	}
	p := pp.PaillierSK.P
	pm, _ := newCTMod(p)
	h, err := newHensel(p, pm)
	if err != nil {
		t.Fatal(err)
	}
	ppm, _ := newCTMod(new(big.Int).Mul(p, p))
	for _, q := range edgeValues(t, p) {
		x, _ := ppm.reduce(new(big.Int).Mul(p, q), ppm.size)
		got, ok := h.divide(x)
		if !ok || pm.int(got).Cmp(q) != 0 {
			t.Fatalf("divide(p·%x) = %v, %v", q, got, ok)
		}
	}
	if _, err := newHensel(big.NewInt(10), pm); err == nil {
		t.Fatal("accepted an even divisor")
	}
}

// TestReduce_FixedWidth checks the constant-time reduction on values of
// every length up to the declared width, and its refusals.
func TestReduce_FixedWidth(t *testing.T) {
	m := big.NewInt(1000003)
	c, err := newCTMod(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*big.Int{new(big.Int), big.NewInt(1000002), big.NewInt(1000003), new(big.Int).Sub(pow2(64), one), randBelow(t, pow2(64))} {
		n, ok := c.reduce(x, 8)
		if !ok || c.int(n).Cmp(new(big.Int).Mod(x, m)) != 0 {
			t.Fatalf("reduce(%v) wrong", x)
		}
	}
	if _, ok := c.reduce(pow2(64), 8); ok {
		t.Fatal("reduce accepted a value longer than its width")
	}
	if _, ok := c.reduce(big.NewInt(-1), 8); ok {
		t.Fatal("reduce accepted a negative value")
	}
	if got := c.int(c.reducePublic(big.NewInt(-1), m)); got.Cmp(big.NewInt(1000002)) != 0 {
		t.Fatalf("reducePublic(−1) = %v", got)
	}
	var n *bigmod.Nat
	wipeNat(n) // nil is fine
}

// traceAll points the trace of every bigmod modulus reachable from the
// given Moduli (and their CRT factors) to one log.
func traceAll(log *[]int, ms ...*Modulus) {
	for _, M := range ms {
		M.ct.trace = log
		if c := M.crt; c != nil {
			for _, f := range []*ctMod{c.m1, c.m2, c.o1, c.o2} {
				f.trace = log
			}
		}
	}
}

// TestConstantTime_ExponentWidthsDoNotDependOnSecrets runs every
// constant-time routine on secrets of different values and lengths (0, 1,
// the largest allowed, random) and checks that the sequence of
// exponentiations — modulus size and exponent length of each — is the
// same. bigmod makes each exponentiation's time depend on those sizes
// only; this test guards the other half, that no size comes from a secret.
func TestConstantTime_ExponentWidthsDoNotDependOnSecrets(t *testing.T) {
	pp, err := fixtures.PreParams(10)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	rps, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	rpp, _ := NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	pub := NewPaillier(sk.N)
	N := sk.N
	secretsOf := func(bits int) []*big.Int {
		return []*big.Int{new(big.Int), big.NewInt(1), new(big.Int).Sub(pow2(bits), one), randBelow(t, pow2(bits)), pow2(bits / 2)}
	}
	type routine struct {
		name string
		mods []*Modulus
		run  func(secret *big.Int)
		bits int
	}
	routines := []routine{
		{"Modulus.Exp", []*Modulus{pub.NN}, func(s *big.Int) { pub.NN.Exp(big.NewInt(7), s, 768) }, 768},
		{"Modulus.Exp base", []*Modulus{pub.ModN}, func(s *big.Int) { pub.ModN.Exp(s, big.NewInt(65537), 256) }, 2048},
		{"Commit", []*Modulus{rpp.NT}, func(s *big.Int) { rpp.Commit(s, 256, s, 2816) }, 256},
		{"Commit with CRT", []*Modulus{rps.NT}, func(s *big.Int) { rps.Commit(s, 1792, s, 2816) }, 1792},
		{"EncryptWithNonce", []*Modulus{pub.NN, pub.ModN}, func(s *big.Int) { pub.EncryptWithNonce(s, s) }, 2047},
		{"EncryptWithNonce by the owner", []*Modulus{sk.NN, sk.ModN}, func(s *big.Int) { sk.EncryptWithNonce(s, s) }, 2047},
		{"Decrypt", []*Modulus{sk.NN, sk.ModN}, func(s *big.Int) {
			if _, err := sk.Decrypt(pub.EncryptWithNonceVarTime(s, big.NewInt(3))); err != nil {
				t.Fatal(err)
			}
		}, 2047},
		{"Nonce", []*Modulus{sk.NN, sk.ModN}, func(s *big.Int) {
			r := new(big.Int).Add(new(big.Int).Mod(s, N), one)
			if _, err := sk.Nonce(pub.EncryptWithNonceVarTime(big.NewInt(5), r)); err != nil {
				t.Fatal(err)
			}
		}, 2047},
	}
	for _, r := range routines {
		var want []int
		for i, s := range secretsOf(r.bits) {
			var log []int
			traceAll(&log, r.mods...)
			r.run(s)
			traceAll(nil, r.mods...)
			if len(log) == 0 {
				t.Fatalf("%s: no exponentiation traced", r.name)
			}
			if i == 0 {
				want = log
				continue
			}
			if !equalInts(log, want) {
				t.Fatalf("%s: secret %d gives exponentiations %v, secret 0 gives %v", r.name, i, log, want)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPaillier_BadModulusFailsClosed: a Paillier key with an even or tiny
// modulus (which presigning never accepts) gives 0 or an error, never a
// panic.
func TestPaillier_BadModulusFailsClosed(t *testing.T) {
	for _, n := range []int64{10, 1, 0} {
		pk := NewPaillier(big.NewInt(n))
		if pk.GammaExp(one).Sign() != 0 || pk.EncryptWithNonce(one, one).Sign() != 0 {
			t.Errorf("N = %d: GammaExp or EncryptWithNonce did not give 0", n)
		}
		if _, _, err := pk.RandomNonce(rand.Reader); err == nil {
			t.Errorf("N = %d: RandomNonce succeeded", n)
		}
		if got := pk.NN.Exp(one, one, 1); got.Sign() != 0 {
			t.Errorf("N = %d: Exp did not give 0", n)
		}
	}
}
