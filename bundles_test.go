package keyquorum_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum"
)

func newBundlePeer(t *testing.T) keyquorum.BundlePeer {
	t.Helper()
	id, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyquorum.BundlePeer{Identity: &id.PublicKey, HPKE: h.PublicKey()}
}

// TestBundlePeer_JSONRoundTrip: an identity file reads back as the same
// keys and peer ID.
func TestBundlePeer_JSONRoundTrip(t *testing.T) {
	p := newBundlePeer(t)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q keyquorum.BundlePeer
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !q.Identity.Equal(p.Identity) || !q.HPKE.Equal(p.HPKE) {
		t.Fatalf("read back other keys from %s", b)
	}
	pid, _ := p.PartyID()
	if !strings.Contains(string(b), string(pid)) {
		t.Fatalf("%s does not name peer %s", b, pid)
	}
}

// TestBundlePeer_RejectsBadIdentityFiles: a file mixed from two sites, with
// a point off the curve, another version or no keys is refused with
// ErrBadBundleIdentity.
func TestBundlePeer_RejectsBadIdentityFiles(t *testing.T) {
	p, other := newBundlePeer(t), newBundlePeer(t)
	enc := func(v keyquorum.BundlePeer) map[string]any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	good, o := enc(p), enc(other)
	for name, change := range map[string]func(m map[string]any){
		"OtherSitesPeerID":   func(m map[string]any) { m["peer_id"] = o["peer_id"] },
		"OtherSitesIdentity": func(m map[string]any) { m["identity_public_key"] = o["identity_public_key"] },
		"OffCurveHPKE":       func(m map[string]any) { m["hpke_public_key"] = "04" + strings.Repeat("11", 64) },
		"NotHex":             func(m map[string]any) { m["hpke_public_key"] = "zz" },
		"NewerVersion":       func(m map[string]any) { m["v"] = 2 },
		"NoKeys":             func(m map[string]any) { delete(m, "identity_public_key"); delete(m, "hpke_public_key") },
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			change(m)
			b, _ := json.Marshal(m)
			var q keyquorum.BundlePeer
			if err := json.Unmarshal(b, &q); !errors.Is(err, keyquorum.ErrBadBundleIdentity) {
				t.Fatalf("%s: got %v, want ErrBadBundleIdentity", b, err)
			}
		})
	}
}

// TestOpen_BundlePeersNeedACommittee: bundle peers without a committee ID
// is a configuration error, found before the token is opened.
func TestOpen_BundlePeersNeedACommittee(t *testing.T) {
	_, err := keyquorum.Open(context.Background(), keyquorum.Config{StoreDir: t.TempDir(),
		BundlePeers: []keyquorum.BundlePeer{newBundlePeer(t)}})
	if !errors.Is(err, keyquorum.ErrInvalidConfig) || !strings.Contains(err.Error(), "BundleCommittee") {
		t.Fatalf("got %v, want ErrInvalidConfig naming BundleCommittee", err)
	}
}

// FuzzBundlePeerJSON: whatever an identity file holds, reading it returns
// an error or a peer whose keys are P-256 points and whose JSON reads back
// the same; it never panics.
func FuzzBundlePeerJSON(f *testing.F) {
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h, _ := ecdh.P256().GenerateKey(rand.Reader)
	good, _ := json.Marshal(keyquorum.BundlePeer{Identity: &id.PublicKey, HPKE: h.PublicKey()})
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"peer_id":"","identity_public_key":"04","hpke_public_key":"04"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p keyquorum.BundlePeer
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a peer that was read does not encode: %v", err)
		}
		var q keyquorum.BundlePeer
		if err := json.Unmarshal(again, &q); err != nil || !q.Identity.Equal(p.Identity) || !q.HPKE.Equal(p.HPKE) {
			t.Fatalf("%s does not read back: %v", again, err)
		}
	})
}
