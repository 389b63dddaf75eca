package gg20

import (
	"io"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkmta"
)

// q5 bounds Bob's additive mask β' in MtA, as in tss-lib (crypto/mta,
// BobMid: β' ←$ [0, q⁵)).
var q5 = new(big.Int).Exp(secp.Q, big.NewInt(5), nil)

// bobResponse is Bob's side of one MtA run: c_B = c_A^b · Enc_A(β'; ν).
// Alice decrypts α' = a·b + β' (as integers, no reduction mod N_A since
// a·b + β' < q² + q⁵ ≪ N_A); Bob keeps β = −β' mod q. Unlike tss-lib's
// BobMid, the nonce ν is returned: the blame reveal of GG20 §4.3 opens it.
type bobResponse struct {
	c, betaPrm, nonce *big.Int
}

// mtaBob runs Bob's step of MtA (B == nil) or MtAwc (B = b·g) on Alice's
// ciphertext cA under her key pkA, with the proof against her ring-Pedersen
// parameters vA.
func mtaBob(session []byte, pkA *arith.Paillier, vA *arith.RingPedersen, cA, b *big.Int, B *secp.Point, rnd io.Reader) (*bobResponse, *mta.ProofBob, *mta.ProofBobWC, error) {
	betaPrm, err := arith.RandomInt(rnd, q5)
	if err != nil {
		return nil, nil, nil, err
	}
	cBeta, nonce, err := pkA.Encrypt(rnd, betaPrm)
	if err != nil {
		return nil, nil, nil, err
	}
	// c_A^b with the secret b < q: constant time, exponent width that of q.
	cB := pkA.NN.Mul(pkA.NN.Exp(cA, b, secp.Q.BitLen()), cBeta)
	resp := &bobResponse{c: cB, betaPrm: betaPrm, nonce: nonce}
	if B == nil {
		pf, err := zkmta.ProveBob(session, pkA, vA, cA, cB, b, betaPrm, nonce, rnd)
		return resp, pf, nil, err
	}
	pf, err := zkmta.ProveBobWC(session, pkA, vA, cA, cB, b, betaPrm, nonce, B, rnd)
	return resp, nil, pf, err
}
