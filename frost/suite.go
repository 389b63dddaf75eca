package frost

import (
	"crypto/sha256"
)

// A Ciphersuite fixes the prime-order group, the hash functions H1 to H5 and
// the signature format (RFC 9591 §6). Use the values returned by [Ed25519],
// [Secp256k1] and [Secp256k1BIP340]; the zero Ciphersuite is not usable.
type Ciphersuite struct {
	id     string // RFC 9591 contextString
	code   byte   // suite byte of the wire formats (FORMAT.md)
	g      group
	bip340 bool
}

var (
	suiteEd25519 = &Ciphersuite{id: "FROST-ED25519-SHA512-v1", code: 1, g: edGroup{}}
	suiteK256    = &Ciphersuite{id: "FROST-secp256k1-SHA256-v1", code: 2, g: kGroup{}}
	suiteK256TR  = &Ciphersuite{id: "FROST-secp256k1-SHA256-TR-v1", code: 3, g: kGroup{}, bip340: true}
)

// Ed25519 returns FROST(Ed25519, SHA-512) of RFC 9591 §6.1. Its signatures
// are ordinary Ed25519 signatures (RFC 8032), 64 bytes, that
// crypto/ed25519.Verify accepts.
func Ed25519() *Ciphersuite { return suiteEd25519 }

// Secp256k1 returns FROST(secp256k1, SHA-256) of RFC 9591 §6.5. Its
// signatures are 65 bytes (a compressed R and z) and are not BIP-340
// signatures; use [Secp256k1BIP340] for Bitcoin.
func Secp256k1() *Ciphersuite { return suiteK256 }

// Secp256k1BIP340 returns the BIP-340 mode of FROST over secp256k1: the same
// group as [Secp256k1] and the RFC 9591 protocol, with the context string
// "FROST-secp256k1-SHA256-TR-v1" for H1, H3, H4 and H5, the BIP-340
// challenge as H2, x-only keys with even-Y normalisation, an even-Y group
// commitment R, and optional BIP-341 key-path tweaking ([Taproot]). Its
// signatures are 64-byte BIP-340 signatures.
func Secp256k1BIP340() *Ciphersuite { return suiteK256TR }

// ID returns the suite's context string, for example
// "FROST-ED25519-SHA512-v1".
func (s *Ciphersuite) ID() string {
	if s == nil {
		return ""
	}
	return s.id
}

// String returns the suite's context string.
func (s *Ciphersuite) String() string { return s.ID() }

// suiteByCode returns the suite with wire code c, or nil.
func suiteByCode(c byte) *Ciphersuite {
	for _, s := range []*Ciphersuite{suiteEd25519, suiteK256, suiteK256TR} {
		if s.code == c {
			return s
		}
	}
	return nil
}

// valid reports whether s is one of the package's suites.
func (s *Ciphersuite) valid() bool { return s != nil && suiteByCode(s.code) == s }

func (s *Ciphersuite) isEd25519() bool { return s.code == suiteEd25519.code }

// hashToScalar is the suite's hash to a scalar with domain separation
// contextString || tag: H1 with "rho", H3 with "nonce", and the key
// generation hashes of this package.
func (s *Ciphersuite) hashToScalar(tag string, parts ...[]byte) scalar {
	if s.isEd25519() {
		return edHashToScalar(append([][]byte{[]byte(s.id + tag)}, parts...)...)
	}
	return kHashToScalar([]byte(s.id+tag), parts...)
}

// hash is H4 (tag "msg") and H5 (tag "com").
func (s *Ciphersuite) hash(tag string, parts ...[]byte) []byte {
	all := append([][]byte{[]byte(s.id + tag)}, parts...)
	if s.isEd25519() {
		return edHash(all...)
	}
	return kHash(all...)
}

// h1 computes a binding factor (RFC 9591 §4.4).
func (s *Ciphersuite) h1(m []byte) scalar { return s.hashToScalar("rho", m) }

// h3 derives a nonce (RFC 9591 §4.1).
func (s *Ciphersuite) h3(m ...[]byte) scalar { return s.hashToScalar("nonce", m...) }

// challenge computes the signature challenge c from the (already
// parity-normalised) group commitment R and verification key (RFC 9591 §4.6;
// BIP-340 for the BIP-340 mode).
func (s *Ciphersuite) challenge(r, key element, msg []byte) scalar {
	switch {
	case s.isEd25519():
		// H2 of RFC 9591 §6.1 omits the context string for RFC 8032
		// compatibility.
		return edHashToScalar(r.bytes(), key.bytes(), msg)
	case s.bip340:
		return bip340Challenge(r.(*kElement).xBytes(), key.(*kElement).xBytes(), msg)
	default:
		return kHashToScalar([]byte(s.id+"chal"), r.bytes(), key.bytes(), msg)
	}
}

// taggedHash is hash_tag(x) = SHA256(SHA256(tag) || SHA256(tag) || x) of
// BIP-340.
func taggedHash(tag string, parts ...[]byte) []byte {
	t := sha256.Sum256([]byte(tag))
	h := sha256.New()
	h.Write(t[:])
	h.Write(t[:])
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// bip340Challenge is e = int(hash_BIP0340/challenge(bytes(R) || bytes(P) ||
// m)) mod n (BIP-340, "Default Signing" step 9).
func bip340Challenge(rx, px, msg []byte) scalar {
	return new(kScalar).setReduced(taggedHash("BIP0340/challenge", rx, px, msg))
}
