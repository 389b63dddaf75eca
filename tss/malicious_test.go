package tss_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss"
)

// keygenRound numbers of tss-lib keygen messages on our wire.
const (
	kgRound1  = 1 // KGRound1Message, broadcast
	kgRound2a = 2 // KGRound2Message1, point to point
	kgRound2b = 3 // KGRound2Message2, broadcast (VSS decommitment)
)

// rewriteKGRound2Message2 edits the tss-lib message inside one of our
// protocol payloads (2 role bytes, then the serialized Any).
func rewriteKGRound2Message2(t *testing.T, payload []byte, edit func(*keygen.KGRound2Message2)) []byte {
	var a anypb.Any
	if err := proto.Unmarshal(payload[2:], &a); err != nil {
		t.Errorf("decode: %v", err)
		return payload
	}
	var m keygen.KGRound2Message2
	if err := a.UnmarshalTo(&m); err != nil {
		t.Errorf("decode: %v", err)
		return payload
	}
	edit(&m)
	b, err := anypb.New(&m)
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

func TestKeygen_MaliciousParty(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several keygens")
	}
	short := func(cfg *tss.Config) { cfg.RoundTimeout = 20 * time.Second; cfg.JoinTimeout = 10 * time.Second }
	cases := []struct {
		name    string
		tamper  func(t *testing.T, m *tss.Message) []*tss.Message
		wantIs  error // the honest initiator's error must match this sentinel
		timeout bool  // or be a round timeout naming the cheater
	}{
		{
			name: "truncated payload",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound1 {
					m.Payload = m.Payload[:len(m.Payload)/2]
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMalformedMessage,
		},
		{
			name: "short VSS vector",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2b {
					m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
						k.DeCommitment = k.DeCommitment[:len(k.DeCommitment)-2]
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrVSSLength,
		},
		{
			name: "long VSS vector",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2b {
					m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
						k.DeCommitment = append(k.DeCommitment, k.DeCommitment[1], k.DeCommitment[2])
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrVSSLength,
		},
		{
			name: "modproof W = 0",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2b {
					m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
						k.ModProof[0] = []byte{0}
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrProofRange,
		},
		{
			// W = 2p for a factor p of the cheater's own N: 0 < W < N and
			// Jacobi(W, N) = 0, so only gcd(W, N) = 1 refuses it.
			name:   "modproof W a multiple of a factor of N",
			tamper: modProofWithFactor(),
			wantIs: tss.ErrModProofGCD,
		},
		{
			// tss-lib v2.0.2 computes Jacobi symbols modulo N in a goroutine
			// when it verifies the modulus proof, and panics for an even N.
			// An odd W keeps gcd(W, N) = 1, so only the parity check stops it.
			name: "even Paillier N",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound1 {
					m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
						k := pm.(*keygen.KGRound1Message)
						k.PaillierN = new(big.Int).SetBit(new(big.Int).SetBytes(k.PaillierN), 0, 0).Bytes()
					})
				}
				if m.Type == tss.MsgProtocol && m.Round == kgRound2b {
					m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
						k.ModProof[0] = new(big.Int).SetBit(new(big.Int).SetBytes(k.ModProof[0]), 0, 1).Bytes()
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrBadModulus,
		},
		{
			// tss-lib v2.0.2 reads a DLN proof's length prefix with Int64 and
			// slices with it in a goroutine: 2⁶³ turns negative and panics.
			name: "DLN proof length prefix 2^63",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound1 {
					m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
						pm.(*keygen.KGRound1Message).Dlnproof_1[0] = []byte{0x80, 0, 0, 0, 0, 0, 0, 0}
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMissingProof,
		},
		{
			name: "no-small-factor proof missing",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
						pm.(*keygen.KGRound2Message1).FacProof = nil
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMissingProof,
		},
		{
			// Every value in range, one changed by 1: only tss-lib's
			// verification of the proof refuses it.
			name: "no-small-factor proof forged",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.Payload = rewriteContent(t, m.Payload, func(pm proto.Message) {
						fp := pm.(*keygen.KGRound2Message1).FacProof
						fp[10] = new(big.Int).Add(new(big.Int).SetBytes(fp[10]), big.NewInt(1)).Bytes()
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrProtocol,
		},
		{
			name: "oversized field",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2b {
					m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
						k.DeCommitment[1] = bytes.Repeat([]byte{0xff}, 64<<10)
					})
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrFieldTooLarge,
		},
		{
			name: "wrong round number",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.Round = kgRound2b + 1
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMalformedMessage,
		},
		{
			name: "wrong delivery mode",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.Broadcast = true
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMalformedMessage,
		},
		{
			name: "claims another role",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound1 {
					m.Payload = append([]byte{2}, m.Payload[1:]...) // "from the new committee"
				}
				return []*tss.Message{m}
			},
			wantIs: tss.ErrMalformedMessage,
		},
		{
			name: "claims another sender",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.From = "somebody-else"
				}
				return []*tss.Message{m}
			},
			timeout: true,
		},
		{
			name: "wrong session ID",
			tamper: func(t *testing.T, m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == kgRound2a {
					m.Session[0] ^= 1
				}
				return []*tss.Message{m}
			},
			timeout: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, short)
			cheater := c.Parties[2]
			c.FeedPreParams(1)
			cheater.Tamper(func(m *tss.Message) []*tss.Message { return tc.tamper(t, m) })
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			_, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
			if err == nil {
				t.Fatal("keygen with a cheater succeeded")
			}
			if tc.timeout {
				// The honest initiator either times out itself or is told
				// by the cheater that it gave up first; either way the
				// stalled party it names is the cheater.
				var te *tss.RoundTimeoutError
				var ae *tss.AbortedError
				switch {
				case errors.As(err, &te):
					if len(te.Parties) != 1 || te.Parties[0] != cheater.ID {
						t.Fatalf("timeout names %v, want %s", te.Parties, cheater.ID)
					}
				case errors.As(err, &ae):
					if len(ae.Waiting) != 1 || ae.Waiting[0] != cheater.ID {
						t.Fatalf("abort while waiting for %v, want %s", ae.Waiting, cheater.ID)
					}
				default:
					t.Fatalf("got %v, want a round timeout naming %s", err, cheater.ID)
				}
			} else {
				var ce *tss.CulpritError
				if !errors.As(err, &ce) && !errors.As(err, new(*tss.AbortedError)) {
					t.Fatalf("got %T %v, want a culprit error", err, err)
				}
				if ce != nil && (len(ce.Parties) != 1 || ce.Parties[0] != cheater.ID) {
					t.Fatalf("blamed %v, want %s", ce.Parties, cheater.ID)
				}
				if ce != nil && !errors.Is(err, tc.wantIs) {
					t.Fatalf("got %v, want %v", err, tc.wantIs)
				}
				if ce == nil && !strings.Contains(err.Error(), string(cheater.ID)) {
					t.Fatalf("error %v does not name %s", err, cheater.ID)
				}
			}
			t.Logf("initiator's error: %v", err)
			for _, p := range c.Parties[:2] {
				if ids, _ := p.Store.List(ctx, "share"); len(ids) != 0 {
					t.Fatalf("%s stored a share after a failed keygen", p.ID)
				}
			}
		})
	}
}

// modProofWithFactor returns a tamper function that remembers the
// cheater's Paillier N from its round-1 message, finds the fixture
// pre-parameters it came from, and sets its modulus proof's W to 2p.
func modProofWithFactor() func(t *testing.T, m *tss.Message) []*tss.Message {
	var n *big.Int
	return func(t *testing.T, m *tss.Message) []*tss.Message {
		if m.Type != tss.MsgProtocol {
			return []*tss.Message{m}
		}
		switch m.Round {
		case kgRound1:
			rewriteContent(t, m.Payload, func(pm proto.Message) {
				n = new(big.Int).SetBytes(pm.(*keygen.KGRound1Message).PaillierN)
			})
		case kgRound2b:
			var p *big.Int
			for i := 0; i < fixtures.PreParamsCount(); i++ {
				pp, err := fixtures.PreParams(i)
				if err != nil {
					t.Error(err)
					break
				}
				if pp.PaillierSK.N.Cmp(n) == 0 {
					p = pp.PaillierSK.P
					break
				}
			}
			if p == nil {
				t.Error("the cheater's Paillier key is not a fixture")
				break
			}
			m.Payload = rewriteKGRound2Message2(t, m.Payload, func(k *keygen.KGRound2Message2) {
				k.ModProof[0] = new(big.Int).Lsh(p, 1).Bytes()
			})
		}
		return []*tss.Message{m}
	}
}
