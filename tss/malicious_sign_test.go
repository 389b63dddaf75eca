package tss_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
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

// GG18 round numbers on our wire (positions in signSpecs).
const signRound1Message1 = 1

func TestSign_ZeroCiphertextDoesNotKillTheSite(t *testing.T) {
	c := newCluster(t, 2, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	honest, cheater := c.Parties[0], c.Parties[1]
	cheater.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol && m.Round == signRound1Message1 {
			m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
				pm.(*signing.SignRound1Message1).C = []byte{0}
			})
		}
		return []*tss.Message{m}
	})
	digest := sha256.Sum256([]byte("C = 0"))
	_, err = honest.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()})
	var ce *tss.CulpritError
	if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheater.ID || !errors.Is(err, tss.ErrBadCiphertext) {
		t.Fatalf("got %v, want a culprit error naming %s for ErrBadCiphertext", err, cheater.ID)
	}
	cheater.Tamper(nil)
	sig, err := honest.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: c.IDs()})
	if err != nil {
		t.Fatalf("signing after the attack: %v", err)
	}
	verifyBoth(t, info.PublicKey, digest[:], sig)
}
