package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestCLI_Reshare runs three kqnode processes: a site that proposes a
// reshare the other operators did not authorize is refused, naming the
// site that refused, and the key is unchanged; once both other operators
// ran `reshare --accept` with the same committee and threshold, the
// reshare moves the key to 3-of-3 with the same public key and
// addresses, and every site's status shows it committed at epoch 2.
func TestCLI_Reshare(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen and a reshare")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 2) // one pre-parameter set for keygen, one for the reshare
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites)
	key := keygen2of3(t, c, a, b, sc)
	all := a.peerID + "," + b.peerID + "," + sc.peerID

	epochOf := func(s *e2eSite) (uint64, string) {
		var list keysListResult
		c.ok(t, nil, &list, "keys", "list", "--home", s.home)
		if len(list.Keys) != 1 {
			t.Fatalf("keys list on %s: %+v", s.name, list)
		}
		return list.Keys[0].Epoch, list.Keys[0].PublicKey
	}

	eb := c.fails(t, nil, 1, codeRefused, "reshare", "--home", a.home, "--key", key.KeyID, "--parties", all, "--threshold", "3")
	if len(eb.Parties) != 1 || (eb.Parties[0] != b.peerID && eb.Parties[0] != sc.peerID) || !strings.Contains(eb.Error, "reshare --accept") {
		t.Fatalf("unauthorized reshare: %+v; want a refusal by b or c that says how to authorize", eb)
	}
	for _, s := range sites {
		if epoch, pub := epochOf(s); epoch != 1 || pub != key.PublicKey {
			t.Fatalf("site %s after a refused reshare: epoch %d, key %s", s.name, epoch, pub)
		}
	}

	for _, s := range []*e2eSite{b, sc} {
		var acc reshareAcceptResult
		c.ok(t, nil, &acc, "reshare", "--accept", "--home", s.home, "--key", key.KeyID, "--parties", all, "--threshold", "3", "--expires", "10m")
		if acc.KeyID != key.KeyID || acc.Threshold != 3 || len(acc.Parties) != 3 || time.Until(acc.Expires) < 9*time.Minute {
			t.Fatalf("reshare --accept on %s: %+v", s.name, acc)
		}
	}
	c.fails(t, nil, 2, codeBadRequest, "reshare", "--accept", "--home", b.home, "--key", key.KeyID, "--parties", all, "--threshold", "3", "--expires", "200h")

	var res reshareResult
	c.ok(t, nil, &res, "reshare", "--home", a.home, "--key", key.KeyID, "--parties", all, "--threshold", "3")
	if res.Epoch != 2 || res.Threshold != 3 || res.PublicKey != key.PublicKey || res.ChainCode != key.ChainCode ||
		res.BTCAddress != key.BTCAddress || res.ETHAddress != key.ETHAddress {
		t.Fatalf("reshare: %+v; keygen made %+v", res, key)
	}
	for _, s := range sites {
		if epoch, pub := epochOf(s); epoch != 2 || pub != key.PublicKey {
			t.Fatalf("site %s after the reshare: epoch %d, key %s", s.name, epoch, pub)
		}
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", s.home)
		if len(st.Reshares) != 1 || st.Reshares[0].Phase != "committed" || st.Reshares[0].PendingEpoch != 2 || string(st.Reshares[0].Initiator) != a.peerID {
			t.Fatalf("status on %s: reshares %+v", s.name, st.Reshares)
		}
		r := c.run(t, nil, "status", "--home", s.home)
		if !strings.Contains(r.stdout, "reshare   "+key.KeyID+" committed: to 3-of-3") || !strings.Contains(r.stdout, "epoch 2") {
			t.Fatalf("human status on %s:\n%s", s.name, r.stdout)
		}
	}
	var sig signResult
	c.ok(t, nil, &sig, "sign", "--home", b.home, "--key", key.KeyID, "--digest", strings.Repeat("ab", 32), "--signers", all)
	if sig.PublicKey != key.PublicKey {
		t.Fatalf("signature after the reshare under %s, want %s", sig.PublicKey, key.PublicKey)
	}
}
