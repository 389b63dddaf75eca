package frost

import "github.com/decred/dcrd/dcrec/secp256k1/v4"

// bip340Key returns, for the BIP-340 mode, the verification key q with even
// Y, the sign gKey with which the secret shares enter the signature, the sign
// gQ of the tweaked key and the tweak t (nil without tr).
//
// With P the group key, g_P = ±1 such that g_P·P has even Y (BIP-340 uses
// x-only keys), Q = g_P·P + t·G (BIP-341 taproot_tweak_pubkey) and g_Q = ±1
// such that g_Q·Q has even Y, the signature is one for the secret
// g_Q·(g_P·x + t): signers contribute λ_i·c·(g_Q·g_P)·x_i and the
// aggregator adds c·g_Q·t.
func (p *PublicKey) bip340Key(tr *Taproot) (q *kElement, gKey, gQ, t scalar, err error) {
	g := p.suite.g
	one := g.newScalar().setUint16(1)
	minusOne := g.newScalar().negate(one)
	pe := new(kElement)
	pe.set(p.key)
	gP := one
	if !pe.hasEvenY() {
		pe.negate(pe)
		gP = minusOne
	}
	if tr == nil {
		return pe, gP, one, nil, nil
	}
	tw, err := taprootTweak(pe.xBytes(), tr.MerkleRoot)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	q = new(kElement)
	q.scalarBaseMult(tw)
	q.add(q, pe)
	if q.isIdentity() {
		return nil, nil, nil, nil, errf(ErrInvalidPackage, "tweaked key is the point at infinity")
	}
	gQ = one
	if !q.hasEvenY() {
		q.negate(q)
		gQ = minusOne
	}
	return q, g.newScalar().mul(gP, gQ), gQ, tw, nil
}

// taprootTweak is t = int(hash_TapTweak(px || root)) of BIP-341
// taproot_tweak_pubkey; it fails if t ≥ n.
func taprootTweak(px, root []byte) (scalar, error) {
	if len(root) != 0 && len(root) != 32 {
		return nil, errf(ErrInvalidPackage, "Taproot merkle root has %d bytes, want 32 or none", len(root))
	}
	t := new(kScalar)
	if t.s.SetByteSlice(taggedHash("TapTweak", px, root)) {
		return nil, errf(ErrInvalidPackage, "Taproot tweak is not below the group order")
	}
	return t, nil
}

// XOnly returns the 32-byte x-only group key of BIP-340 (the x coordinate
// of the group key; the BIP-340 mode signs for whichever of ±P has even Y).
// It is the internal key of a Taproot output. It returns an error wrapping
// [ErrSuiteMismatch] for Ed25519 keys.
func (p *PublicKey) XOnly() ([]byte, error) {
	k, ok := p.key.(*kElement)
	if !ok {
		return nil, errf(ErrSuiteMismatch, "x-only keys are secp256k1 keys")
	}
	return k.xBytes(), nil
}

// TaprootOutputKey returns the 32-byte x-only output key Q of BIP-341 for
// the group key as internal key and the given tweak: what a P2TR output
// commits to and what BIP-340 signatures made with tr verify under. It needs
// the BIP-340 mode ([ErrSuiteMismatch] otherwise).
func (p *PublicKey) TaprootOutputKey(tr Taproot) ([]byte, error) {
	if !p.suite.bip340 {
		return nil, errf(ErrSuiteMismatch, "Taproot needs %s, not %s", suiteK256TR.id, p.suite.id)
	}
	q, _, _, _, err := p.bip340Key(&tr)
	if err != nil {
		return nil, err
	}
	return q.xBytes(), nil
}

// SigningKey returns the encoded key that signatures aggregated for
// packages with the given Taproot setting verify under with
// [Ciphersuite.Verify]: [PublicKey.Bytes] for Ed25519 and secp256k1, the
// x-only group key (tr nil) or the Taproot output key in the BIP-340 mode.
func (p *PublicKey) SigningKey(tr *Taproot) ([]byte, error) {
	switch {
	case !p.suite.bip340 && tr != nil:
		return nil, errf(ErrInvalidPackage, "a Taproot tweak needs the BIP-340 mode, not %s", p.suite.id)
	case !p.suite.bip340:
		return p.key.bytes(), nil
	case tr == nil:
		return p.XOnly()
	default:
		return p.TaprootOutputKey(*tr)
	}
}

// verifyBIP340 is BIP-340 Verify(pk, m, sig), for messages of any length.
func verifyBIP340(pk, msg, sig []byte) error {
	p, err := liftX(pk)
	if err != nil {
		return errf(ErrInvalidSignature, "public key: %v", err)
	}
	if len(sig) != 64 {
		return errf(ErrInvalidSignature, "signature has %d bytes, want 64", len(sig))
	}
	var r secp256k1.FieldVal
	if r.SetByteSlice(sig[:32]) {
		return errf(ErrInvalidSignature, "r is not below the field prime")
	}
	s := new(kScalar)
	if s.s.SetByteSlice(sig[32:]) {
		return errf(ErrInvalidSignature, "s is not below the group order")
	}
	e := bip340Challenge(sig[:32], pk, msg)
	// R = s·G − e·P
	rp := new(kElement)
	rp.scalarMult(new(kScalar).negate(e), p)
	rp.add(rp, new(kElement).scalarBaseMult(s))
	if rp.isIdentity() {
		return errf(ErrInvalidSignature, "R is the point at infinity")
	}
	if !rp.hasEvenY() {
		return errf(ErrInvalidSignature, "R has odd Y")
	}
	a := rp.affine()
	if !a.X.Equals(r.Normalize()) {
		return errf(ErrInvalidSignature, "x(R) differs from r")
	}
	return nil
}
