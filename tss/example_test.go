package tss_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/keyquorum/keyquorum/tss"
)

// This example shows one site's part in a 2-of-3 key: the engine runs with
// the site's network and sealed store, and any site can propose keygen and
// signing. The network and store come from packages transport and hsmshare
// (package keyquorum wires them for you); the example is compiled, not run,
// because it needs the other two sites.
func Example() {
	var (
		network tss.Network // transport.New(...) with the site's HSM identity
		store   tss.Store   // hsmshare.OpenStore(...) sealed by the site's HSM
		peers   []tss.PartyID
	)
	pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: store, Target: 2})
	if err != nil {
		log.Fatal(err)
	}
	eng, err := tss.New(tss.Config{Network: network, Store: store, PreParams: pool})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go pool.Run(ctx)
	go eng.Run(ctx)

	key, err := eng.Keygen(ctx, tss.KeygenRequest{Parties: append(peers, eng.Self()), Threshold: 2})
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("withdrawal #1"))
	sig, err := eng.Sign(ctx, tss.SignRequest{KeyID: key.ID, Digest: digest[:]})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", sig.DER())

	// GG20: presign offline, then sign in one round trip.
	if _, err := eng.Presign(ctx, tss.PresignRequest{KeyID: key.ID, Count: 32}); err != nil {
		log.Fatal(err)
	}
	sig, err = eng.SignOnline(ctx, tss.OnlineRequest{KeyID: key.ID, Digests: [][]byte{digest[:]}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", sig.Compact())
}
