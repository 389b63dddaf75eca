package gg20_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum/tss/gg20"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
)

// Example runs a presigning session between two signers of a 2-of-3
// committee in one process, then signs a digest in one round. In a real
// deployment each Presigner runs at its own site and the session layer
// carries the messages (as broadcasts) between them.
func Example() {
	keys, err := fixtures.Keys("2-of-3") // tss-lib keygen outputs
	if err != nil {
		panic(err)
	}
	signers := []*big.Int{keys[0].ShareID, keys[2].ShareID}
	var sid [32]byte
	rand.Read(sid[:]) // agreed by the signers

	parties := make([]*gg20.Presigner, 2)
	for i, k := range []int{0, 2} {
		p, err := gg20.NewPresigner(gg20.Config{SessionID: sid, Key: keys[k], Signers: signers})
		if err != nil {
			panic(err)
		}
		parties[i] = p
	}

	// Offline: deliver every broadcast to the other signer until both are done.
	var queue []gg20.Message
	for _, p := range parties {
		out, err := p.Start()
		if err != nil {
			panic(err)
		}
		queue = append(queue, out...)
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		out, err := parties[1-m.From].Handle(m)
		if err != nil {
			panic(err) // a *gg20.CulpritError names a cheating signer
		}
		queue = append(queue, out...)
	}

	// Online: one share per signer, combined by anyone.
	digest := sha256.Sum256([]byte("withdraw 0.1 BTC"))
	var presigs []*gg20.Presignature
	var shares []*big.Int
	for _, p := range parties {
		ps, err := p.Presignature()
		if err != nil {
			panic(err)
		}
		s, err := ps.SignShare(digest[:]) // store ps as used before this in production
		if err != nil {
			panic(err)
		}
		presigs = append(presigs, ps)
		shares = append(shares, s)
	}
	r, s, _, err := presigs[0].Combine(digest[:], shares)
	if err != nil {
		panic(err)
	}

	var rs, ss secp256k1.ModNScalar
	rs.SetByteSlice(r.Bytes())
	ss.SetByteSlice(s.Bytes())
	pub, _ := secp256k1.ParsePubKey(presigs[0].PublicKey())
	fmt.Println("same presignature ID:", presigs[0].ID() == presigs[1].ID())
	fmt.Println("signature valid:", ecdsa.NewSignature(&rs, &ss).Verify(digest[:], pub))
	// Output:
	// same presignature ID: true
	// signature valid: true
}
