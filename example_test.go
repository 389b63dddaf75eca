package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
)

// One site of a 2-of-3 committee: open the site with its own signing
// policy, create a key with the two other sites, sign an approved PSBT. The
// other sites run the same program with their own token, store and policy;
// the peer file is the same everywhere.
func Example() {
	ctx := context.Background()
	peers, err := transport.LoadPeerFile("/etc/keyquorum/peers.json")
	if err != nil {
		log.Fatal(err)
	}
	// This site's own rules and approvers (policy/FORMAT.md). Without a
	// policy a site signs nothing.
	rules, err := keyquorum.LoadSigningPolicy("/etc/keyquorum/policy")
	if err != nil {
		log.Fatal(err) // a *policy.FileError names the line
	}
	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM: hsmshare.Config{
			ModulePath: "/usr/lib/softhsm/libsofthsm2.so",
			TokenLabel: "site-a",
			PINSource:  "file:/etc/keyquorum/pin",
		},
		CreateKeys:    true, // the first start creates the seal and identity keys in the token
		StoreDir:      "/var/lib/keyquorum/store",
		SigningPolicy: rules,
		Peers:         peers,
		ListenAddrs:   []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		Logger:        slog.Default(),
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

	// A withdrawal: the PSBT travels to every signing site, which derives
	// the digests and the summary itself and checks them against its own
	// policy and the approvals. Approvers signed the plan's statement with
	// ssh-keygen -Y sign -n keyquorum-approval (kqnode request create
	// prints it).
	raw, err := os.ReadFile("/var/lib/keyquorum/withdrawal.psbt")
	if err != nil {
		log.Fatal(err)
	}
	packet, err := wallet.ParsePSBT(raw)
	if err != nil {
		log.Fatal(err)
	}
	statement, err := os.ReadFile("/var/lib/keyquorum/withdrawal.statement")
	if err != nil {
		log.Fatal(err)
	}
	req := keyquorum.PSBTRequest{KeyID: key.ID, Packet: packet, Options: wallet.PSBTOptions{Net: &chaincfg.MainNetParams}}
	for _, f := range []string{"alice.sig", "bob.sig"} {
		sig, err := os.ReadFile("/var/lib/keyquorum/" + f)
		if err != nil {
			log.Fatal(err)
		}
		req.Approvals = append(req.Approvals, policy.Approval{Statement: statement, Signature: sig})
	}
	signed, err := node.SignPSBT(ctx, req)
	if err != nil {
		log.Fatal(err) // a *tss.RefusedError names a site whose policy refused, and its rule
	}
	fmt.Printf("transaction %s\n", signed.Tx.TxHash())
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
