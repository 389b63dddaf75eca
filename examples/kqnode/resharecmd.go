package main

import (
	"context"
	"time"

	"github.com/keyquorum/keyquorum"
)

// cmdReshare proposes a reshare of a key, or with --accept authorizes one
// that another site will propose (see keyquorum.Node.AuthorizeReshare).
func cmdReshare(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("reshare", "kqnode reshare --home DIR --key ID --parties ID,ID,ID --threshold M [--accept [--expires 1h]] [--old-parties ID,ID] [--network regtest] [--json]")
	key := f.String("key", "", "key ID (required)")
	parties := f.String("parties", "", "the new committee's peer IDs, comma-separated (required)")
	threshold := f.Int("threshold", 0, "the new M (required)")
	accept := f.Bool("accept", false, "do not propose: authorize this site to join exactly this reshare when another site proposes it")
	expires := f.Duration("expires", time.Hour, "with --accept: how long the authorization lasts (at most 168h)")
	old := f.String("old-parties", "", "members of the current committee that take part, comma-separated (default all)")
	network := f.String("network", "regtest", "Bitcoin network of btc_address: mainnet, testnet, regtest or signet")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || *parties == "" || *threshold <= 0 {
		return usageErrorf("reshare: --key, --parties and --threshold are required\nusage: %s", f.synopsis)
	}
	ids, err := peerList("reshare", "parties", *parties)
	if err != nil {
		return err
	}
	if *accept {
		if *old != "" {
			return usageErrorf("reshare: --old-parties is chosen by the site that proposes; --accept takes the new committee and threshold only\nusage: %s", f.synopsis)
		}
		if *expires < time.Second || *expires > 168*time.Hour {
			return usageErrorf("reshare: --expires %s is outside 1s to 168h\nusage: %s", *expires, f.synopsis)
		}
		return c.request(ctx, e, "reshare --accept", pathReshareAccept, reshareAcceptRequest{KeyID: *key, Parties: ids,
			Threshold: *threshold, ExpiresIn: int64(*expires / time.Second)}, &reshareAcceptResult{})
	}
	oldIDs, err := peerList("reshare", "old-parties", *old)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "reshare", pathReshare, reshareRequest{KeyID: *key, Parties: ids, Threshold: *threshold,
		OldParties: oldIDs, Network: *network}, &reshareResult{})
}

// cmdRotateSealKey re-seals the site's store under a new seal key and
// destroys the old one (keyquorum.Node.RotateSealKey).
func cmdRotateSealKey(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("rotate-seal-key", "kqnode rotate-seal-key --home DIR [--json]")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if f.NArg() != 0 {
		return usageErrorf("rotate-seal-key: takes no arguments\nusage: %s", f.synopsis)
	}
	return c.request(ctx, e, "rotate-seal-key", pathRotateSealKey, struct{}{}, &keyquorum.SealKeyRotation{})
}
