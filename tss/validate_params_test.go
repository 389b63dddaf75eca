package tss

import (
	"crypto/rand"
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/dlnproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/facproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/modproof"
	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
	"github.com/bnb-chain/tss-lib/v2/crypto/vss"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/fixtures"
)

// announcement is what a party announces about its Paillier and
// ring-Pedersen parameters: keygen round 1 or resharing round 2.
type announcement struct {
	n, nTilde, h1, h2 *big.Int
	dln1, dln2        *dlnproof.Proof
	mod               *modproof.ProofMod
	dln1Parts         [][]byte // replaces dln1 on the wire when set
}

var (
	annOnce  sync.Once
	annPP    []*keygen.LocalPreParams
	annHonst []*announcement
)

// honestAnnouncements returns fixture pre-parameter sets 0..2 and each one's
// honest announcement (DLN and modulus proofs made once for the package).
func honestAnnouncements(t *testing.T) ([]*keygen.LocalPreParams, []*announcement) {
	t.Helper()
	annOnce.Do(func() {
		for i := 0; i < 3; i++ {
			pp, err := fixtures.PreParams(i)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := modproof.NewProof(nil, pp.PaillierSK.N, pp.PaillierSK.P, pp.PaillierSK.Q, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			annPP = append(annPP, pp)
			annHonst = append(annHonst, &announcement{
				n: pp.PaillierSK.N, nTilde: pp.NTildei, h1: pp.H1i, h2: pp.H2i,
				dln1: dlnproof.NewDLNProof(pp.H1i, pp.H2i, pp.Alpha, pp.P, pp.Q, pp.NTildei, rand.Reader),
				dln2: dlnproof.NewDLNProof(pp.H2i, pp.H1i, pp.Beta, pp.P, pp.Q, pp.NTildei, rand.Reader),
				mod:  mod,
			})
		}
	})
	if len(annHonst) != 3 {
		t.Fatal("fixture announcements unavailable")
	}
	return annPP, annHonst
}

func (a *announcement) clone() *announcement {
	c := *a
	return &c
}

// copiedRing returns an announcement with its own Paillier modulus n but
// the ring-Pedersen modulus of victim, with h1' = h1², h2' = h1'⁻¹ and DLN
// proofs for them made without knowing Ñ's factorization: the exponents
// −1 need no group order. tss-lib v2.0.2 accepts both proofs.
func copiedRing(t *testing.T, n *big.Int, victim *announcement) *announcement {
	t.Helper()
	ringMu.Lock()
	defer ringMu.Unlock()
	if r := rings[victim]; r != nil {
		c := r.clone()
		c.n = n
		return c
	}
	nt := victim.nTilde
	h1 := new(big.Int).Exp(victim.h1, big.NewInt(2), nt)
	h2 := new(big.Int).ModInverse(h1, nt)
	prove := func(g, h *big.Int) *dlnproof.Proof {
		// Proves h = g^x with x = −1: t_i = a_i − c_i.
		var pf dlnproof.Proof
		var a [dlnproof.Iterations]*big.Int
		for i := range a {
			a[i] = common.GetRandomPositiveInt(rand.Reader, nt)
			a[i].Add(a[i], big.NewInt(2))
			pf.Alpha[i] = new(big.Int).Exp(g, a[i], nt)
		}
		c := common.SHA512_256i(append([]*big.Int{g, h, nt}, pf.Alpha[:]...)...)
		for i := range a {
			pf.T[i] = new(big.Int).Sub(a[i], big.NewInt(int64(c.Bit(i))))
		}
		return &pf
	}
	a := &announcement{n: n, nTilde: nt, h1: h1, h2: h2, dln1: prove(h1, h2), dln2: prove(h2, h1), mod: victim.mod}
	if !a.dln1.Verify(h1, h2, nt) || !a.dln2.Verify(h2, h1, nt) {
		t.Fatal("the copied ring's DLN proofs do not pass tss-lib's check; the attack this test stands for is not reproduced")
	}
	rings[victim] = a
	return a.clone()
}

var (
	ringMu sync.Mutex
	rings  = map[*announcement]*announcement{}
)

func serializeDLN(t *testing.T, p *dlnproof.Proof) [][]byte {
	t.Helper()
	b, err := p.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// paramsProtocol builds the messages of one protocol (keygen or resharing)
// that carry the parameters under test.
type paramsProtocol struct {
	name string
	// validator returns a validator for party self whose own pre-parameters
	// are own.
	validator func(self PartyID, own *keygen.LocalPreParams) contentValidator
	// announce is the message announcing a's parameters.
	announce func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage
	// modProof is the message carrying a's modulus proof (for resharing,
	// the announcement itself; for keygen, round 2's broadcast).
	modProof func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage
	// facProof is the point-to-point message carrying a no-small-factor
	// proof (nil parts: none).
	facProof func(from, to *member, parts [][]byte) tsslib.ParsedMessage
}

var paramsProtocols = []paramsProtocol{
	{
		name: "keygen",
		validator: func(self PartyID, own *keygen.LocalPreParams) contentValidator {
			return newKeygenValidator(tsslib.S256(), 1, self, own.PaillierSK.N, own.NTildei)
		},
		announce: func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage {
			m, err := keygen.NewKGRound1Message(from.id, big.NewInt(12345), &paillier.PublicKey{N: a.n}, a.nTilde, a.h1, a.h2, a.dln1, a.dln2)
			if err != nil {
				t.Fatal(err)
			}
			if a.dln1Parts != nil {
				m.Content().(*keygen.KGRound1Message).Dlnproof_1 = a.dln1Parts
			}
			return m
		},
		modProof: func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage {
			// The opening of a degree-1 VSS commitment: randomness, then two points.
			g1 := crypto.ScalarBaseMult(tsslib.S256(), big.NewInt(7))
			g2 := crypto.ScalarBaseMult(tsslib.S256(), big.NewInt(11))
			d := []*big.Int{big.NewInt(99), g1.X(), g1.Y(), g2.X(), g2.Y()}
			return keygen.NewKGRound2Message2(from.id, d, a.mod)
		},
		facProof: func(from, to *member, parts [][]byte) tsslib.ParsedMessage {
			m := keygen.NewKGRound2Message1(to.id, from.id, &vss.Share{Threshold: 1, ID: big.NewInt(1), Share: big.NewInt(5)},
				&facproof.ProofFac{P: one, Q: one, A: one, B: one, T: one, Sigma: one, Z1: one, Z2: one, W1: one, W2: one, V: one})
			m.Content().(*keygen.KGRound2Message1).FacProof = parts
			return m
		},
	},
	{
		name: "reshare",
		validator: func(self PartyID, own *keygen.LocalPreParams) contentValidator {
			pub := crypto.ScalarBaseMult(tsslib.S256(), big.NewInt(3))
			v := newReshareValidator(tsslib.S256(), 1, pub, self)
			v.setOwnModuli(own.PaillierSK.N, own.NTildei)
			return v
		},
		announce: func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage {
			m, err := resharing.NewDGRound2Message1(nil, from.id, &paillier.PublicKey{N: a.n}, a.mod, a.nTilde, a.h1, a.h2, a.dln1, a.dln2)
			if err != nil {
				t.Fatal(err)
			}
			if a.dln1Parts != nil {
				m.Content().(*resharing.DGRound2Message1).Dlnproof_1 = a.dln1Parts
			}
			return m
		},
		modProof: func(t *testing.T, from *member, a *announcement) tsslib.ParsedMessage {
			m, err := resharing.NewDGRound2Message1(nil, from.id, &paillier.PublicKey{N: a.n}, a.mod, a.nTilde, a.h1, a.h2, a.dln1, a.dln2)
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
		facProof: func(from, to *member, parts [][]byte) tsslib.ParsedMessage {
			m := resharing.NewDGRound4Message1(to.id, from.id,
				&facproof.ProofFac{P: one, Q: one, A: one, B: one, T: one, Sigma: one, Z1: one, Z2: one, W1: one, W2: one, V: one})
			m.Content().(*resharing.DGRound4Message1).FacProof = parts
			return m
		},
	},
}

func testMember(site string, key int64) *member {
	return &member{site: PartyID(site), role: roleMain, id: tsslib.NewPartyID(site, site, big.NewInt(key))}
}

// TestParams_RejectsEachBadParameter reaches, for keygen and for
// resharing, each check of a party's Paillier and ring-Pedersen parameters
// and its proofs, and asserts the sentinel of that check. Party A (fixture
// set 0) validates; B (set 1) has announced honestly; C (its own set 2,
// unless it copies) misbehaves.
func TestParams_RejectsEachBadParameter(t *testing.T) {
	pps, honest := honestAnnouncements(t)
	a, b, c := testMember("A", 1), testMember("B", 2), testMember("C", 3)
	p2 := pps[2].PaillierSK

	// A BitForge-shaped Paillier modulus: sixteen primes below 2¹⁶ and a
	// large prime, 2048 bits in all.
	bitforge := func() *big.Int {
		small := big.NewInt(1)
		for p, k := int64(65521), 0; k < 16; p -= 2 {
			if big.NewInt(p).ProbablyPrime(20) {
				small.Mul(small, big.NewInt(p))
				k++
			}
		}
		for {
			q, err := rand.Prime(rand.Reader, 2048-small.BitLen())
			if err != nil {
				t.Fatal(err)
			}
			if n := new(big.Int).Mul(small, q); n.BitLen() == 2048 {
				return n
			}
		}
	}()
	// A modulus proof whose W = 2p, a non-zero multiple of a factor p of N:
	// 0 < W < N and Jacobi(W, N) = 0, so it passes tss-lib v2.0.2's range
	// and non-residue tests and only gcd(W, N) = 1 refuses it.
	gcdW := new(big.Int).Lsh(p2.P, 1)
	if gcdW.Sign() <= 0 || gcdW.Cmp(p2.N) >= 0 || big.Jacobi(gcdW, p2.N) == 1 {
		t.Fatal("W = 2p does not pass tss-lib's own W checks")
	}
	// A DLN proof whose first length prefix is 2⁶³: tss-lib reads it as a
	// negative Int64 and slices with it in a goroutine.
	badPrefix := serializeDLN(t, honest[2].dln1)
	badPrefix[0] = []byte{0x80, 0, 0, 0, 0, 0, 0, 0}

	cases := []struct {
		name string
		// msg returns the message C sends; it may need the protocol.
		msg func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage
		// prior lists messages validated first (and accepted).
		prior        func(t *testing.T, pr paramsProtocol) []tsslib.ParsedMessage
		wantIs       error
		unattributed bool // the check cannot tell C from B
	}{
		{
			name:   "Paillier N below 2048 bits",
			msg:    announceWith(c, honest[2], func(x *announcement) { x.n = new(big.Int).Rsh(x.n, 1) }),
			wantIs: ErrBadModulus,
		},
		{
			name:   "ring-Pedersen Ñ below 2048 bits",
			msg:    announceWith(c, honest[2], func(x *announcement) { x.nTilde = new(big.Int).Rsh(x.nTilde, 1) }),
			wantIs: ErrBadModulus,
		},
		{
			name:   "even Paillier N",
			msg:    announceWith(c, honest[2], func(x *announcement) { x.n = new(big.Int).SetBit(x.n, 0, 0) }),
			wantIs: ErrBadModulus,
		},
		{
			name:   "Paillier N with small factors (BitForge)",
			msg:    announceWith(c, honest[2], func(x *announcement) { x.n = bitforge }),
			wantIs: ErrSmallFactor,
		},
		{
			name: "N = Ñ, a copied Ñ with h1' = h1², h2' = h1'⁻¹",
			msg: func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
				return pr.announce(t, c, copiedRing(t, honest[1].nTilde, honest[1]))
			},
			wantIs: ErrModulusReuse,
		},
		{
			name: "copied Ñ with h1' = h1², h2' = h1'⁻¹",
			msg: func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
				return pr.announce(t, c, copiedRing(t, honest[2].n, honest[1]))
			},
			wantIs: ErrBadGenerator,
		},
		{
			name: "Ñ, h1, h2 and DLN proofs replayed from another party",
			msg: announceWith(c, honest[2], func(x *announcement) {
				x.nTilde, x.h1, x.h2, x.dln1, x.dln2 = honest[1].nTilde, honest[1].h1, honest[1].h2, honest[1].dln1, honest[1].dln2
			}),
			wantIs:       ErrDuplicateModulus,
			unattributed: true,
		},
		{
			name: "Ñ, h1, h2 and DLN proofs replayed from this party",
			msg: announceWith(c, honest[2], func(x *announcement) {
				x.nTilde, x.h1, x.h2, x.dln1, x.dln2 = honest[0].nTilde, honest[0].h1, honest[0].h2, honest[0].dln1, honest[0].dln2
			}),
			wantIs: ErrDuplicateModulus,
		},
		{
			name:         "Paillier N of another party",
			msg:          announceWith(c, honest[2], func(x *announcement) { x.n, x.mod = honest[1].n, honest[1].mod }),
			wantIs:       ErrDuplicateModulus,
			unattributed: true,
		},
		{
			name:   "DLN proof with a length prefix of 2⁶³",
			msg:    announceWith(c, honest[2], func(x *announcement) { x.dln1Parts = badPrefix }),
			wantIs: ErrMissingProof,
		},
		{
			name: "modulus proof with W = 2p (gcd(W, N) = p)",
			msg: func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
				x := honest[2].clone()
				mod := *x.mod
				mod.W = gcdW
				x.mod = &mod
				return pr.modProof(t, c, x)
			},
			prior:  priorAnnouncement(c, honest[2]),
			wantIs: ErrModProofGCD,
		},
		{
			name: "no-small-factor proof missing",
			msg: func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
				return pr.facProof(c, a, nil)
			},
			prior:  priorAnnouncement(c, honest[2]),
			wantIs: ErrMissingProof,
		},
		{
			name: "no-small-factor proof forged (z1 = q³·√N0)",
			msg: func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
				pf := honestFacProof(t, pps[2], pps[0])
				q3 := new(big.Int).Exp(curveQ, big.NewInt(3), nil)
				pf.Z1 = q3.Mul(q3, new(big.Int).Sqrt(p2.N))
				b := pf.Bytes()
				return pr.facProof(c, a, b[:])
			},
			prior:  priorAnnouncement(c, honest[2]),
			wantIs: ErrProofRange,
		},
	}
	for _, pr := range paramsProtocols {
		t.Run(pr.name, func(t *testing.T) {
			t.Run("honest parties pass", func(t *testing.T) {
				v := pr.validator(a.site, pps[0])
				for _, m := range []struct {
					from *member
					msg  tsslib.ParsedMessage
				}{
					{b, pr.announce(t, b, honest[1])},
					{c, pr.announce(t, c, honest[2])},
					{c, pr.modProof(t, c, honest[2])},
					{c, pr.facProof(c, a, facBytes(honestFacProof(t, pps[2], pps[0])))},
				} {
					if err := v.validate(m.from, m.msg); err != nil {
						t.Fatalf("honest %s from %s: %v", shortType(m.msg.Type()), m.from.site, err)
					}
				}
			})
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					v := pr.validator(a.site, pps[0])
					if err := v.validate(b, pr.announce(t, b, honest[1])); err != nil {
						t.Fatalf("honest B: %v", err)
					}
					if tc.prior != nil {
						for _, m := range tc.prior(t, pr) {
							if err := v.validate(c, m); err != nil {
								t.Fatalf("C's earlier honest %s: %v", shortType(m.Type()), err)
							}
						}
					}
					err := v.validate(c, tc.msg(t, pr))
					if !errors.Is(err, tc.wantIs) {
						t.Fatalf("got %v, want %v", err, tc.wantIs)
					}
					var ue *unattributedError
					if errors.As(err, &ue) != tc.unattributed {
						t.Fatalf("unattributed = %v, want %v (%v)", !tc.unattributed, tc.unattributed, err)
					}
				})
			}
		})
	}
}

func announceWith(from *member, base *announcement, edit func(*announcement)) func(*testing.T, paramsProtocol) tsslib.ParsedMessage {
	return func(t *testing.T, pr paramsProtocol) tsslib.ParsedMessage {
		x := base.clone()
		edit(x)
		return pr.announce(t, from, x)
	}
}

// priorAnnouncement validates from's honest announcement first, so that
// its later messages are checked against its modulus.
func priorAnnouncement(from *member, a *announcement) func(*testing.T, paramsProtocol) []tsslib.ParsedMessage {
	return func(t *testing.T, pr paramsProtocol) []tsslib.ParsedMessage {
		return []tsslib.ParsedMessage{pr.announce(t, from, a)}
	}
}

// honestFacProof is prover's no-small-factor proof made against verifier's
// ring.
func honestFacProof(t *testing.T, prover, verifier *keygen.LocalPreParams) *facproof.ProofFac {
	t.Helper()
	sk := prover.PaillierSK
	pf, err := facproof.NewProof(nil, tsslib.S256(), sk.N, verifier.NTildei, verifier.H1i, verifier.H2i, sk.P, sk.Q, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func facBytes(pf *facproof.ProofFac) [][]byte {
	b := pf.Bytes()
	return b[:]
}

// TestReshareValidator_OldCommitteeMessages reaches the checks of the old
// committee's messages: the public key each old member announces (tss-lib
// v2.0.2 compares every one with member 0's instead of with each other,
// upstream SRC-2026-1155), its encoding, the session ID's length and the
// opening of the VSS commitment.
func TestReshareValidator_OldCommitteeMessages(t *testing.T) {
	ec := tsslib.S256()
	key := crypto.ScalarBaseMult(ec, big.NewInt(3))
	other := crypto.ScalarBaseMult(ec, big.NewInt(4))
	b := testMember("B", 2)
	g1 := crypto.ScalarBaseMult(ec, big.NewInt(7))
	g2 := crypto.ScalarBaseMult(ec, big.NewInt(11))
	open := []*big.Int{big.NewInt(99), g1.X(), g1.Y(), g2.X(), g2.Y()}
	commitment := common.SHA512_256i(open...)
	round1 := func(pub *crypto.ECPoint, ssid []byte) tsslib.ParsedMessage {
		return resharing.NewDGRound1Message(nil, b.id, pub, commitment, ssid)
	}
	ssid := make([]byte, 32)
	cases := []struct {
		name   string
		msgs   []tsslib.ParsedMessage
		wantIs error
	}{
		{"honest", []tsslib.ParsedMessage{round1(key, ssid), resharing.NewDGRound3Message2(nil, b.id, open)}, nil},
		{"another public key", []tsslib.ParsedMessage{round1(other, ssid)}, ErrWrongPublicKey},
		{"public key x + p", []tsslib.ParsedMessage{round1(crypto.NewECPointNoCurveCheck(ec, new(big.Int).Add(key.X(), curveP), key.Y()), ssid)}, ErrPointNotOnCurve},
		{"session ID longer than a hash", []tsslib.ParsedMessage{round1(key, make([]byte, 33))}, ErrMalformedMessage},
		{"opening of another polynomial", []tsslib.ParsedMessage{round1(key, ssid),
			resharing.NewDGRound3Message2(nil, b.id, []*big.Int{big.NewInt(98), g1.X(), g1.Y(), g2.X(), g2.Y()})}, ErrDecommitment},
		{"VSS vector one point long", []tsslib.ParsedMessage{round1(key, ssid),
			resharing.NewDGRound3Message2(nil, b.id, append(open, g1.X(), g1.Y()))}, ErrVSSLength},
		{"share not below q", []tsslib.ParsedMessage{resharing.NewDGRound3Message1(testMember("A", 1).id, b.id, &vss.Share{Share: curveQ})}, ErrScalarRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newReshareValidator(ec, 1, key, "A")
			var err error
			for _, m := range tc.msgs {
				if err = v.validate(b, m); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.wantIs) || (tc.wantIs == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.wantIs)
			}
		})
	}
}
