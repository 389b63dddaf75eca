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
		{"Paillier N", sk.ModN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain := New(c.crt.M())
			bases := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(c.crt.M(), one), pPrime, pp.PaillierSK.P, new(big.Int).Mul(pp.PaillierSK.P, pp.PaillierSK.P)}
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
					if got, want := c.crt.ExpVarTime(b, e), plain.ExpVarTime(b, e); got.Cmp(want) != 0 {
						t.Fatalf("CRT %v^(%d bits) differs from plain exponentiation", b.BitLen(), e.BitLen())
					}
				}
			}
		})
	}
}

func TestModulus_NegativeExponentFailsClosed(t *testing.T) {
	m := New(big.NewInt(35))
	if got := m.ExpVarTime(big.NewInt(2), big.NewInt(-1)); got.Sign() != 0 {
		t.Fatalf("ExpVarTime with negative exponent = %v, want 0", got)
	}
	for _, c := range []struct {
		name string
		e    *big.Int
		bits int
	}{{"negative", big.NewInt(-1), 8}, {"longer than declared", big.NewInt(256), 8}, {"negative width", big.NewInt(1), -1}} {
		if got := m.Exp(big.NewInt(2), c.e, c.bits); got.Sign() != 0 {
			t.Errorf("Exp with %s exponent = %v, want 0", c.name, got)
		}
	}
	if got := New(big.NewInt(36)).Exp(big.NewInt(2), big.NewInt(3), 8); got.Sign() != 0 {
		t.Errorf("Exp modulo an even number = %v, want 0", got)
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
			rp.NT.ExpVarTime(pp.H1i, e)
		}
	})
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			plain.ExpVarTime(pp.H1i, e)
		}
	})
}

func TestRingPedersen_CommitMatchesMathBig(t *testing.T) {
	pp, err := fixtures.PreParams(4)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	want := func(x, r *big.Int) *big.Int {
		a := new(big.Int).Exp(pp.H1i, x, pp.NTildei)
		b := new(big.Int).Exp(pp.H2i, r, pp.NTildei)
		return a.Mul(a, b).Mod(a, pp.NTildei)
	}
	// Widths of the provers' bounds (q, q³, q⁵, q⁷, q·Ñ, q³·Ñ) and around
	// the CRT's reduction threshold (the group order has about 1023 bits).
	for _, bits := range []int{1, 8, 256, 768, 1023, 1024, 1025, 1280, 1792, 2304, 2816, 4000} {
		vals := []*big.Int{new(big.Int), big.NewInt(1), new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)}
		for i := 0; i < 2; i++ {
			v, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bits)))
			vals = append(vals, v)
		}
		for i, x := range vals {
			r := vals[(i+1)%len(vals)]
			w := want(x, r)
			for name, rp := range map[string]*RingPedersen{"plain": plain, "crt": crt} {
				if got := rp.Commit(x, bits, r, bits); got.Cmp(w) != 0 {
					t.Fatalf("%s: Commit with %d-bit exponents differs", name, bits)
				}
				if got := rp.CommitVarTime(x, r); got.Cmp(w) != 0 {
					t.Fatalf("%s: CommitVarTime with %d-bit exponents differs", name, bits)
				}
			}
		}
	}
	for name, rp := range map[string]*RingPedersen{"plain": plain, "crt": crt} {
		if rp.Commit(big.NewInt(-1), 8, one, 8).Sign() != 0 || rp.Commit(one, 8, big.NewInt(256), 8).Sign() != 0 ||
			rp.CommitVarTime(one, big.NewInt(-1)).Sign() != 0 {
			t.Fatalf("%s: negative or over-long exponent did not give 0", name)
		}
	}
	crt.Wipe()
	if crt.NT.HasCRT() || crt.Commit(one, 1, one, 1).Cmp(want(one, one)) != 0 {
		t.Fatal("a wiped CRT ring-Pedersen no longer computes plainly")
	}
}

func BenchmarkCommit(b *testing.B) {
	pp, _ := fixtures.PreParams(0)
	plain, _ := NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	crt, _ := NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	x, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, 768))
	r, _ := rand.Int(rand.Reader, new(big.Int).Lsh(one, 2816))
	for name, rp := range map[string]*RingPedersen{"plain": plain, "crt": crt} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rp.Commit(x, 768, r, 2816)
			}
		})
	}
	b.Run("build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
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
		if rN.Cmp(plain.NN.ExpVarTime(r, sk.N)) != 0 {
			t.Fatal("fast r^N mod N² differs from the plain exponentiation")
		}
	}
}
