package transport

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePeers(t *testing.T) {
	ids := committee(t, signers(t, 2))
	a, b := ids[0].ID.String(), ids[1].ID.String()
	good := `[
	  {"peer_id": "` + a + `", "name": "Zürich vault", "addrs": ["/ip4/192.0.2.7/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1/p2p/` + a + `"]},
	  {"peer_id": "` + b + `", "addrs": ["/dns4/site-b.example/tcp/4001", "/ip6/::1/udp/9/quic-v1"]}
	]`
	peers, err := ParsePeers([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 || peers[0].ID != ids[0].ID || peers[1].ID != ids[1].ID || peers[0].Name != "Zürich vault" || peers[1].Name != "" {
		t.Fatalf("parsed %v", peers)
	}
	if got := peers[0].Addrs[1].String(); got != "/ip4/192.0.2.7/udp/4001/quic-v1" {
		t.Fatalf("own /p2p suffix not removed: %s", got)
	}
	// MarshalJSON writes what ParsePeers reads.
	out, err := json.Marshal(peers)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParsePeers(out)
	if err != nil || len(again) != 2 || again[1].Addrs[0].String() != "/dns4/site-b.example/tcp/4001" || again[0].Name != "Zürich vault" {
		t.Fatalf("re-parse of %s: %v, %v", out, again, err)
	}

	bad := []struct {
		name, json, detail string
	}{
		{"not JSON", `peers: a`, "not a JSON array"},
		{"object instead of list", `{"peer_id": "` + a + `"}`, "not a JSON array"},
		{"empty list", `[]`, "empty"},
		{"trailing data", `[{"peer_id": "` + a + `"}] []`, "trailing data"},
		{"unknown key", `[{"peer_id": "` + a + `", "address": []}]`, "unknown field"},
		{"missing peer_id", `[{"addrs": []}]`, "peer 1 has no peer_id"},
		{"bad peer_id", `[{"peer_id": "QmNotAPeer"}]`, "does not parse"},
		{"duplicate", `[{"peer_id": "` + a + `"}, {"peer_id": "` + a + `"}]`, "listed twice (entries 1 and 2)"},
		{"bad multiaddr", `[{"peer_id": "` + a + `", "addrs": ["/ip4/999.0.0.1/tcp/1"]}]`, "does not parse"},
		{"websocket", `[{"peer_id": "` + a + `", "addrs": ["/ip4/192.0.2.1/tcp/1/ws"]}]`, "/udp/PORT/quic-v1"},
		{"relay", `[{"peer_id": "` + a + `", "addrs": ["/ip4/192.0.2.1/tcp/1/p2p/` + b + `/p2p-circuit"]}]`, "/tcp/PORT"},
		{"old QUIC draft", `[{"peer_id": "` + a + `", "addrs": ["/ip4/192.0.2.1/udp/1/quic"]}]`, "quic-v1"},
		{"another peer's /p2p", `[{"peer_id": "` + a + `", "addrs": ["/ip4/192.0.2.1/tcp/1/p2p/` + b + `"]}]`, "not the entry's peer"},
		{"no transport", `[{"peer_id": "` + a + `", "addrs": ["/ip4/192.0.2.1"]}]`, "/tcp/PORT"},
		{"name with a newline", `[{"peer_id": "` + a + `", "name": "site-a\nWARNING forged"}]`, "control"},
		{"name with an escape", `[{"peer_id": "` + a + `", "name": "site-\u001b[2Ja"}]`, "control"},
		{"long name", `[{"peer_id": "` + a + `", "name": "` + strings.Repeat("n", MaxPeerNameLen+1) + `"}]`, "longer than"},
		{"padded name", `[{"peer_id": "` + a + `", "name": " site-a"}]`, "spaces"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePeers([]byte(tc.json))
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("got %v, want ErrInvalidConfig mentioning %q", err, tc.detail)
			}
		})
	}
}

func TestLoadPeerFile(t *testing.T) {
	dir := t.TempDir()
	ids := committee(t, signers(t, 1))
	path := filepath.Join(dir, "peers.json")
	os.WriteFile(path, []byte(`[{"peer_id": "`+ids[0].ID.String()+`", "addrs": ["/ip4/127.0.0.1/tcp/4001"]}]`), 0o600)
	peers, err := LoadPeerFile(path)
	if err != nil || len(peers) != 1 {
		t.Fatalf("LoadPeerFile: %v, %v", peers, err)
	}
	if _, err := LoadPeerFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: got %v, want os.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, make([]byte, MaxPeerFileSize+1), 0o600)
	if _, err := LoadPeerFile(big); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("oversized file: got %v, want ErrInvalidConfig", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[]`), 0o600)
	if _, err := LoadPeerFile(bad); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: got %v, want ErrInvalidConfig naming the file", err)
	}
}

func TestNew_RefusesBadConfig(t *testing.T) {
	ss := signers(t, 2)
	peers := committee(t, ss)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no identity", Config{Peers: peers}, ErrInvalidConfig},
		{"only self", Config{Identity: ss[0], Peers: peers[:1]}, ErrInvalidConfig},
		{"no peers", Config{Identity: ss[0]}, ErrInvalidConfig},
		{"duplicate peer", Config{Identity: ss[0], Peers: []Peer{peers[1], peers[1]}}, ErrInvalidConfig},
		{"empty peer ID", Config{Identity: ss[0], Peers: []Peer{{}}}, ErrInvalidConfig},
		{"bad listen address", Config{Identity: ss[0], Peers: peers, ListenAddrs: []string{"tcp:4001"}}, ErrInvalidConfig},
		{"unknown security", Config{Identity: ss[0], Peers: peers, Security: []SecurityProtocol{"ssl"}}, ErrInvalidConfig},
		{"security twice", Config{Identity: ss[0], Peers: peers, Security: []SecurityProtocol{SecurityTLS, SecurityTLS}}, ErrInvalidConfig},
		{"short QUIC secret", Config{Identity: ss[0], Peers: peers, QUICSecret: []byte("short")}, ErrInvalidConfig},
		{"negative timeout", Config{Identity: ss[0], Peers: peers, DialTimeout: -1}, ErrInvalidConfig},
		{"backoff inverted", Config{Identity: ss[0], Peers: peers, BackoffMin: 2e9, BackoffMax: 1e9}, ErrInvalidConfig},
		{"negative queue", Config{Identity: ss[0], Peers: peers, SendQueueSize: -1}, ErrInvalidConfig},
		{"inbox bytes too small", Config{Identity: ss[0], Peers: peers, InboxBytes: 1 << 20}, ErrInvalidConfig},
		{"P-384 identity", Config{Identity: p384Key(t), Peers: peers}, ErrUnsupportedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg)
			if err == nil {
				n.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
