package transport

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/keyquorum/keyquorum/tss"
)

func TestSignerKey_SignaturesVerifyAsLibp2pECDSA(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewSignerKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	// libp2p's own key for the same private key: same public key, same ID.
	ref, refPub, err := lcrypto.ECDSAKeyPairFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !k.GetPublic().Equals(refPub) {
		t.Fatal("public key differs from libp2p's ECDSA key")
	}
	refID, err := peer.IDFromPrivateKey(ref)
	if err != nil {
		t.Fatal(err)
	}
	if k.PeerID() != refID {
		t.Fatalf("peer ID %s, libp2p derives %s", k.PeerID(), refID)
	}
	if k.Type() != pb.KeyType_ECDSA {
		t.Fatalf("Type %v, want ECDSA", k.Type())
	}

	data := []byte("libp2p-tls-handshake:some certificate key")
	sig, err := k.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	// A remote peer parses the key from its wire form and verifies.
	wire, err := lcrypto.MarshalPublicKey(k.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	remote, err := lcrypto.UnmarshalPublicKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := remote.Verify(data, sig); err != nil || !ok {
		t.Fatalf("remote verification: ok=%v err=%v", ok, err)
	}
	if ok, _ := remote.Verify([]byte("other data"), sig); ok {
		t.Fatal("signature verified over different data")
	}
	// And libp2p's own key's signatures verify under ours: same format.
	refSig, err := ref.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.GetPublic().Verify(data, refSig); err != nil || !ok {
		t.Fatalf("libp2p signature under SignerKey's public key: ok=%v err=%v", ok, err)
	}
}

func TestSignerKey_RawIsNotExportable(t *testing.T) {
	k, err := NewSignerKey(softwareKey(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.Raw()
	if !errors.Is(err, ErrKeyNotExportable) || raw != nil {
		t.Fatalf("Raw: got %x, %v; want nil, ErrKeyNotExportable", raw, err)
	}
	if _, err := lcrypto.MarshalPrivateKey(k); !errors.Is(err, ErrKeyNotExportable) {
		t.Fatalf("MarshalPrivateKey: got %v, want ErrKeyNotExportable", err)
	}
}

func TestNewSignerKey_RejectsOtherKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: bigOne(), Y: bigOne()}
	tests := []struct {
		name   string
		signer crypto.Signer
	}{
		{"nil", nil},
		{"P-384", p384},
		{"Ed25519", ed},
		{"nil public key", fixedPublic{pub: (*ecdsa.PublicKey)(nil)}},
		{"point off the curve", fixedPublic{pub: offCurve}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSignerKey(tc.signer); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("got %v, want ErrUnsupportedKey", err)
			}
		})
	}
}

// fixedPublic is a signer with a chosen public key whose Sign delegates to
// an optional function.
type fixedPublic struct {
	pub  crypto.PublicKey
	sign func(digest []byte) ([]byte, error)
}

func (f fixedPublic) Public() crypto.PublicKey { return f.pub }
func (f fixedPublic) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return f.sign(digest)
}

func TestSignerKey_SignerFaultsAreErrors(t *testing.T) {
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokenDown := errors.New("token removed")
	tests := []struct {
		name string
		sign func([]byte) ([]byte, error)
		want error
	}{
		{"another key signs", func(d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, b, d) }, ErrBadSignature},
		{"raw r||s instead of DER", func(d []byte) ([]byte, error) {
			der, err := ecdsa.SignASN1(rand.Reader, a, d)
			return der[len(der)-64:], err
		}, ErrBadSignature},
		{"token error", func([]byte) ([]byte, error) { return nil, tokenDown }, tokenDown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewSignerKey(fixedPublic{pub: &a.PublicKey, sign: tc.sign})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Sign([]byte("x")); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("panicking signer", func(t *testing.T) {
		k, err := NewSignerKey(fixedPublic{pub: &a.PublicKey, sign: func([]byte) ([]byte, error) { panic("boom") }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sign([]byte("x")); err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("got %v, want an error reporting the panic", err)
		}
	})
}

func TestSignerKey_SignsSHA256OfData(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var gotDigest []byte
	var gotOpts crypto.SignerOpts
	k, err := NewSignerKey(recordingSigner{priv, &gotDigest, &gotOpts})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("noise-libp2p-static-key:0123")
	if _, err := k.Sign(data); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if !slices.Equal(gotDigest, want[:]) || gotOpts.HashFunc() != crypto.SHA256 {
		t.Fatalf("signer got digest %x with %v, want SHA-256 %x", gotDigest, gotOpts.HashFunc(), want)
	}
}

type recordingSigner struct {
	*ecdsa.PrivateKey
	digest *[]byte
	opts   *crypto.SignerOpts
}

func (r recordingSigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	*r.digest, *r.opts = slices.Clone(digest), opts
	return r.PrivateKey.Sign(rnd, digest, opts)
}

func TestSignerKey_Equals(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k1, _ := NewSignerKey(priv)
	k2, _ := NewSignerKey(priv)
	other, _ := NewSignerKey(softwareKey(t))
	ref, refPub, _ := lcrypto.ECDSAKeyPairFromKey(priv)
	switch {
	case !k1.Equals(k2):
		t.Error("two wrappers of one key differ")
	case !k1.Equals(ref):
		t.Error("differs from libp2p's key for the same private key")
	case k1.Equals(other):
		t.Error("equals another key")
	case k1.Equals(refPub):
		t.Error("a private key equals a public key")
	case k1.Equals(nil):
		t.Error("equals nil")
	}
}

func TestPartyIDs(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, err := PeerIDFromPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	party, err := PartyIDFromPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := party.Validate(); err != nil {
		t.Fatalf("party ID %q is not a valid tss.PartyID: %v", party, err)
	}
	if string(party) != id.String() || !strings.HasPrefix(string(party), "Qm") {
		t.Fatalf("party ID %q, peer ID %s: want the base58 SHA-256 form", party, id)
	}
	back, err := PeerIDFromParty(party)
	if err != nil || back != id {
		t.Fatalf("PeerIDFromParty: %s, %v; want %s", back, err, id)
	}
	if _, err := PeerIDFromParty(tss.PartyID("alice")); err == nil {
		t.Fatal("PeerIDFromParty accepted a party ID that is no peer ID")
	}
	if _, err := PeerIDFromPublicKey(nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("nil key: got %v, want ErrUnsupportedKey", err)
	}
}

// callRecorder wraps the host key and records, for every call libp2p makes,
// the method and the first go-libp2p function on the stack.
type callRecorder struct {
	lcrypto.PrivKey
	mu    sync.Mutex
	calls map[string]int // "Method <- caller"
	rawOK int            // Raw calls that did not fail
}

func (c *callRecorder) note(method string) {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	caller := "?"
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, "github.com/libp2p/go-libp2p/") {
			caller = f.Function[strings.LastIndex(f.Function, "/")+1:]
			break
		}
		if !more {
			break
		}
	}
	c.mu.Lock()
	c.calls[method+" <- "+caller]++
	c.mu.Unlock()
}

func (c *callRecorder) Sign(d []byte) ([]byte, error) { c.note("Sign"); return c.PrivKey.Sign(d) }
func (c *callRecorder) GetPublic() lcrypto.PubKey     { c.note("GetPublic"); return c.PrivKey.GetPublic() }
func (c *callRecorder) Type() pb.KeyType              { c.note("Type"); return c.PrivKey.Type() }
func (c *callRecorder) Equals(o lcrypto.Key) bool     { c.note("Equals"); return c.PrivKey.Equals(o) }
func (c *callRecorder) Raw() ([]byte, error) {
	c.note("Raw")
	b, err := c.PrivKey.Raw()
	if err == nil {
		c.mu.Lock()
		c.rawOK++
		c.mu.Unlock()
	}
	return b, err
}

func (c *callRecorder) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// TestSignerKey_Calls runs hosts over TCP+TLS, TCP+Noise and QUIC and
// records which methods go-libp2p calls on the identity key, and from
// where. It pins the table in SignerKey's doc comment: if a go-libp2p
// upgrade starts calling the key from elsewhere (Raw in particular), this
// test fails and the new caller must be reviewed.
func TestSignerKey_Calls(t *testing.T) {
	allowed := map[string]bool{
		// Peer ID and peerstore (config/config.go, core/peer/peer.go).
		"GetPublic <- config.(*Config).makeSwarm": true,
		"GetPublic <- peer.IDFromPrivateKey":      true,
		"GetPublic <- peer.ID.MatchesPrivateKey":  true,
		// The TLS certificate extension, once per TLS identity
		// (p2p/security/tls/crypto.go).
		"GetPublic <- tls.GenerateSignedExtension": true,
		"Sign <- tls.GenerateSignedExtension":      true,
		// Every Noise handshake (p2p/security/noise/handshake.go).
		"GetPublic <- noise.(*secureSession).LocalPublicKey":           true,
		"Sign <- noise.(*secureSession).generateHandshakePayload":      true,
		"GetPublic <- noise.(*secureSession).generateHandshakePayload": true,
		// The signed peer record (core/record/envelope.go), and Raw only
		// to estimate its size, tolerating the error
		// (p2p/host/basic/addrs_manager.go).
		"GetPublic <- record.Seal":                          true,
		"Sign <- record.Seal":                               true,
		"Raw <- basic.(*addrsManager).makeSignedPeerRecord": true,
	}
	for _, sec := range []struct {
		name string
		mode listenMode
		sec  []SecurityProtocol
	}{
		{"TCP+TLS", listenTCP, []SecurityProtocol{SecurityTLS}},
		{"TCP+Noise", listenTCP, []SecurityProtocol{SecurityNoise}},
		{"QUIC", listenQUIC, nil},
	} {
		t.Run(sec.name, func(t *testing.T) {
			ss := signers(t, 2)
			peers := committee(t, ss)
			rec := make([]*callRecorder, 2)
			nets := make([]*Network, 2)
			for i := range ss {
				n, err := newNetwork(Config{
					Identity: ss[i], Peers: peers, ListenAddrs: sec.mode.addrs(), Security: sec.sec,
				}, func(k lcrypto.PrivKey) lcrypto.PrivKey {
					rec[i] = &callRecorder{PrivKey: k, calls: map[string]int{}}
					return rec[i]
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { n.Close() })
				nets[i] = n
			}
			connectAll(t, nets)
			signsBefore := countPrefix(rec[0].snapshot(), "Sign <- noise")
			// Three fresh connections from 0 to 1, each with a message.
			for i := range 3 {
				if i > 0 {
					nets[0].host.Network().ClosePeer(nets[1].PeerID())
				}
				m := &tss.Message{Type: tss.MsgProtocol, From: nets[0].Self(), To: []tss.PartyID{nets[1].Self()}, Round: uint32(i)}
				ctx, cancel := context.WithTimeout(context.Background(), waitTest)
				err := sendUntilDelivered(ctx, nets[0], nets[1], m)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			for i, r := range rec {
				calls := r.snapshot()
				var lines []string
				for k, v := range calls {
					lines = append(lines, k+" ×"+strconv.Itoa(v))
					if !allowed[k] {
						t.Errorf("host %d: unexpected call %s", i, k)
					}
				}
				sort.Strings(lines)
				t.Logf("host %d key calls:\n  %s", i, strings.Join(lines, "\n  "))
				if r.rawOK != 0 {
					t.Errorf("host %d: Raw succeeded %d times", i, r.rawOK)
				}
			}
			noiseSigns := countPrefix(rec[0].snapshot(), "Sign <- noise") - signsBefore
			if sec.name == "TCP+Noise" {
				if noiseSigns < 3 {
					t.Errorf("Noise: %d handshake signatures for 3 connections, want one each", noiseSigns)
				}
			} else if noiseSigns != 0 {
				t.Errorf("%s: %d Noise signatures", sec.name, noiseSigns)
			}
		})
	}
}

func countPrefix(m map[string]int, prefix string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}
