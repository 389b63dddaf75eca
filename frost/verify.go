package frost

// Verify checks a signature on message under publicKey and returns nil if it
// is valid, else an error wrapping [ErrInvalidSignature] (or [ErrEncoding]
// for a malformed key). The formats are:
//
//   - Ed25519: 32-byte key, 64-byte signature R || z (RFC 8032); the check is
//     z·G = R + c·PK with R and PK in the prime-order subgroup, which equals
//     the cofactored check RFC 9591 §6.1 requires.
//   - secp256k1: 33-byte compressed key, 65-byte signature R || z with a
//     compressed R, checked as in RFC 9591 Appendix B.
//   - BIP-340 mode: 32-byte x-only key, 64-byte signature, BIP-340 Verify
//     (messages of any length).
func (s *Ciphersuite) Verify(publicKey, message, sig []byte) error {
	if !s.valid() {
		return errf(ErrInvalidParameters, "unknown ciphersuite")
	}
	if s.bip340 {
		return verifyBIP340(publicKey, message, sig)
	}
	g := s.g
	pk, err := g.decodeElement(publicKey)
	if err != nil {
		return err
	}
	if len(sig) != g.elementLen()+g.scalarLen() {
		return errf(ErrInvalidSignature, "signature has %d bytes, want %d", len(sig), g.elementLen()+g.scalarLen())
	}
	r, err := g.decodeElement(sig[:g.elementLen()])
	if err != nil {
		return errf(ErrInvalidSignature, "R: %v", err)
	}
	z, err := g.decodeScalar(sig[g.elementLen():])
	if err != nil {
		return errf(ErrInvalidSignature, "z: %v", err)
	}
	c := s.challenge(r, pk, message)
	rhs := g.newElement().scalarMult(c, pk)
	rhs.add(rhs, r)
	if !g.newElement().scalarBaseMult(z).equal(rhs) {
		return errf(ErrInvalidSignature, "z·G differs from R + c·PK")
	}
	return nil
}
