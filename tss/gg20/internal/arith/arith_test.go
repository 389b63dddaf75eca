package arith

import (
	"crypto/rand"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
)

func TestModulus_CRTMatchesPlainExponentiation(t *testing.T) {
	pp, err := fixtures.PreParams(0)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	pPrime := new(big.Int).Lsh(pp.P, 1)
	pPrime.Add(pPrime, one)
	cases := []struct {
		name string
		crt  *Modulus
	}{
		{"ring-Pedersen Ñ", rp.NT},
		{"Paillier N²", sk.NN},
		{"Paillier N", sk.modN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain := New(c.crt.M())
			bases := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(c.crt.M(), one), pPrime, sk.p}
			for i := 0; i < 4; i++ {
				b, _ := rand.Int(rand.Reader, c.crt.M())
				bases = append(bases, b)
			}
			exps := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2)}
			for _, bits := range []int{64, 1024, 2048, 3000, 5000} {
				e, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bits)))
				exps = append(exps, e)
			}
			for _, b := range bases {
				for _, e := range exps {
					if got, want := c.crt.Exp(b, e), plain.Exp(b, e); got.Cmp(want) != 0 {
						t.Fatalf("CRT %v^(%d bits) differs from plain exponentiation", b.BitLen(), e.BitLen())
					}
				}
			}
		})
	}
}

func TestModulus_NegativeExponentFailsClosed(t *testing.T) {
	m := New(big.NewInt(35))
	if got := m.Exp(big.NewInt(2), big.NewInt(-1)); got.Sign() != 0 {
		t.Fatalf("Exp with negative exponent = %v, want 0", got)
	}
}

func TestPaillierSecret_InteroperatesWithTssLib(t *testing.T) {
	pp, err := fixtures.PreParams(1)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		m, _ := rand.Int(rand.Reader, sk.N)
		// tss-lib encrypts, we decrypt and recover the nonce.
		c, r, err := pp.PaillierSK.EncryptAndReturnRandomness(rand.Reader, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sk.Decrypt(c)
		if err != nil || got.Cmp(m) != 0 {
			t.Fatalf("Decrypt of a tss-lib ciphertext: got %v, err %v", got, err)
		}
		nonce, err := sk.Nonce(c)
		if err != nil || nonce.Cmp(r) != 0 {
			t.Fatalf("Nonce did not recover the encryption randomness (err %v)", err)
		}
		// We encrypt (with CRT and without), tss-lib decrypts.
		for _, pk := range []*Paillier{sk.Public(), NewPaillier(sk.N)} {
			c2, _, err := pk.Encrypt(rand.Reader, m)
			if err != nil {
				t.Fatal(err)
			}
			back, err := pp.PaillierSK.Decrypt(c2)
			if err != nil || back.Cmp(m) != 0 {
				t.Fatalf("tss-lib could not decrypt our ciphertext: %v", err)
			}
		}
	}
	if _, err := sk.Decrypt(sk.N); err == nil {
		t.Fatal("Decrypt accepted a ciphertext sharing a factor with N")
	}
	if _, _, err := sk.Encrypt(rand.Reader, sk.N); err == nil {
		t.Fatal("Encrypt accepted a plaintext equal to N")
	}
}

func TestNewPaillierSecret_RejectsInconsistentKey(t *testing.T) {
	pp, err := fixtures.PreParams(2)
	if err != nil {
		t.Fatal(err)
	}
	bad := *pp.PaillierSK
	bad.P = new(big.Int).Add(bad.P, big.NewInt(2))
	if _, err := NewPaillierSecret(&bad); err == nil {
		t.Fatal("accepted P, Q that do not multiply to N")
	}
	bad = *pp.PaillierSK
	bad.Q = nil
	if _, err := NewPaillierSecret(&bad); err == nil {
		t.Fatal("accepted a key without Q")
	}
}

func TestNewRingPedersen_ChecksParameters(t *testing.T) {
	pp, err := fixtures.PreParams(3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.Q, pp.P); err != nil {
		t.Fatalf("factors in the other order: %v", err)
	}
	if _, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.P); err == nil {
		t.Fatal("accepted wrong factors")
	}
	bad := []struct {
		name      string
		n, h1, h2 *big.Int
	}{
		{"h1 = h2", pp.NTildei, pp.H1i, pp.H1i},
		{"h1 = 1", pp.NTildei, one, pp.H2i},
		{"h2 not a unit", pp.NTildei, pp.H1i, new(big.Int).Lsh(pp.P, 1).Add(new(big.Int).Lsh(pp.P, 1), one)},
		{"small modulus", big.NewInt(35), big.NewInt(2), big.NewInt(3)},
		{"h1 out of range", pp.NTildei, new(big.Int).Add(pp.NTildei, one), pp.H2i},
	}
	for _, b := range bad {
		if _, err := NewRingPedersen(b.n, b.h1, b.h2); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	pp, _ := fixtures.PreParams(0)
	sk, _ := NewPaillierSecret(pp.PaillierSK)
	c, _ := pp.PaillierSK.Encrypt(rand.Reader, big.NewInt(12345))
	b.Run("crt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sk.Decrypt(c)
		}
	})
	b.Run("tss-lib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pp.PaillierSK.Decrypt(c)
		}
	})
}

func BenchmarkExpNTilde(b *testing.B) {
	pp, _ := fixtures.PreParams(0)
	rp, _ := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	plain := New(pp.NTildei)
	e, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, 2816))
	b.Run("crt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rp.NT.Exp(pp.H1i, e)
		}
	})
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			plain.Exp(pp.H1i, e)
		}
	})
}

func TestRingPedersen_TablesMatchPlainCommitments(t *testing.T) {
	pp, err := fixtures.PreParams(4)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	pre, err := NewRingPedersenPrecomputed(pp.NTildei, pp.H1i, pp.H2i)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	for _, bits := range []int{0, 1, 8, 256, 768, 2304, 2816, pre.pub.maxBits(), pre.pub.maxBits() + 1, 4000} {
		for i := 0; i < 3; i++ {
			x, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bits)+1))
			r, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bits)/2+1))
			want := New(pp.NTildei).Exp2(pp.H1i, x, pp.H2i, r)
			for name, rp := range map[string]*RingPedersen{"plain": plain, "precomputed": pre, "crt": crt} {
				if got := rp.Commit(x, r); got.Cmp(want) != 0 {
					t.Fatalf("%s: commitment with %d-bit exponents differs", name, bits)
				}
			}
		}
	}
	if crt.Commit(big.NewInt(-1), one).Sign() != 0 || pre.Commit(one, big.NewInt(-1)).Sign() != 0 {
		t.Fatal("negative exponent did not give 0")
	}
	crt.Wipe()
	if crt.Commit(one, one).Cmp(New(pp.NTildei).Exp2(pp.H1i, one, pp.H2i, one)) != 0 {
		t.Fatal("a wiped CRT ring-Pedersen no longer computes plainly")
	}
}

func BenchmarkCommit(b *testing.B) {
	pp, _ := fixtures.PreParams(0)
	plain, _ := NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	pre, _ := NewRingPedersenPrecomputed(pp.NTildei, pp.H1i, pp.H2i)
	crt, _ := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	x, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, 768))
	r, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, 2816))
	for name, rp := range map[string]*RingPedersen{"plain": plain, "precomputed": pre, "crt": crt} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rp.Commit(x, r)
			}
		})
	}
	b.Run("build-tables", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			NewRingPedersenPrecomputed(pp.NTildei, pp.H1i, pp.H2i)
		}
	})
}

func TestPaillierSecret_RandomNonceIsAnNthPower(t *testing.T) {
	pp, err := fixtures.PreParams(5)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	plain := NewPaillier(sk.N)
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		r, rN, err := sk.Public().RandomNonce(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !IsUnit(r, sk.N) || seen[r.String()] {
			t.Fatal("nonce is not a fresh unit")
		}
		seen[r.String()] = true
		if rN.Cmp(plain.NN.Exp(r, sk.N)) != 0 {
			t.Fatal("fast r^N mod N² differs from the plain exponentiation")
		}
	}
}
