package transport

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/softhsm"
	"github.com/keyquorum/keyquorum/tss"
)

// hsmIdentities creates n SoftHSM2 tokens (one per party, all in one token
// directory, as the module is loaded once per process), opens them and
// creates an identity key in each.
func hsmIdentities(t *testing.T, n int) []*hsmshare.Identity {
	t.Helper()
	dir := softhsm.NewDir(t)
	toks := dir.NewTokens(t, n)
	ctx := context.Background()
	ids := make([]*hsmshare.Identity, n)
	for i, tok := range toks {
		tk, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: dir.Module, TokenLabel: tok.Label, PIN: tok.PIN})
		if err != nil {
			t.Fatalf("open %s: %v", tok, err)
		}
		// Registered before the networks' cleanups, so it runs after them.
		t.Cleanup(func() { tk.Close() })
		ids[i], err = tk.CreateIdentity(ctx, "keyquorum-identity")
		if err != nil {
			t.Fatalf("identity on %s: %v", tok, err)
		}
	}
	return ids
}

// TestNetwork_HSMIdentities runs three parties whose libp2p identities are
// P-256 keys inside their own SoftHSM2 tokens, over TCP+TLS, TCP+Noise
// (which signs with the token on every handshake) and QUIC; then a fourth
// party with its own token but outside the committee is refused.
func TestNetwork_HSMIdentities(t *testing.T) {
	ids := hsmIdentities(t, 4)
	members := []crypto.Signer{ids[0], ids[1], ids[2]}
	for i, id := range ids {
		party, err := PartyIDFromPublicKey(id.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewSignerKey(id)
		if err != nil {
			t.Fatal(err)
		}
		if k.PartyID() != party {
			t.Fatalf("identity %d: SignerKey party %s, public key gives %s", i, k.PartyID(), party)
		}
	}
	for _, tc := range []struct {
		name string
		mode listenMode
		sec  []SecurityProtocol
		kex  string
	}{
		{"TCP+TLS", listenTCP, []SecurityProtocol{SecurityTLS}, "X25519MLKEM768"},
		{"TCP+Noise", listenTCP, []SecurityProtocol{SecurityNoise}, "X25519"},
		{"QUIC", listenQUIC, nil, "X25519MLKEM768"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nets := startNetworks(t, members, tc.mode, func(_ int, c *Config) { c.Security = tc.sec })
			session := tss.SessionID{1, 2, 3}
			for i, n := range nets {
				var to []tss.PartyID
				for j, o := range nets {
					if j != i {
						to = append(to, o.Self())
					}
				}
				mustSend(t, n, &tss.Message{Session: session, Type: tss.MsgProtocol, From: n.Self(), To: to,
					Broadcast: true, Round: 1, Payload: []byte{byte(i)}})
			}
			for i, n := range nets {
				var from []tss.PartyID
				for range 2 {
					m := mustReceive(t, n)
					if m.Session != session || int(m.Payload[0]) == i {
						t.Fatalf("party %d received %+v", i, m)
					}
					if m.From != nets[m.Payload[0]].Self() {
						t.Fatalf("party %d: message from party %d arrived as from %s", i, m.Payload[0], m.From)
					}
					from = append(from, m.From)
				}
				slices.Sort(from)
				if c := slices.Compact(from); len(c) != 2 {
					t.Fatalf("party %d heard twice from one peer: %v", i, from)
				}
				if s, ok := n.ConnSecurity(nets[(i+1)%3].Self()); !ok || s.KeyExchange != tc.kex {
					t.Fatalf("party %d: connection security %+v, want key exchange %s", i, s, tc.kex)
				}
			}
		})
	}

	t.Run("StrangerWithItsOwnTokenIsRefused", func(t *testing.T) {
		nets := startNetworks(t, members, listenTCP, nil)
		a, b := nets[0], nets[1]
		stranger, err := New(Config{Identity: ids[3], Peers: committee(t, []crypto.Signer{ids[0], ids[1], ids[2], ids[3]}), ListenAddrs: listenTCP.addrs(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stranger.Close() })
		if err := stranger.AddAddrs(a.Self(), a.Addrs()...); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = stranger.Send(ctx, &tss.Message{Type: tss.MsgPropose, From: stranger.Self(), To: []tss.PartyID{a.Self()}, Round: 1})
		var ue *tss.UnreachableError
		if err != nil && !errors.As(err, &ue) {
			t.Fatalf("stranger's Send: %v", err)
		}
		eventually(t, "a refuses the stranger", func() bool { return a.Stats().ConnectionsRefused > 0 })
		mustSend(t, b, message(b, 2, "member", a))
		if m := mustReceive(t, a); m.From != b.Self() {
			t.Fatalf("a received from %s, want %s", m.From, b.Self())
		}
		expectNothing(t, a)
	})
}
