package frost_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/keyquorum/keyquorum/frost"
)

// sign2of3 runs both signing rounds with participants 1 and 3 of a 2-of-3
// key and returns the signature. Errors are checked once at the end to keep
// the example short; real code checks each.
func sign2of3(shares []*frost.KeyShare, msg []byte, taproot *frost.Taproot) ([]byte, error) {
	signers := []*frost.KeyShare{shares[0], shares[2]}
	// Round one: each signer commits and keeps its nonce.
	pkg := &frost.SigningPackage{Message: msg, Taproot: taproot}
	nonces := map[frost.Identifier]*frost.Nonce{}
	for _, s := range signers {
		nonce, commitment, err := s.Commit(rand.Reader)
		if err != nil {
			return nil, err
		}
		nonces[s.Identifier()] = nonce
		pkg.Commitments = append(pkg.Commitments, commitment)
	}
	// Round two: the coordinator sends pkg to each signer.
	var sigShares []*frost.SignatureShare
	for _, s := range signers {
		share, err := s.Sign(nonces[s.Identifier()], pkg)
		if err != nil {
			return nil, err
		}
		sigShares = append(sigShares, share)
	}
	// The coordinator aggregates and verifies.
	return shares[0].PublicKey().Aggregate(pkg, sigShares)
}

// A 2-of-3 Ed25519 key from a trusted dealer signs a message that
// crypto/ed25519 verifies.
func Example_ed25519() {
	dealing, err := frost.Deal(frost.Ed25519(), nil, 2, 3, rand.Reader)
	if err != nil {
		panic(err)
	}
	shares, err := dealing.KeyShares()
	dealing.Wipe()
	if err != nil {
		panic(err)
	}
	msg := []byte("withdraw 10 units to account 7")
	sig, err := sign2of3(shares, msg, nil)
	if err != nil {
		panic(err)
	}
	pub := shares[0].PublicKey().Bytes()
	fmt.Println("ed25519.Verify:", ed25519.Verify(pub, msg, sig))
	// Output: ed25519.Verify: true
}

// A 2-of-3 key of FROST(secp256k1, SHA-256) signs a message; the 65-byte
// signature verifies under the 33-byte compressed group key.
func Example_secp256k1() {
	dealing, err := frost.Deal(frost.Secp256k1(), nil, 2, 3, rand.Reader)
	if err != nil {
		panic(err)
	}
	shares, err := dealing.KeyShares()
	dealing.Wipe()
	if err != nil {
		panic(err)
	}
	msg := []byte("rotate the audit key")
	sig, err := sign2of3(shares, msg, nil)
	if err != nil {
		panic(err)
	}
	pub := shares[0].PublicKey().Bytes()
	fmt.Println(len(pub), len(sig), frost.Secp256k1().Verify(pub, msg, sig) == nil)
	// Output: 33 65 true
}

// A 2-of-3 secp256k1 key from a distributed key generation signs a Taproot
// key-path spend (BIP-340 signature for the BIP-341 output key).
func Example_taproot() {
	suite := frost.Secp256k1BIP340()
	ids := []frost.Identifier{1, 2, 3}
	session := []byte("keygen session 2026-11-26/1")
	// Round one: every participant broadcasts its commitment and proof.
	var states []*frost.DKG
	var round1 []*frost.DKGRound1
	for _, id := range ids {
		d, msg, err := frost.NewDKG(frost.DKGConfig{Suite: suite, Self: id, Participants: ids, Threshold: 2, Context: session})
		if err != nil {
			panic(err)
		}
		states, round1 = append(states, d), append(round1, msg)
	}
	// Round two: every participant checks the proofs and sends shares.
	inbox := map[frost.Identifier][]*frost.DKGRound2{}
	for _, d := range states {
		out, err := d.Round2(round1)
		if err != nil {
			panic(err)
		}
		for _, m := range out {
			inbox[m.To()] = append(inbox[m.To()], m)
		}
	}
	var shares []*frost.KeyShare
	for i, d := range states {
		ks, err := d.Finalize(inbox[ids[i]])
		if err != nil {
			panic(err)
		}
		shares = append(shares, ks)
	}

	// A key-path-only output (BIP-86 style tweak) and a spend of it.
	taproot := &frost.Taproot{}
	outputKey, err := shares[0].PublicKey().TaprootOutputKey(*taproot)
	if err != nil {
		panic(err)
	}
	sighash := sha256.Sum256([]byte("BIP-341 signature message"))
	sig, err := sign2of3(shares, sighash[:], taproot)
	if err != nil {
		panic(err)
	}
	fmt.Println("signature bytes:", len(sig))
	fmt.Println("BIP-340 verify:", suite.Verify(outputKey, sighash[:], sig) == nil)
	// Output:
	// signature bytes: 64
	// BIP-340 verify: true
}

// A signer whose share is wrong is named by the coordinator.
func ExampleCulpritError() {
	dealing, _ := frost.Deal(frost.Secp256k1(), nil, 2, 3, rand.Reader)
	shares, _ := dealing.KeyShares()
	dealing.Wipe()
	pub := shares[0].PublicKey()

	pkg := &frost.SigningPackage{Message: []byte("m")}
	n1, c1, _ := shares[0].Commit(rand.Reader)
	n2, c2, _ := shares[1].Commit(rand.Reader)
	pkg.Commitments = []*frost.Commitment{c1, c2}
	z1, _ := shares[0].Sign(n1, pkg)
	// Participant 2 signs a different package with its nonce.
	z2, _ := shares[1].Sign(n2, &frost.SigningPackage{Message: []byte("other"), Commitments: pkg.Commitments})

	_, err := pub.Aggregate(pkg, []*frost.SignatureShare{z1, z2})
	fmt.Println(err)
	// Output: frost: signature share fails its check (party 2)
}
