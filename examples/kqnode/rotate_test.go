package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestCLI_RotateSealKey rotates a site's seal key twice through kqnode,
// runs init on the home again, restarts the site, and signs with it: its
// key share opens under the newest key, init created no other; both
// rotations are in its audit log.
func TestCLI_RotateSealKey(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites)
	key := keygen2of3(t, c, a, b, sc)

	prev := keyquorum.DefaultSealKeyLabel
	for _, want := range []string{prev + ".2", prev + ".3"} {
		var res keyquorum.SealKeyRotation
		c.ok(t, nil, &res, "rotate-seal-key", "--home", a.home)
		if res.OldLabel != prev || res.NewLabel != want || res.OldID == res.NewID || !res.OldDestroyed {
			t.Fatalf("rotate-seal-key: %+v; want %s -> %s with the old key destroyed", res, prev, want)
		}
		prev = want
	}
	c.fails(t, nil, 2, codeBadRequest, "rotate-seal-key", "--home", a.home, "extra")

	data, err := os.ReadFile(filepath.Join(a.home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	var api apiInfo
	if err := json.Unmarshal(data, &api); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(api.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = a.proc.Wait(wctx)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	// init again on the rotated home (as for importing more pre-parameters)
	// loads the rotated key and creates none.
	var again initResult
	c.ok(t, a.env(), &again, "init", "--home", a.home, "--module", a.hsm.Module, "--token", a.token.Label, "--pin-source", "file:"+a.pinFile)
	if again.SealKey.Label != prev || again.SealKey.Created || again.PeerID != a.peerID {
		t.Fatalf("init after the rotation: seal key %+v, peer %s; want the existing %s", again.SealKey, again.PeerID, prev)
	}
	if err := a.proc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(ctx, t, a)
	var sig signResult
	c.ok(t, nil, &sig, "sign", "--home", a.home, "--key", key.KeyID, "--digest", strings.Repeat("cd", 32), "--signers", a.peerID+","+b.peerID)
	if sig.PublicKey != key.PublicKey {
		t.Fatalf("signature under %s, want %s", sig.PublicKey, key.PublicKey)
	}
	var rotated int
	for _, e := range auditEntries(t, c, a.home) {
		if strings.Contains(e, `"seal_key.rotated"`) {
			rotated++
		}
	}
	if rotated != 2 {
		t.Fatalf("%d seal_key.rotated entries in the audit log, want 2", rotated)
	}
}
