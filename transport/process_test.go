package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/tss"
)

// Settings the multi-process test passes to its child.
const (
	envPeerFile = "KQ_TEST_PEER_FILE" // written by the parent once it knows both parties
	envListen   = "KQ_TEST_LISTEN"    // listen address with port 0 for the first start
	envSecret   = "KQ_TEST_QUIC_SECRET"
)

// runChild plays the "echo" role: a party whose identity lives in its own
// SoftHSM2 token (created at the first start, loaded after a restart) that
// sends every message back to its sender. It keeps its listen addresses in
// its store directory so that a restart uses the same ports.
func runChild(c proctest.Child) error {
	if c.Role != "echo" {
		return fmt.Errorf("unknown role %q", c.Role)
	}
	ctx := context.Background()
	tok, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: c.Module, TokenLabel: c.TokenLabel, PINSource: "file:" + c.PINFile})
	if err != nil {
		return err
	}
	defer tok.Close()
	id, err := tok.Identity(ctx, "identity")
	if errors.Is(err, hsmshare.ErrKeyNotFound) {
		id, err = tok.CreateIdentity(ctx, "identity")
	}
	if err != nil {
		return err
	}
	self, err := PartyIDFromPublicKey(id.PublicKey())
	if err != nil {
		return err
	}
	fmt.Println("PEER", self)
	var peers []Peer
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if peers, err = LoadPeerFile(os.Getenv(envPeerFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
	}
	listenFile := filepath.Join(c.StoreDir, "listen")
	listen := []string{os.Getenv(envListen)}
	if b, err := os.ReadFile(listenFile); err == nil {
		listen = strings.Fields(string(b))
	}
	n, err := New(Config{Identity: id, Peers: peers, ListenAddrs: listen, QUICSecret: []byte(os.Getenv(envSecret)),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer n.Close()
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	if err := os.WriteFile(listenFile, []byte(strings.Join(addrs, " ")), 0o600); err != nil {
		return err
	}
	fmt.Println("LISTENING", strings.Join(addrs, " "))
	for {
		m, err := n.Receive(ctx)
		if err != nil {
			return err
		}
		m.From, m.To = self, []tss.PartyID{m.From}
		if err := n.Send(ctx, m); err != nil {
			fmt.Println("SEND ERROR", err)
		}
	}
}

// echoRoundTrip sends a message to the echo party until its echo returns.
func echoRoundTrip(ctx context.Context, a *Network, peer tss.PartyID, round uint32) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.Send(sctx, &tss.Message{Type: tss.MsgProtocol, From: a.Self(), To: []tss.PartyID{peer}, Round: round})
		cancel()
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			for {
				m, err := a.Receive(rctx)
				if err != nil {
					break
				}
				if m.From == peer && m.Round == round {
					cancel()
					return nil
				}
			}
			cancel()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no echo of round %d from %s: %w (last send error: %v)", round, peer, ctx.Err(), err)
		}
	}
}

// TestReconnect_AfterPeerKilled runs the other party as a separate OS
// process with its own SoftHSM2 token, kills it with SIGKILL (no goodbye on
// any connection), restarts it on the same port with the identity reloaded
// from its token, and checks that messages flow again.
func TestReconnect_AfterPeerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	for _, tc := range []struct {
		name, listen string
	}{
		{"TCP", "/ip4/127.0.0.1/tcp/0"},
		// With the same QUICSecret across restarts, the restarted party
		// answers packets of the old connection with a stateless reset.
		{"QUIC", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			secret := strings.Repeat("s", 32)
			dir := t.TempDir()
			peerFile := filepath.Join(dir, "peers.json")
			cluster := proctest.New(t)
			spec, err := proctest.SelfSpec("echo", "TestReconnect_AfterPeerKilled", "echo")
			if err != nil {
				t.Fatal(err)
			}
			spec.HSM = true
			spec.Env = append(spec.Env, envPeerFile+"="+peerFile, envListen+"="+tc.listen, envSecret+"="+secret)
			child, err := cluster.Start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			line, err := child.WaitForLine(ctx, "PEER ")
			if err != nil {
				t.Fatal(err)
			}
			childParty := tss.PartyID(strings.TrimPrefix(line, "PEER "))
			childID, err := PeerIDFromParty(childParty)
			if err != nil {
				t.Fatal(err)
			}
			key := softwareKey(t)
			self, _ := NewSignerKey(key)
			a, err := New(Config{Identity: key, Peers: []Peer{{ID: self.PeerID()}, {ID: childID}},
				ListenAddrs: []string{tc.listen}, QUICSecret: []byte(secret), Logger: testLogger(t),
				BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			data, _ := json.Marshal([]Peer{{ID: self.PeerID(), Addrs: a.Addrs()}, {ID: childID}})
			if err := os.WriteFile(peerFile, data, 0o600); err != nil {
				t.Fatal(err)
			}
			line, err = child.WaitForLine(ctx, "LISTENING ")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range strings.Fields(strings.TrimPrefix(line, "LISTENING ")) {
				if err := a.AddAddrs(childParty, ma.StringCast(s)); err != nil {
					t.Fatal(err)
				}
			}
			if err := echoRoundTrip(ctx, a, childParty, 1); err != nil {
				t.Fatal(err)
			}

			if err := child.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := child.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if l, err := child.WaitForLine(ctx, "PEER "); err != nil || tss.PartyID(strings.TrimPrefix(l, "PEER ")) != childParty {
				t.Fatalf("restarted party says %q, %v; want the same identity %s", l, err, childParty)
			}
			if _, err := child.WaitForLine(ctx, "LISTENING "); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := echoRoundTrip(ctx, a, childParty, 2); err != nil {
				t.Fatal(err)
			}
			t.Logf("messages flow again %v after the restarted party listens", time.Since(start))
			if s := a.Stats(); s.Reconnects == 0 {
				t.Fatalf("stats %+v: want a reconnect", s)
			}
		})
	}
}
