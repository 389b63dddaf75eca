package tss

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/tss/internal/mtacheck"
)

// signValidator checks the messages of tss-lib's GG18 signing
// (ecdsa/signing, GG18 §4.2 phases 1–6 as tss-lib v2.0.2 runs them in nine
// rounds) before tss-lib sees them. Every check is against the key's own
// public data: each signer's Paillier modulus and this party's Paillier key
// and ring-Pedersen modulus, from the share.
//
// Without it, one hostile round-1 message kills the process: tss-lib
// verifies the range proof in a goroutine it starts itself
// (ecdsa/signing/round_2.go), computes c^(−e) mod N² there, gets nil for a
// ciphertext that is not a unit, and dereferences it.
type signValidator struct {
	ec    elliptic.Curve
	own   signPeer              // this party: its Paillier N, N² and its Ñ
	dec   *paillierDecryptor    // this party's Paillier key, for the MtA plaintext bound
	peers map[PartyID]*signPeer // the other signers' Paillier N and N²
	gamma map[PartyID]*big.Int  // round-1 commitments to Γ_i
	va    map[PartyID]*big.Int  // round-5 commitments to V_i, A_i
	ut    map[PartyID]*big.Int  // round-7 commitments to U_i, T_i
}

type signPeer struct {
	n, nn, nTilde *big.Int
}

// newSignValidator returns the validator of a signing session of share
// among members, this party being self. It copies nothing secret but the
// Paillier factors it needs to decrypt; wipe erases them.
func newSignValidator(share *keyShare, members []*member, self PartyID) (*signValidator, error) {
	d := share.Data
	sk := d.PaillierSK
	if sk == nil || sk.N == nil || d.NTildei == nil {
		return nil, fmt.Errorf("%w: share of key %s lacks its Paillier key", ErrProtocol, share.KeyID)
	}
	dec, err := newPaillierDecryptor(sk)
	if err != nil {
		return nil, fmt.Errorf("%w: share of key %s: %v", ErrProtocol, share.KeyID, err)
	}
	v := &signValidator{
		ec:    tsslib.S256(),
		own:   signPeer{n: sk.N, nn: new(big.Int).Mul(sk.N, sk.N), nTilde: d.NTildei},
		dec:   dec,
		peers: make(map[PartyID]*signPeer),
		gamma: make(map[PartyID]*big.Int),
		va:    make(map[PartyID]*big.Int),
		ut:    make(map[PartyID]*big.Int),
	}
	for _, m := range members {
		if m.site == self {
			continue
		}
		j := -1
		for i, k := range d.Ks {
			if k != nil && k.Cmp(m.id.KeyInt()) == 0 {
				j = i
				break
			}
		}
		if j < 0 || j >= len(d.PaillierPKs) || d.PaillierPKs[j] == nil || d.PaillierPKs[j].N == nil {
			dec.wipe()
			return nil, fmt.Errorf("%w: share of key %s has no Paillier key for %s", ErrProtocol, share.KeyID, m.site)
		}
		n := d.PaillierPKs[j].N
		v.peers[m.site] = &signPeer{n: n, nn: new(big.Int).Mul(n, n)}
	}
	return v, nil
}

// wipe erases the copy of this party's Paillier factors.
func (v *signValidator) wipe() { v.dec.wipe() }

func (v *signValidator) validate(from *member, msg tsslib.ParsedMessage) error {
	peer := v.peers[from.site]
	if peer == nil {
		return fmt.Errorf("%w: %s is not a signer", ErrMalformedMessage, from.site)
	}
	switch c := msg.Content().(type) {
	case *signing.SignRound1Message1:
		// Phase 1, to us: c = Enc_j(k_j) under the sender's key and its range
		// proof k_j < q³ against our Ñ (GG18 Fig. 9).
		if !mtacheck.IsCiphertext(new(big.Int).SetBytes(c.GetC()), peer.n, peer.nn) {
			return fmt.Errorf("%w: Enc(k)", ErrBadCiphertext)
		}
		pf, err := c.UnmarshalRangeProofAlice()
		if err != nil {
			return fmt.Errorf("%w: range proof: %v", ErrMissingProof, err)
		}
		return proofError(mtacheck.RangeProof(pf, mtacheck.Moduli{N: peer.n, NN: peer.nn, NTilde: v.own.nTilde}))
	case *signing.SignRound1Message2:
		// Phase 1, broadcast: the commitment to Γ_j = g^γ_j.
		cm, err := checkHash(c.GetCommitment(), "commitment to Γ")
		if err != nil {
			return err
		}
		v.gamma[from.site] = cm
	case *signing.SignRound2Message:
		return v.checkMtA(c)
	case *signing.SignRound3Message:
		// Phase 2 end: δ_j (tss-lib's θ_j), a scalar mod q.
		if _, err := checkScalar(c.GetTheta(), false, "δ"); err != nil {
			return err
		}
	case *signing.SignRound4Message:
		// Phase 4: the opening of Γ_j and a Schnorr proof of knowledge of
		// γ_j (Fig. 16). tss-lib multiplies g by t: t = 0 mod q panics.
		if _, err := openDecommitment(v.ec, v.gamma[from.site], c.GetDeCommitment(), 1, "opening of Γ"); err != nil {
			return err
		}
		if _, err := checkPointBytes(v.ec, c.GetProofAlphaX(), c.GetProofAlphaY(), "Schnorr proof α"); err != nil {
			return err
		}
		if _, err := checkScalar(c.GetProofT(), true, "Schnorr proof t"); err != nil {
			return err
		}
	case *signing.SignRound5Message:
		// Phase 5A: the commitment to V_j = R^s_j·g^l_j and A_j = g^ρ_j.
		cm, err := checkHash(c.GetCommitment(), "commitment to V, A")
		if err != nil {
			return err
		}
		v.va[from.site] = cm
	case *signing.SignRound6Message:
		// Phase 5B: the opening of V_j, A_j, a Schnorr proof for A_j and a
		// proof of knowledge of s_j, l_j for V_j (Fig. 17). tss-lib
		// multiplies points by t and u: zero panics.
		if _, err := openDecommitment(v.ec, v.va[from.site], c.GetDeCommitment(), 2, "opening of V, A"); err != nil {
			return err
		}
		if _, err := checkPointBytes(v.ec, c.GetProofAlphaX(), c.GetProofAlphaY(), "Schnorr proof α"); err != nil {
			return err
		}
		if _, err := checkScalar(c.GetProofT(), true, "Schnorr proof t"); err != nil {
			return err
		}
		if _, err := checkPointBytes(v.ec, c.GetVProofAlphaX(), c.GetVProofAlphaY(), "V proof α"); err != nil {
			return err
		}
		if _, err := checkScalar(c.GetVProofT(), true, "V proof t"); err != nil {
			return err
		}
		if _, err := checkScalar(c.GetVProofU(), true, "V proof u"); err != nil {
			return err
		}
	case *signing.SignRound7Message:
		// Phase 5C: the commitment to U_j = V^ρ_j and T_j = A^l_j.
		cm, err := checkHash(c.GetCommitment(), "commitment to U, T")
		if err != nil {
			return err
		}
		v.ut[from.site] = cm
	case *signing.SignRound8Message:
		// Phase 5D: the opening of U_j, T_j. tss-lib v2.0.2 checks neither
		// that they are points nor, for an opening that verifies, that it
		// has four values (its length test reads `!ok && len != 4`) and then
		// indexes it.
		if _, err := openDecommitment(v.ec, v.ut[from.site], c.GetDeCommitment(), 2, "opening of U, T"); err != nil {
			return err
		}
	case *signing.SignRound9Message:
		// Phase 5E: s_j mod q.
		if _, err := checkScalar(c.GetS(), false, "s"); err != nil {
			return err
		}
	}
	return nil
}

// checkMtA checks Bob's half of both MtA runs sent to us (phase 2): the
// ciphertexts c1 = k_i·γ_j + β' and c2 = k_i·w_j + ν' under our key, Bob's
// proof for c1 (Fig. 11) and his proof with check for c2 (Fig. 10), both
// against our Ñ; then that both decrypt below q⁶ (mtacheck.Plaintext).
func (v *signValidator) checkMtA(c *signing.SignRound2Message) error {
	m := mtacheck.Moduli{N: v.own.n, NN: v.own.nn, NTilde: v.own.nTilde}
	c1, c2 := new(big.Int).SetBytes(c.GetC1()), new(big.Int).SetBytes(c.GetC2())
	if !mtacheck.IsCiphertext(c1, m.N, m.NN) {
		return fmt.Errorf("%w: MtA(k, γ) ciphertext", ErrBadCiphertext)
	}
	if !mtacheck.IsCiphertext(c2, m.N, m.NN) {
		return fmt.Errorf("%w: MtAwc(k, w) ciphertext", ErrBadCiphertext)
	}
	pb, err := c.UnmarshalProofBob()
	if err != nil {
		return fmt.Errorf("%w: Bob proof: %v", ErrMissingProof, err)
	}
	if err := proofError(mtacheck.BobProof(pb, m)); err != nil {
		return err
	}
	wc := c.GetProofBobWc()
	if len(wc) != 12 {
		return fmt.Errorf("%w: Bob proof with check has %d parts", ErrMissingProof, len(wc))
	}
	if _, err := checkPointBytes(v.ec, wc[10], wc[11], "Bob proof u"); err != nil {
		return err
	}
	pwc, err := c.UnmarshalProofBobWC(v.ec)
	if err != nil {
		return fmt.Errorf("%w: Bob proof with check: %v", ErrMissingProof, err)
	}
	if err := proofError(mtacheck.BobProof(pwc.ProofBob, m)); err != nil {
		return err
	}
	for _, ct := range []*big.Int{c1, c2} {
		alpha := v.dec.decrypt(ct)
		err := mtacheck.Plaintext(alpha)
		wipeInt(alpha)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMtAPlaintext, err)
		}
	}
	return nil
}

// proofError maps a mtacheck failure to this package's sentinels.
func proofError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mtacheck.ErrMissing):
		return fmt.Errorf("%w: %v", ErrMissingProof, err)
	default:
		return fmt.Errorf("%w: %v", ErrProofRange, err)
	}
}

// paillierDecryptor decrypts under this party's own Paillier key with the
// Chinese remainder theorem (Paillier, Eurocrypt '99, §7): two
// exponentiations modulo p² and q² with exponents p−1 and q−1, about four
// times faster than one modulo N² with exponent λ(N).
type paillierDecryptor struct {
	n, p, q, pp, qq, pm1, qm1, hp, hq, qInvP *big.Int
}

func newPaillierDecryptor(sk *paillier.PrivateKey) (*paillierDecryptor, error) {
	if sk.P == nil || sk.Q == nil || sk.P.Cmp(one) <= 0 || sk.Q.Cmp(one) <= 0 ||
		new(big.Int).Mul(sk.P, sk.Q).Cmp(sk.N) != 0 {
		return nil, errors.New("Paillier key lacks its factors")
	}
	d := &paillierDecryptor{
		n:   sk.N,
		p:   new(big.Int).Set(sk.P),
		q:   new(big.Int).Set(sk.Q),
		pm1: new(big.Int).Sub(sk.P, one),
		qm1: new(big.Int).Sub(sk.Q, one),
	}
	d.pp = new(big.Int).Mul(d.p, d.p)
	d.qq = new(big.Int).Mul(d.q, d.q)
	// h_p = L_p(Γ^(p−1) mod p²)⁻¹ mod p, with Γ^(p−1) = (1+N)^(p−1) ≡ 1 + (p−1)·N.
	h := func(f, ff, fm1 *big.Int) *big.Int {
		g := new(big.Int).Mul(fm1, d.n)
		g.Add(g, one).Mod(g, ff)
		l := g.Sub(g, one).Div(g, f)
		return l.ModInverse(l, f)
	}
	d.hp, d.hq = h(d.p, d.pp, d.pm1), h(d.q, d.qq, d.qm1)
	d.qInvP = new(big.Int).ModInverse(d.q, d.p)
	if d.hp == nil || d.hq == nil || d.qInvP == nil {
		d.wipe()
		return nil, errors.New("Paillier key has inconsistent factors")
	}
	return d, nil
}

// decrypt returns the plaintext of c, a unit modulo N².
func (d *paillierDecryptor) decrypt(c *big.Int) *big.Int {
	part := func(f, ff, fm1, h *big.Int) *big.Int {
		x := new(big.Int).Mod(c, ff)
		x.Exp(x, fm1, ff)
		x.Sub(x, one).Div(x, f)
		x.Mul(x, h)
		return x.Mod(x, f)
	}
	mp := part(d.p, d.pp, d.pm1, d.hp)
	mq := part(d.q, d.qq, d.qm1, d.hq)
	// m = m_q + q·((m_p − m_q)·q⁻¹ mod p)
	m := mp.Sub(mp, mq)
	m.Mul(m, d.qInvP).Mod(m, d.p)
	m.Mul(m, d.q).Add(m, mq)
	wipeInt(mq)
	return m
}

func (d *paillierDecryptor) wipe() {
	if d == nil {
		return
	}
	for _, x := range []*big.Int{d.p, d.q, d.pp, d.qq, d.pm1, d.qm1, d.hp, d.hq, d.qInvP} {
		wipeInt(x)
	}
}
