package main

// Administration commands: reshare, rotate-seal-key and preparams.

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

// cmdPreParams shows the pre-parameter pool, or generates sets now.
func cmdPreParams(ctx context.Context, e *env, args []string) error {
	const synopsis = "kqnode preparams status|generate --home DIR [--count N] [--json]"
	if len(args) == 0 || (args[0] != "status" && args[0] != "generate") {
		e.json = wantsJSON(args)
		return usageErrorf("preparams: status or generate?\nusage: %s", synopsis)
	}
	f := newClientFlags("preparams "+args[0], synopsis)
	count := f.Int("count", 1, "generate: how many sets to make now (1 to 16; 5 to 60 s of CPU each)")
	c, err := f.parse(e, args[1:])
	if err != nil {
		return err
	}
	if args[0] == "status" {
		st, err := siteStatus(ctx, c)
		if err != nil {
			return err
		}
		pp := st.PreParams
		return output(e, &preParamsResult{Ready: pp.Ready, Generating: pp.Generating, Target: pp.Target,
			Generated: pp.Generated, Generation: pp.Generation, LastError: pp.LastError})
	}
	if *count < 1 || *count > keyquorum.MaxGeneratePreParams {
		return usageErrorf("preparams generate: --count %d is outside 1 to %d\nusage: %s", *count, keyquorum.MaxGeneratePreParams, synopsis)
	}
	req, res := preParamsGenerateRequest{Count: *count}, &preParamsResult{}
	if e.json { // quiet: no progress line
		if err := c.call(ctx, pathPreParamsGen, req, res); err != nil {
			return err
		}
		return output(e, res)
	}
	return c.request(ctx, e, "preparams generate", pathPreParamsGen, req, res)
}
