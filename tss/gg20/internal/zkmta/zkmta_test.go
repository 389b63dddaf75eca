package zkmta

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/mta"
	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

type party struct {
	pp        *keygen.LocalPreParams
	sk        *arith.PaillierSecret
	pub       *arith.Paillier // same key without CRT, as peers see it
	rpSecret  *arith.RingPedersen
	rpPublic  *arith.RingPedersen
	tssPK     *paillier.PublicKey
	tssSecret *paillier.PrivateKey
}

func load(t testing.TB, i int) *party {
	t.Helper()
	pp, err := fixtures.PreParams(i)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := arith.NewPaillierSecret(pp.PaillierSK)
	if err != nil {
		t.Fatal(err)
	}
	rps, err := arith.NewRingPedersenSecret(pp.NTildei, pp.H1i, pp.H2i, pp.P, pp.Q)
	if err != nil {
		t.Fatal(err)
	}
	rpp, err := arith.NewRingPedersen(pp.NTildei, pp.H1i, pp.H2i)
	if err != nil {
		t.Fatal(err)
	}
	return &party{pp: pp, sk: sk, pub: arith.NewPaillier(sk.N), rpSecret: rps, rpPublic: rpp,
		tssPK: &pp.PaillierSK.PublicKey, tssSecret: pp.PaillierSK}
}

var session = []byte("zkmta test session")

// errAny in a test table accepts either rejection: whether a value from
// another key is even in range depends on the two random moduli.
var errAny = errors.New("either ErrInvalid or ErrMalformed")

func randQ(t testing.TB) *big.Int {
	k, err := rand.Int(rand.Reader, secp.Q)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRange_RoundTripAndTssLibCompatibility(t *testing.T) {
	alice, bob := load(t, 0), load(t, 1)
	k := randQ(t)
	c, r, err := alice.sk.Encrypt(rand.Reader, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ours verifies with CRT and without", func(t *testing.T) {
		pf, err := ProveRange(session, alice.sk.Public(), c, k, r, bob.rpPublic, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyRange(session, pf, alice.pub, c, bob.rpSecret); err != nil {
			t.Fatalf("CRT verifier: %v", err)
		}
		if err := VerifyRange(session, pf, alice.pub, c, bob.rpPublic); err != nil {
			t.Fatalf("plain verifier: %v", err)
		}
	})
	t.Run("ours without session verifies in tss-lib", func(t *testing.T) {
		pf, err := ProveRange(nil, alice.sk.Public(), c, k, r, bob.rpPublic, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !pf.Verify(tss.S256(), alice.tssPK, bob.pp.NTildei, bob.pp.H1i, bob.pp.H2i, c) {
			t.Fatal("tss-lib rejected our range proof")
		}
	})
	t.Run("tss-lib's verifies here", func(t *testing.T) {
		pf, err := mta.ProveRangeAlice(tss.S256(), alice.tssPK, c, bob.pp.NTildei, bob.pp.H1i, bob.pp.H2i, k, r, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyRange(nil, pf, alice.pub, c, bob.rpSecret); err != nil {
			t.Fatalf("tss-lib proof rejected: %v", err)
		}
		if err := VerifyRange(session, pf, alice.pub, c, bob.rpSecret); !errors.Is(err, ErrInvalid) {
			t.Fatalf("tss-lib proof accepted under a session it does not bind: %v", err)
		}
	})
}

func TestVerifyRange_RejectsProofForOtherValues(t *testing.T) {
	alice, bob, carol := load(t, 0), load(t, 1), load(t, 2)
	k := randQ(t)
	c, r, _ := alice.sk.Encrypt(rand.Reader, k)
	pf, err := ProveRange(session, alice.sk.Public(), c, k, r, bob.rpPublic, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c2, _, _ := alice.sk.Encrypt(rand.Reader, k)
	q3p := new(big.Int).Add(q3, one)
	mutate := func(f func(p *mta.RangeProofAlice)) *mta.RangeProofAlice {
		cp := *pf
		cp.Z, cp.U, cp.W, cp.S, cp.S1, cp.S2 = new(big.Int).Set(pf.Z), new(big.Int).Set(pf.U), new(big.Int).Set(pf.W), new(big.Int).Set(pf.S), new(big.Int).Set(pf.S1), new(big.Int).Set(pf.S2)
		f(&cp)
		return &cp
	}
	cases := []struct {
		name    string
		session []byte
		pf      *mta.RangeProofAlice
		pk      *arith.Paillier
		c       *big.Int
		v       *arith.RingPedersen
		want    error
	}{
		{"other session", []byte("other"), pf, alice.pub, c, bob.rpSecret, ErrInvalid},
		{"no session", nil, pf, alice.pub, c, bob.rpSecret, ErrInvalid},
		{"other ciphertext", session, pf, alice.pub, c2, bob.rpSecret, ErrInvalid},
		{"other prover key", session, pf, bob.pub, c, bob.rpSecret, errAny},
		{"other verifier parameters", session, pf, alice.pub, c, carol.rpSecret, ErrInvalid},
		{"tampered z", session, mutate(func(p *mta.RangeProofAlice) { p.Z.Add(p.Z, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"tampered u", session, mutate(func(p *mta.RangeProofAlice) { p.U.Add(p.U, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"tampered w", session, mutate(func(p *mta.RangeProofAlice) { p.W.Add(p.W, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"tampered s", session, mutate(func(p *mta.RangeProofAlice) { p.S.Add(p.S, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"tampered s1", session, mutate(func(p *mta.RangeProofAlice) { p.S1.Add(p.S1, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"tampered s2", session, mutate(func(p *mta.RangeProofAlice) { p.S2.Add(p.S2, one) }), alice.pub, c, bob.rpSecret, ErrInvalid},
		{"s1 above q³", session, mutate(func(p *mta.RangeProofAlice) { p.S1.Set(q3p) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"s1 below q", session, mutate(func(p *mta.RangeProofAlice) { p.S1.SetInt64(5) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"s2 huge", session, mutate(func(p *mta.RangeProofAlice) { p.S2.Lsh(p.S2, 4096) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"s = 1", session, mutate(func(p *mta.RangeProofAlice) { p.S.SetInt64(1) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"z = 1", session, mutate(func(p *mta.RangeProofAlice) { p.Z.SetInt64(1) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"s1 = s2", session, mutate(func(p *mta.RangeProofAlice) { p.S2.Set(p.S1) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"z = 0", session, mutate(func(p *mta.RangeProofAlice) { p.Z.SetInt64(0) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"w = Ñ", session, mutate(func(p *mta.RangeProofAlice) { p.W.Set(bob.pp.NTildei) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"s shares a factor with N", session, mutate(func(p *mta.RangeProofAlice) { p.S.Set(alice.pp.PaillierSK.P) }), alice.pub, c, bob.rpSecret, ErrMalformed},
		{"ciphertext not a unit", session, pf, alice.pub, alice.pp.PaillierSK.P, bob.rpSecret, ErrMalformed},
		{"nil field", session, mutate(func(p *mta.RangeProofAlice) { p.W = nil }), alice.pub, c, bob.rpSecret, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyRange(tc.session, tc.pf, tc.pk, tc.c, tc.v)
			if tc.want == errAny && (errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed)) {
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// bobStep forms c2 = c1^x · Enc(y; r) under Alice's key.
func bobStep(t testing.TB, alice *party, c1, x *big.Int) (c2, y, r *big.Int) {
	t.Helper()
	q5 := new(big.Int).Exp(q, big.NewInt(5), nil)
	y, _ = rand.Int(rand.Reader, q5)
	cy, r, err := alice.pub.Encrypt(rand.Reader, y)
	if err != nil {
		t.Fatal(err)
	}
	c2 = alice.pub.NN.MulVarTime(alice.pub.NN.ExpVarTime(c1, x), cy)
	return c2, y, r
}

func TestBob_RoundTripAndTssLibCompatibility(t *testing.T) {
	alice := load(t, 0)
	k, x := randQ(t), randQ(t)
	c1, _, _ := alice.sk.Encrypt(rand.Reader, k)
	c2, y, r := bobStep(t, alice, c1, x)
	X := secp.BaseMult(x)
	xx, xy := X.XY()
	tssX, _ := crypto.NewECPoint(tss.S256(), xx, xy)

	pf, err := ProveBob(session, alice.pub, alice.rpPublic, c1, c2, x, y, r, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBob(session, pf, alice.sk.Public(), alice.rpSecret, c1, c2); err != nil {
		t.Fatalf("CRT verifier: %v", err)
	}
	if err := VerifyBob(session, pf, alice.pub, alice.rpPublic, c1, c2); err != nil {
		t.Fatalf("plain verifier: %v", err)
	}
	if !pf.Verify(session, tss.S256(), alice.tssPK, alice.pp.NTildei, alice.pp.H1i, alice.pp.H2i, c1, c2) {
		t.Fatal("tss-lib rejected our ProofBob")
	}
	pfwc, err := ProveBobWC(session, alice.pub, alice.rpPublic, c1, c2, x, y, r, X, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBobWC(session, pfwc, alice.sk.Public(), alice.rpSecret, c1, c2, X); err != nil {
		t.Fatalf("CRT verifier WC: %v", err)
	}
	if !pfwc.Verify(session, tss.S256(), alice.tssPK, alice.pp.NTildei, alice.pp.H1i, alice.pp.H2i, c1, c2, tssX) {
		t.Fatal("tss-lib rejected our ProofBobWC")
	}

	tpf, err := mta.ProveBob(session, tss.S256(), alice.tssPK, alice.pp.NTildei, alice.pp.H1i, alice.pp.H2i, c1, c2, x, y, r, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBob(session, tpf, alice.sk.Public(), alice.rpSecret, c1, c2); err != nil {
		t.Fatalf("tss-lib ProofBob rejected: %v", err)
	}
	tpfwc, err := mta.ProveBobWC(session, tss.S256(), alice.tssPK, alice.pp.NTildei, alice.pp.H1i, alice.pp.H2i, c1, c2, x, y, r, tssX, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBobWC(session, tpfwc, alice.sk.Public(), alice.rpSecret, c1, c2, X); err != nil {
		t.Fatalf("tss-lib ProofBobWC rejected: %v", err)
	}

	// The key owner's verifier accepts both and returns the plaintext.
	own := &Opening{C: c1, M: k}
	wantM := new(big.Int).Mul(k, x)
	wantM.Add(wantM, y)
	for _, p := range []*mta.ProofBob{pf, tpf} {
		m, err := VerifyBobOwnKey(session, p, nil, alice.sk, alice.rpSecret, own, c1Copy(c2), nil)
		if err != nil || m.Cmp(wantM) != 0 {
			t.Fatalf("own-key verifier: m = %v, err = %v", m, err)
		}
	}
	for _, p := range []*mta.ProofBobWC{pfwc, tpfwc} {
		m, err := VerifyBobOwnKey(session, p.ProofBob, p.U, alice.sk, alice.rpSecret, own, c2, X)
		if err != nil || m.Cmp(wantM) != 0 {
			t.Fatalf("own-key verifier WC: m = %v, err = %v", m, err)
		}
	}
}

func c1Copy(c *big.Int) *big.Int { return new(big.Int).Set(c) }

func TestVerifyBob_RejectsProofForOtherValues(t *testing.T) {
	alice, carol := load(t, 0), load(t, 2)
	k, x := randQ(t), randQ(t)
	c1, _, _ := alice.sk.Encrypt(rand.Reader, k)
	c2, y, r := bobStep(t, alice, c1, x)
	X := secp.BaseMult(x)
	pf, err := ProveBobWC(session, alice.pub, alice.rpPublic, c1, c2, x, y, r, X, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherC1, _, _ := alice.sk.Encrypt(rand.Reader, k)
	otherC2, _, _ := bobStep(t, alice, c1, x)
	q7p := new(big.Int).Add(q7, one)
	mutate := func(f func(p *mta.ProofBob)) *mta.ProofBobWC {
		b := *pf.ProofBob
		for _, v := range []**big.Int{&b.Z, &b.ZPrm, &b.T, &b.V, &b.W, &b.S, &b.S1, &b.S2, &b.T1, &b.T2} {
			*v = new(big.Int).Set(*v)
		}
		f(&b)
		return &mta.ProofBobWC{ProofBob: &b, U: pf.U}
	}
	otherU, _ := crypto.NewECPoint(tss.S256(), tss.S256().Params().Gx, tss.S256().Params().Gy)
	cases := []struct {
		name    string
		session []byte
		pf      *mta.ProofBobWC
		c1, c2  *big.Int
		v       *arith.RingPedersen
		X       *secp.Point
		want    error
	}{
		{"other session", []byte("other"), pf, c1, c2, alice.rpSecret, X, ErrInvalid},
		{"other c1", session, pf, otherC1, c2, alice.rpSecret, X, ErrInvalid},
		{"other c2", session, pf, c1, otherC2, alice.rpSecret, X, ErrInvalid},
		{"other X", session, pf, c1, c2, alice.rpSecret, secp.BaseMult(big.NewInt(7)), ErrInvalid},
		{"other verifier parameters", session, pf, c1, c2, carol.rpSecret, X, ErrInvalid},
		{"tampered u", session, &mta.ProofBobWC{ProofBob: pf.ProofBob, U: otherU}, c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered z", session, mutate(func(p *mta.ProofBob) { p.Z.Add(p.Z, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered z'", session, mutate(func(p *mta.ProofBob) { p.ZPrm.Add(p.ZPrm, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered t", session, mutate(func(p *mta.ProofBob) { p.T.Add(p.T, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered v", session, mutate(func(p *mta.ProofBob) { p.V.Add(p.V, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered w", session, mutate(func(p *mta.ProofBob) { p.W.Add(p.W, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered s", session, mutate(func(p *mta.ProofBob) { p.S.Add(p.S, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered s1", session, mutate(func(p *mta.ProofBob) { p.S1.Add(p.S1, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered s2", session, mutate(func(p *mta.ProofBob) { p.S2.Add(p.S2, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered t1", session, mutate(func(p *mta.ProofBob) { p.T1.Add(p.T1, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"tampered t2", session, mutate(func(p *mta.ProofBob) { p.T2.Add(p.T2, one) }), c1, c2, alice.rpSecret, X, ErrInvalid},
		{"t1 above q⁷", session, mutate(func(p *mta.ProofBob) { p.T1.Set(q7p) }), c1, c2, alice.rpSecret, X, ErrMalformed},
		{"s1 above q³", session, mutate(func(p *mta.ProofBob) { p.S1.Add(q3, one) }), c1, c2, alice.rpSecret, X, ErrMalformed},
		{"s = 0", session, mutate(func(p *mta.ProofBob) { p.S.SetInt64(0) }), c1, c2, alice.rpSecret, X, ErrMalformed},
		{"v not a unit", session, mutate(func(p *mta.ProofBob) { p.V.Set(alice.pp.PaillierSK.Q) }), c1, c2, alice.rpSecret, X, ErrMalformed},
		{"t2 huge", session, mutate(func(p *mta.ProofBob) { p.T2.Lsh(p.T2, 5000) }), c1, c2, alice.rpSecret, X, ErrMalformed},
		{"X identity", session, pf, c1, c2, alice.rpSecret, secp.Identity(), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyBobWC(tc.session, tc.pf, alice.sk.Public(), tc.v, tc.c1, tc.c2, tc.X); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			m1, err := alice.sk.Decrypt(tc.c1)
			if err != nil {
				t.Fatal(err)
			}
			own := &Opening{C: tc.c1, M: m1}
			if _, err := VerifyBobOwnKey(tc.session, tc.pf.ProofBob, tc.pf.U, alice.sk, tc.v, own, tc.c2, tc.X); !errors.Is(err, tc.want) {
				t.Fatalf("own-key verifier: got %v, want %v", err, tc.want)
			}
		})
	}
	// A proof with check does not pass as one without (different hash).
	if err := VerifyBob(session, pf.ProofBob, alice.sk.Public(), alice.rpSecret, c1, c2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WC proof accepted as plain Bob proof: %v", err)
	}
}

// TestVerifyBobOwnKey_RejectsOversizedMask is the Alpha-Rays attack
// (Tymokhanov and Shlomovits, eprint 2021/1621) on GG20's MtA: Bob's proof
// bounds his multiplier x tightly but his mask y only loosely, through the
// range of t₁ = e·y + γ. A mask far outside (a "negative" y = N − t) fails
// that range check; a mask past q⁶ can still pass it for a small enough
// challenge e, and then the decryption k·x + y no longer hides how k·x
// relates to the boundaries Bob chose. The decrypted plaintext must be
// below q⁶, as an honest Bob's always is (x < q, y < q⁵).
func TestVerifyBobOwnKey_RejectsOversizedMask(t *testing.T) {
	alice := load(t, 0)
	k, x := randQ(t), randQ(t)
	c1, _, _ := alice.sk.Encrypt(rand.Reader, k)
	own := &Opening{C: c1, M: k}
	q6 := new(big.Int).Exp(q, big.NewInt(6), nil)
	for _, y := range []*big.Int{
		new(big.Int).Lsh(q6, 1),             // 2·q⁶
		new(big.Int).Add(q6, big.NewInt(1)), // q⁶ + 1
	} {
		cy, r, err := alice.pub.Encrypt(rand.Reader, y)
		if err != nil {
			t.Fatal(err)
		}
		c2 := alice.pub.NN.MulVarTime(alice.pub.NN.ExpVarTime(c1, x), cy)
		// Our prover refuses such a witness; a cheating Bob uses tss-lib's
		// (whose proofs we accept) until the challenge lets it pass.
		var pf *mta.ProofBob
		for i := 0; i < 200 && pf == nil; i++ {
			p, err := mta.ProveBob(session, tss.S256(), alice.tssPK, alice.pp.NTildei, alice.pp.H1i, alice.pp.H2i, c1, c2, x, y, r, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if VerifyBob(session, p, alice.sk.Public(), alice.rpSecret, c1, c2) == nil {
				pf = p
			}
		}
		if pf == nil {
			t.Fatalf("mask of %d bits: no proof passed the proof checks in 200 tries", y.BitLen())
		}
		if m, err := VerifyBobOwnKey(session, pf, nil, alice.sk, alice.rpSecret, own, c1Copy(c2), nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("mask of %d bits: VerifyBobOwnKey returned a plaintext of %d bits, err %v; want ErrInvalid", y.BitLen(), m.BitLen(), err)
		}
	}
}
