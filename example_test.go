package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"log/slog"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// One site of a 2-of-3 committee: open the site, create a key with the
// two other sites, sign a digest. The other sites run the same program
// with their own token and store; the peer file is the same everywhere.
func Example() {
	ctx := context.Background()
	peers, err := transport.LoadPeerFile("/etc/keyquorum/peers.json")
	if err != nil {
		log.Fatal(err)
	}
	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM: hsmshare.Config{
			ModulePath: "/usr/lib/softhsm/libsofthsm2.so",
			TokenLabel: "site-a",
			PINSource:  "file:/etc/keyquorum/pin",
		},
		CreateKeys:  true, // the first start creates the seal and identity keys in the token
		StoreDir:    "/var/lib/keyquorum/store",
		Peers:       peers,
		ListenAddrs: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		Logger:      slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	var committee []tss.PartyID
	for _, p := range peers {
		committee = append(committee, p.PartyID())
	}
	key, err := node.Keygen(ctx, keyquorum.KeygenRequest{Parties: committee, Threshold: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("key %s: %x\n", key.ID, key.PublicKey)

	digest := sha256.Sum256([]byte("withdrawal #1"))
	sig, err := node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest})
	if err != nil {
		log.Fatal(err) // a *tss.RoundTimeoutError names the sites that did not answer
	}
	fmt.Printf("%s signature: %x\n", sig.Protocol, sig.DER())
}

// Presignatures made ahead of time let Sign finish in one round trip
// (GG20). A presignature belongs to one key, signer set and derivation
// path, and is used once.
func ExampleNode_Presign() {
	ctx := context.Background()
	var node *keyquorum.Node // opened as in the package example
	var keyID string
	signers := []tss.PartyID{node.PartyID(), "QmOtherSite..."}

	res, err := node.Presign(ctx, keyquorum.PresignRequest{KeyID: keyID, Signers: signers, Count: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready presignatures:", res.Pool.Ready)

	digest := sha256.Sum256([]byte("withdrawal #2"))
	sig, err := node.Sign(ctx, keyquorum.SignRequest{KeyID: keyID, Digest: digest,
		SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolAuto}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Protocol) // gg20 while the pool has presignatures, then gg18
}
