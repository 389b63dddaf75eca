package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"

	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// ExampleNew starts two parties on the loopback interface and sends one
// message. In production each Identity is the site's HSM identity key
// (hsmshare's Token.CreateIdentity or Identity); here ordinary ECDSA keys
// stand in for them.
func ExampleNew() {
	alice, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bob, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	aliceID, _ := transport.PeerIDFromPublicKey(&alice.PublicKey)
	bobID, _ := transport.PeerIDFromPublicKey(&bob.PublicKey)
	peers := []transport.Peer{{ID: aliceID}, {ID: bobID}}

	start := func(key *ecdsa.PrivateKey) *transport.Network {
		n, err := transport.New(transport.Config{
			Identity:    key,
			Peers:       peers,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		})
		if err != nil {
			log.Fatal(err)
		}
		return n
	}
	a, b := start(alice), start(bob)
	defer a.Close()
	defer b.Close()
	// The ports were chosen at start; a peer file would list them.
	if err := a.AddAddrs(b.Self(), b.Addrs()...); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	err := a.Send(ctx, &tss.Message{
		Type:    tss.MsgProtocol,
		From:    a.Self(),
		To:      []tss.PartyID{b.Self()},
		Round:   1,
		Payload: []byte("hello"),
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := b.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (from alice: %v)\n", m.Payload, m.From == a.Self())
	sec, _ := b.ConnSecurity(a.Self())
	fmt.Println(sec.Protocol, sec.KeyExchange)
	// Output:
	// hello (from alice: true)
	// tls X25519MLKEM768
}

// ExampleParsePeers reads a peer file shared by every site.
func ExampleParsePeers() {
	peers, err := transport.ParsePeers([]byte(`[
	  {"peer_id": "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
	   "addrs": ["/ip4/192.0.2.7/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1"]}
	]`))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range peers {
		fmt.Println(p.PartyID(), p.Addrs)
	}
	// Output:
	// QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N [/ip4/192.0.2.7/tcp/4001 /ip4/192.0.2.7/udp/4001/quic-v1]
}

// ExampleNewSignerKey wraps an identity signer as a libp2p key. The
// private key can sign but never be read.
func ExampleNewSignerKey() {
	identity, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // an HSM identity in production
	key, err := transport.NewSignerKey(identity)
	if err != nil {
		log.Fatal(err)
	}
	_, err = key.Raw()
	fmt.Println(key.Type(), err)
	// Output:
	// ECDSA transport: identity private key is not exportable
}
