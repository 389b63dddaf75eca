package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"

	"github.com/keyquorum/keyquorum/tss"
)

// Resharing round numbers on our wire (positions in tss-lib's message
// sequence).
const (
	dgRound1  = 1 // DGRound1Message, old → new
	dgRound2a = 2 // DGRound2Message1, new → new
	dgRound3b = 5 // DGRound3Message2, old → new
	dgRound4a = 6 // DGRound4Message1, new → new, point to point
)

// TestReshare_MaliciousMember reshares a 2-of-2 key to the same two sites
// while the second sends one hostile resharing message per attempt, in
// its old-committee or its new-committee role. Each attempt ends with a
// culprit error naming it for the check that caught it; the key still
// signs with its old shares after each, and a clean reshare succeeds at
// the end.
func TestReshare_MaliciousMember(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a keygen, five reshares and signing sessions")
	}
	c := newCluster(t, 2, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	honest, cheater := c.Parties[0], c.Parties[1]
	edit := func(round uint32, f func(proto.Message)) func(*tss.Message) []*tss.Message {
		return editRound(t, round, f)
	}
	cases := []struct {
		name   string
		tamper func(*tss.Message) []*tss.Message
		wantIs error
	}{
		{
			// tss-lib v2.0.2 compares each old member's key with member 0's
			// instead of with the others (upstream SRC-2026-1155).
			name: "old member announces another public key",
			tamper: edit(dgRound1, func(m proto.Message) {
				g := secp256k1.S256()
				r := m.(*resharing.DGRound1Message)
				r.EcdsaPubX, r.EcdsaPubY = g.Gx.Bytes(), g.Gy.Bytes()
			}),
			wantIs: tss.ErrWrongPublicKey,
		},
		{
			// tss-lib v2.0.2 verifies the modulus proof in a goroutine and
			// panics computing a Jacobi symbol modulo an even N. An odd W
			// keeps gcd(W, N) = 1, so only the parity check stops it.
			name: "new member announces an even Paillier N",
			tamper: edit(dgRound2a, func(m proto.Message) {
				r := m.(*resharing.DGRound2Message1)
				r.PaillierN = new(big.Int).SetBit(new(big.Int).SetBytes(r.PaillierN), 0, 0).Bytes()
				r.ModProof[0] = new(big.Int).SetBit(new(big.Int).SetBytes(r.ModProof[0]), 0, 1).Bytes()
			}),
			wantIs: tss.ErrBadModulus,
		},
		{
			name: "old member opens a short VSS vector",
			tamper: edit(dgRound3b, func(m proto.Message) {
				r := m.(*resharing.DGRound3Message2)
				r.VDecommitment = r.VDecommitment[:len(r.VDecommitment)-2]
			}),
			wantIs: tss.ErrVSSLength,
		},
		{
			// tss-lib v2.0.2's ValidateBasic lets a missing proof through.
			name: "new member sends no no-small-factor proof",
			tamper: edit(dgRound4a, func(m proto.Message) {
				m.(*resharing.DGRound4Message1).FacProof = nil
			}),
			wantIs: tss.ErrMissingProof,
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.FeedPreParams(1)
			cheater.Tamper(tc.tamper)
			_, err := honest.Engine.Reshare(ctx, tss.ReshareRequest{KeyID: info.ID, NewParties: c.IDs(), NewThreshold: 2})
			cheater.Tamper(nil)
			var ce *tss.CulpritError
			if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheater.ID || !errors.Is(err, tc.wantIs) {
				t.Fatalf("got %v, want a culprit error naming %s for %v", err, cheater.ID, tc.wantIs)
			}
			digest := sha256.Sum256([]byte(fmt.Sprintf("after reshare attack %d", i)))
			sig, err := honest.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()})
			if err != nil {
				t.Fatalf("signing after the attack: %v", err)
			}
			verifyBoth(t, info.PublicKey, digest[:], sig)
		})
	}
	c.FeedPreParams(1)
	newInfo, err := honest.Engine.Reshare(ctx, tss.ReshareRequest{KeyID: info.ID, NewParties: c.IDs(), NewThreshold: 2})
	if err != nil {
		t.Fatalf("clean reshare after the attacks: %v", err)
	}
	if newInfo.Epoch != 2 || string(newInfo.PublicKey) != string(info.PublicKey) {
		t.Fatalf("unexpected key after reshare: %+v", newInfo)
	}
}
