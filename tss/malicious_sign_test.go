package tss_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/keyquorum/keyquorum/tss"
)

// rewriteContent edits the tss-lib message inside one of our protocol
// payloads (2 role bytes, then the serialized Any), whatever its type.
func rewriteContent(t *testing.T, payload []byte, edit func(proto.Message)) []byte {
	t.Helper()
	var a anypb.Any
	if err := proto.Unmarshal(payload[2:], &a); err != nil {
		t.Errorf("decode: %v", err)
		return payload
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Errorf("decode: %v", err)
		return payload
	}
	edit(m)
	b, err := anypb.New(m)
	if err != nil {
		t.Errorf("encode: %v", err)
		return payload
	}
	wire, err := proto.Marshal(b)
	if err != nil {
		t.Errorf("encode: %v", err)
		return payload
	}
	return append(bytes.Clone(payload[:2]), wire...)
}

// editRound returns a tamper function that rewrites the signer's message
// of one round with edit.
func editRound(t *testing.T, round uint32, edit func(proto.Message)) func(*tss.Message) []*tss.Message {
	return func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol && m.Round == round {
			m.Payload = rewriteContent(t, m.Payload, edit)
		}
		return []*tss.Message{m}
	}
}

// TestSign_MaliciousSigner runs GG18 signing with a 2-of-2 key whose second
// party sends one hostile message per round. Each session ends with a
// culprit error naming that party for the check that caught it (the first
// case killed the process before messages were validated: tss-lib
// dereferenced nil in a goroutine of its own), and after each the same
// engines sign correctly.
func TestSign_MaliciousSigner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a keygen and twenty signing sessions")
	}
	c := newCluster(t, 2, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	honest, cheater := c.Parties[0], c.Parties[1]
	tooLong := bytes.Repeat([]byte{0x55}, 33)
	q := secp256k1.S256().N
	p := secp256k1.S256().P
	cases := []struct {
		name   string
		tamper func(*tss.Message) []*tss.Message
		wantIs error
	}{
		{"round 1: Enc(k) = 0", editRound(t, 1, func(m proto.Message) {
			m.(*signing.SignRound1Message1).C = []byte{0}
		}), tss.ErrBadCiphertext},
		{"round 1: commitment to Γ longer than a hash", editRound(t, 2, func(m proto.Message) {
			m.(*signing.SignRound1Message2).Commitment = tooLong
		}), tss.ErrMalformedMessage},
		{"round 2: Bob proof point u with x = p", editRound(t, 3, func(m proto.Message) {
			m.(*signing.SignRound2Message).ProofBobWc[10] = p.Bytes()
		}), tss.ErrPointNotOnCurve},
		{"round 3: δ = q", editRound(t, 4, func(m proto.Message) {
			m.(*signing.SignRound3Message).Theta = q.Bytes()
		}), tss.ErrScalarRange},
		{"round 4: opening of Γ without its y", editRound(t, 5, func(m proto.Message) {
			r4 := m.(*signing.SignRound4Message)
			r4.DeCommitment = r4.DeCommitment[:2]
		}), tss.ErrMalformedMessage},
		{"round 4: Schnorr t = 0", editRound(t, 5, func(m proto.Message) {
			m.(*signing.SignRound4Message).ProofT = []byte{0}
		}), tss.ErrScalarRange},
		{"round 5: commitment to V, A longer than a hash", editRound(t, 6, func(m proto.Message) {
			m.(*signing.SignRound5Message).Commitment = tooLong
		}), tss.ErrMalformedMessage},
		{"round 6: V proof t = 0", editRound(t, 7, func(m proto.Message) {
			m.(*signing.SignRound6Message).VProofT = []byte{0}
		}), tss.ErrScalarRange},
		{"round 7: commitment to U, T longer than a hash", editRound(t, 8, func(m proto.Message) {
			m.(*signing.SignRound7Message).Commitment = tooLong
		}), tss.ErrMalformedMessage},
		{"round 8: U opened as the point (0, 0), committed consistently", openAsIdentity(t), tss.ErrPointNotOnCurve},
		{"round 9: s = q", editRound(t, 10, func(m proto.Message) {
			m.(*signing.SignRound9Message).S = q.Bytes()
		}), tss.ErrScalarRange},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cheater.Tamper(tc.tamper)
			digest := sha256.Sum256([]byte(fmt.Sprintf("attack %d", i)))
			_, err := honest.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()})
			var ce *tss.CulpritError
			if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheater.ID || !errors.Is(err, tc.wantIs) {
				t.Fatalf("got %v, want a culprit error naming %s for %v", err, cheater.ID, tc.wantIs)
			}
			cheater.Tamper(nil)
			digest = sha256.Sum256([]byte(fmt.Sprintf("after attack %d", i)))
			sig, err := honest.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()})
			if err != nil {
				t.Fatalf("signing after the attack: %v", err)
			}
			verifyBoth(t, info.PublicKey, digest[:], sig)
		})
	}
}

// openAsIdentity holds back the signer's round-7 commitment, and in round 8
// opens U as (0, 0) — tss-lib's curve arithmetic treats that as the point at
// infinity — and sends a commitment that matches the new opening first.
func openAsIdentity(t *testing.T) func(*tss.Message) []*tss.Message {
	var held *tss.Message
	return func(m *tss.Message) []*tss.Message {
		if m.Type != tss.MsgProtocol {
			return []*tss.Message{m}
		}
		switch m.Round {
		case 8:
			held = m
			return nil
		case 9:
			var commitment []byte
			m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
				r8 := pm.(*signing.SignRound8Message)
				r8.DeCommitment[1], r8.DeCommitment[2] = []byte{0}, []byte{0}
				commitment = common.SHA512_256i(common.MultiBytesToBigInts(r8.DeCommitment)...).Bytes()
			})
			held.Payload = rewriteContent(t, held.Payload, func(pm proto.Message) {
				pm.(*signing.SignRound7Message).Commitment = commitment
			})
			return []*tss.Message{held, m}
		}
		return []*tss.Message{m}
	}
}
