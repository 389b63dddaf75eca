package tss_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/txscript"

	"github.com/keyquorum/keyquorum/tss"
)

// TestSchnorr_KeygenAndSignBothSchemes runs a 2-of-3 FROST keygen for each
// scheme over the engine and signs with every pair of signers; each
// signature is checked by other people's verifiers: btcd's BIP-340
// schnorr.Verify under the Taproot output key btcd derives itself, and
// crypto/ed25519.
func TestSchnorr_KeygenAndSignBothSchemes(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := c.IDs()
	pairs := [][]tss.PartyID{{ids[0], ids[1]}, {ids[0], ids[2]}, {ids[1], ids[2]}}

	t.Run("bip340", func(t *testing.T) {
		info, err := c.Parties[0].Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids, Threshold: 2})
		if err != nil {
			t.Fatal(err)
		}
		if info.Scheme != tss.SchemeBIP340 || len(info.PublicKey) != 32 || info.Threshold != 2 {
			t.Fatalf("key info %+v", info)
		}
		internal, err := schnorr.ParsePubKey(info.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		root := sha256.Sum256([]byte("script tree"))
		for i, signers := range pairs {
			// Each pair signs from a different initiator, in its own way.
			init := c.Party(signers[i%2])
			msg := sha256.Sum256([]byte{byte(i)})
			for _, tc := range []struct {
				name    string
				taproot bool
				root    []byte
				key     []byte
			}{
				{"internal key", false, nil, info.PublicKey},
				{"key path, no scripts", true, nil, schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(internal))},
				{"key path, script tree", true, root[:], schnorr.SerializePubKey(txscript.ComputeTaprootOutputKey(internal, root[:]))},
			} {
				sig, err := init.Engine.SchnorrSign(ctx, tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:], Signers: signers, Taproot: tc.taproot, MerkleRoot: tc.root})
				if err != nil {
					t.Fatalf("%v, %s: %v", signers, tc.name, err)
				}
				s, err := schnorr.ParseSignature(sig)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := schnorr.ParsePubKey(tc.key)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Verify(msg[:], pub) {
					t.Fatalf("%v, %s: btcd does not verify the signature", signers, tc.name)
				}
			}
		}
	})

	t.Run("ed25519", func(t *testing.T) {
		info, err := c.Parties[1].Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeEd25519, Parties: ids, Threshold: 2})
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("a validator's vote, of any length")
		for _, signers := range pairs {
			sig, err := c.Party(signers[1]).Engine.SchnorrSign(ctx, tss.SchnorrSignRequest{KeyID: info.ID, Message: msg, Signers: signers})
			if err != nil {
				t.Fatal(err)
			}
			if !ed25519.Verify(ed25519.PublicKey(info.PublicKey), msg, sig) {
				t.Fatalf("%v: crypto/ed25519 does not verify the signature", signers)
			}
		}
		// The share is kept sealed across a restart.
		p := c.Restart(2, nil)
		if got, err := p.Engine.SchnorrKey(ctx, info.ID); err != nil || string(got.PublicKey) != string(info.PublicKey) {
			t.Fatalf("after a restart: %+v, %v", got, err)
		}
		sig, err := p.Engine.SchnorrSign(ctx, tss.SchnorrSignRequest{KeyID: info.ID, Message: msg, Signers: []tss.PartyID{ids[0], ids[2]}})
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(ed25519.PublicKey(info.PublicKey), msg, sig) {
			t.Fatal("after a restart: crypto/ed25519 does not verify the signature")
		}
	})
}

// TestSchnorr_RefusesBadRequests checks the requests every signer refuses
// before it commits to a nonce.
func TestSchnorr_RefusesBadRequests(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := c.IDs()
	a := c.Parties[0].Engine
	if _, err := a.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: "rsa", Parties: ids, Threshold: 2}); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("keygen of an unknown scheme: %v, want ErrBadRequest", err)
	}
	if _, err := a.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids, Threshold: 1}); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("1-of-3 keygen: %v, want ErrBadRequest", err)
	}
	info, err := a.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	msg := sha256.Sum256([]byte("m"))
	for _, tc := range []struct {
		name string
		req  tss.SchnorrSignRequest
		want error
	}{
		{"31-byte BIP-340 message", tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:31], Signers: ids[:2]}, tss.ErrBadRequest},
		{"merkle root without Taproot", tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:], Signers: ids[:2], MerkleRoot: msg[:]}, tss.ErrBadRequest},
		{"one signer of 2-of-3", tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:], Signers: ids[:1]}, tss.ErrBadRequest},
		{"unknown key", tss.SchnorrSignRequest{KeyID: "00112233445566778899aabbccddeeff", Message: msg[:], Signers: ids[:2]}, tss.ErrUnknownKey},
	} {
		if _, err := a.SchnorrSign(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSchnorr_CheatersAreNamed: a party that sends another party a wrong
// DKG share, or a wrong signature share, is named by the honest parties'
// errors (identifiable abort), and no key or signature results.
func TestSchnorr_CheatersAreNamed(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := c.IDs()
	a, cheat := c.Parties[0], c.Parties[2]
	flipLast := func(round uint32, to tss.PartyID) func(m *tss.Message) []*tss.Message {
		return func(m *tss.Message) []*tss.Message {
			if m.Type == tss.MsgProtocol && m.Round == round && (to == "" || (len(m.To) == 1 && m.To[0] == to)) {
				cp := *m
				cp.Payload = append([]byte(nil), m.Payload...)
				cp.Payload[len(cp.Payload)-1] ^= 1
				return []*tss.Message{&cp}
			}
			return []*tss.Message{m}
		}
	}
	named := func(what string, err error) {
		t.Helper()
		var ce *tss.CulpritError
		if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheat.ID {
			t.Fatalf("%s: %v, want a *tss.CulpritError naming %s", what, err, cheat.ID)
		}
	}

	cheat.Tamper(flipLast(2, a.ID))
	_, err := a.Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeEd25519, Parties: ids, Threshold: 2})
	named("keygen with a wrong DKG share", err)
	cheat.Tamper(nil)

	info, err := a.Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: tss.SchemeBIP340, Parties: ids, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	cheat.Tamper(flipLast(2, ""))
	msg := sha256.Sum256([]byte("tampered"))
	_, err = a.Engine.SchnorrSign(ctx, tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:], Signers: []tss.PartyID{a.ID, cheat.ID}})
	named("signing with a wrong signature share", err)
}
