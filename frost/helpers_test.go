package frost

import (
	"crypto/rand"
	"testing"
)

var allSuites = []*Ciphersuite{Ed25519(), Secp256k1(), Secp256k1BIP340()}

// testKey deals a random key threshold-of-n among participants 1..n.
func testKey(t testing.TB, s *Ciphersuite, threshold, n int) (*PublicKey, []*KeyShare) {
	t.Helper()
	d, err := Deal(s, nil, threshold, n, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Wipe()
	shares, err := d.KeyShares()
	if err != nil {
		t.Fatal(err)
	}
	return shares[0].PublicKey(), shares
}

// commitAll runs round one for the given signers.
func commitAll(t testing.TB, msg []byte, signers ...*KeyShare) (map[Identifier]*Nonce, *SigningPackage) {
	t.Helper()
	nonces := map[Identifier]*Nonce{}
	pkg := &SigningPackage{Message: msg}
	for _, k := range signers {
		n, c, err := k.Commit(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		nonces[k.Identifier()] = n
		pkg.Commitments = append(pkg.Commitments, c)
	}
	return nonces, pkg
}

// signAll runs round two for the given signers.
func signAll(t testing.TB, nonces map[Identifier]*Nonce, pkg *SigningPackage, signers ...*KeyShare) []*SignatureShare {
	t.Helper()
	var out []*SignatureShare
	for _, k := range signers {
		sh, err := k.Sign(nonces[k.Identifier()], pkg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sh)
	}
	return out
}
