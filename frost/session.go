package frost

import (
	"maps"
	"slices"
)

// session holds the public values of one signing run that signers and the
// coordinator derive alike from a [SigningPackage].
type session struct {
	pub     *PublicKey
	msg     []byte
	signers []Identifier // ascending
	comm    map[Identifier]*Commitment
	rho     map[Identifier]scalar // binding factors (RFC 9591 §4.4)
	r       element               // group commitment; even Y in the BIP-340 mode
	negR    bool                  // BIP-340 mode: R had odd Y, nonces are negated
	key     element               // verification key; even Y in the BIP-340 mode
	keySign scalar                // ±1: the sign applied to the secret shares
	c       scalar                // challenge
	tweak   scalar                // c·g_Q·t, added at aggregation; nil without a tweak
}

// newSession validates pkg against the key and computes binding factors,
// group commitment and challenge (RFC 9591 §4.4 to §4.6).
func (p *PublicKey) newSession(pkg *SigningPackage) (*session, error) {
	if pkg == nil {
		return nil, errf(ErrInvalidPackage, "nil package")
	}
	s := p.suite
	g := s.g
	ses := &session{pub: p, msg: pkg.Message, comm: make(map[Identifier]*Commitment, len(pkg.Commitments))}
	for _, c := range pkg.Commitments {
		if c == nil || c.suite == nil {
			return nil, errf(ErrInvalidPackage, "nil commitment")
		}
		if c.suite != s {
			return nil, errf(ErrSuiteMismatch, "commitment of %s for a %s key", c.suite.id, s.id)
		}
		if _, ok := p.shares[c.id]; !ok {
			return nil, errf(ErrInvalidPackage, "participant %d is not a participant of the key", c.id)
		}
		if _, dup := ses.comm[c.id]; dup {
			return nil, errf(ErrInvalidPackage, "two commitments from participant %d", c.id)
		}
		ses.comm[c.id] = c
	}
	if len(ses.comm) < p.threshold {
		return nil, errf(ErrInvalidPackage, "%d signers for a threshold of %d", len(ses.comm), p.threshold)
	}
	ses.signers = slices.Sorted(maps.Keys(ses.comm))

	// The verification key, and the signs of BIP-340 and BIP-341.
	ses.key, ses.keySign = p.key, g.newScalar().setUint16(1)
	if s.bip340 {
		q, gKey, gQ, t, err := p.bip340Key(pkg.Taproot)
		if err != nil {
			return nil, err
		}
		ses.key, ses.keySign = q, gKey
		if t != nil {
			ses.tweak = g.newScalar().mul(gQ, t) // times c below
		}
	} else if pkg.Taproot != nil {
		return nil, errf(ErrInvalidPackage, "a Taproot tweak needs the BIP-340 mode, not %s", s.id)
	}

	// RFC 9591 §4.3 encode_group_commitment_list and §4.4
	// compute_binding_factors.
	var list []byte
	for _, id := range ses.signers {
		c := ses.comm[id]
		list = append(list, identifierScalar(g, id).bytes()...)
		list = append(list, c.hiding.bytes()...)
		list = append(list, c.binding.bytes()...)
	}
	prefix := slices.Concat(ses.key.bytes(), s.hash("msg", pkg.Message), s.hash("com", list))
	ses.rho = make(map[Identifier]scalar, len(ses.signers))
	for _, id := range ses.signers {
		ses.rho[id] = s.h1(slices.Concat(prefix, identifierScalar(g, id).bytes()))
	}

	// RFC 9591 §4.5 compute_group_commitment.
	r := g.newElement()
	for _, id := range ses.signers {
		r.add(r, ses.commitmentShare(id))
	}
	if r.isIdentity() {
		// Only possible if some commitments were chosen to cancel.
		return nil, errf(ErrInvalidPackage, "group commitment is the identity")
	}
	if s.bip340 && !r.(*kElement).hasEvenY() {
		r.negate(r)
		ses.negR = true
	}
	ses.r = r
	ses.c = s.challenge(r, ses.key, pkg.Message)
	if ses.tweak != nil {
		ses.tweak.mul(ses.tweak, ses.c)
	}
	return ses, nil
}

// commitmentShare is D_i + ρ_i·E_i, before any BIP-340 negation.
func (ses *session) commitmentShare(id Identifier) element {
	g := ses.pub.suite.g
	c := ses.comm[id]
	e := g.newElement().scalarMult(ses.rho[id], c.binding)
	return e.add(e, c.hiding)
}

// keyFactor is λ_i·c·g, the public factor of the secret share x_i in z_i.
func (ses *session) keyFactor(id Identifier) scalar {
	g := ses.pub.suite.g
	l := lagrange(g, ses.signers, id, g.newScalar())
	return l.mul(l, ses.c).mul(l, ses.keySign)
}

// verifyShare is verify_signature_share of RFC 9591 §5.3, with the BIP-340
// signs: z_i·G = ±(D_i + ρ_i·E_i) + λ_i·c·g·X_i.
func (ses *session) verifyShare(sh *SignatureShare) bool {
	g := ses.pub.suite.g
	rhs := ses.commitmentShare(sh.id)
	if ses.negR {
		rhs.negate(rhs)
	}
	rhs.add(rhs, g.newElement().scalarMult(ses.keyFactor(sh.id), ses.pub.shares[sh.id]))
	return g.newElement().scalarBaseMult(sh.z).equal(rhs)
}

// encode returns the signature (R, z) in the suite's format: R || z with the
// suite's encodings (RFC 9591 Appendix A), or bytes(R) || bytes(z) in the
// BIP-340 mode.
func (ses *session) encode(z scalar) []byte {
	if ses.pub.suite.bip340 {
		return slices.Concat(ses.r.(*kElement).xBytes(), z.bytes())
	}
	return slices.Concat(ses.r.bytes(), z.bytes())
}

// verificationKey is the encoding of the key a signature of this session
// verifies under with [Ciphersuite.Verify].
func (ses *session) verificationKey() []byte {
	if ses.pub.suite.bip340 {
		return ses.key.(*kElement).xBytes()
	}
	return ses.key.bytes()
}

// VerifyShare checks one signature share against the signer's public share
// (verify_signature_share, RFC 9591 §5.3). It returns nil, an error about
// the package, or a *[CulpritError] naming the signer and wrapping
// [ErrInvalidShare] or [ErrUnexpectedShare].
func (p *PublicKey) VerifyShare(pkg *SigningPackage, share *SignatureShare) error {
	ses, err := p.newSession(pkg)
	if err != nil {
		return err
	}
	return ses.checkShare(share)
}

func (ses *session) checkShare(sh *SignatureShare) error {
	if sh == nil || sh.suite == nil {
		return errf(ErrInvalidParameters, "nil signature share")
	}
	if sh.suite != ses.pub.suite {
		return errf(ErrSuiteMismatch, "share of %s for a %s key", sh.suite.id, ses.pub.suite.id)
	}
	if _, ok := ses.comm[sh.id]; !ok {
		return culprits(ErrUnexpectedShare, sh.id)
	}
	if !ses.verifyShare(sh) {
		return culprits(ErrInvalidShare, sh.id)
	}
	return nil
}

// Aggregate combines the signers' shares into a signature (RFC 9591 §5.3),
// adding the Taproot tweak term in the BIP-340 mode, and verifies it before
// returning it. The result is the signature in the suite's format (see
// [Ciphersuite.Verify]) under the key [PublicKey.SigningKey] returns for the
// package.
//
// Every signer of the package must have sent exactly one share. A missing,
// unexpected or duplicate share, or, when the signature does not verify,
// every share that fails verify_signature_share, is reported as a
// *[CulpritError] naming the parties (identifiable abort, RFC 9591 §5.4).
func (p *PublicKey) Aggregate(pkg *SigningPackage, shares []*SignatureShare) ([]byte, error) {
	ses, err := p.newSession(pkg)
	if err != nil {
		return nil, err
	}
	g := p.suite.g
	got := make(map[Identifier]*SignatureShare, len(shares))
	var extra []Identifier
	for _, sh := range shares {
		if sh == nil || sh.suite == nil {
			return nil, errf(ErrInvalidParameters, "nil signature share")
		}
		if sh.suite != p.suite {
			return nil, errf(ErrSuiteMismatch, "share of %s for a %s key", sh.suite.id, p.suite.id)
		}
		_, signer := ses.comm[sh.id]
		if _, dup := got[sh.id]; dup || !signer {
			extra = append(extra, sh.id)
			continue
		}
		got[sh.id] = sh
	}
	if len(extra) > 0 {
		return nil, culprits(ErrUnexpectedShare, extra...)
	}
	var missing []Identifier
	for _, id := range ses.signers {
		if _, ok := got[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, culprits(ErrMissingShare, missing...)
	}
	z := g.newScalar()
	for _, id := range ses.signers {
		z.add(z, got[id].z)
	}
	if ses.tweak != nil {
		z.add(z, ses.tweak)
	}
	sig := ses.encode(z)
	if p.suite.Verify(ses.verificationKey(), ses.msg, sig) == nil {
		return sig, nil
	}
	var bad []Identifier
	for _, id := range ses.signers {
		if !ses.verifyShare(got[id]) {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		return nil, culprits(ErrInvalidShare, bad...)
	}
	return nil, errf(ErrInvalidSignature, "aggregate of valid shares does not verify")
}
