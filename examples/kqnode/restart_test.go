package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// The README's stop and restart steps: a site stopped with kill on the PID
// its api.json holds stops cleanly, and the same run line brings back its
// key, its presignature pool and its pre-parameters.
func TestCLI_StopByPIDAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 2)
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites)

	key := keygen2of3(t, c, a, b, sc)
	var made presignResult
	c.ok(t, nil, &made, "presign", "--home", a.home, "--key", key.KeyID, "--count", "3", "--signers", a.peerID+","+b.peerID)
	var before statusResult
	c.ok(t, nil, &before, "status", "--home", a.home)

	for _, s := range []*e2eSite{a, b} {
		data, err := os.ReadFile(filepath.Join(s.home, apiFile))
		if err != nil {
			t.Fatal(err)
		}
		var api apiInfo
		if err := json.Unmarshal(data, &api); err != nil || api.PID <= 0 {
			t.Fatalf("%s of site %s: %v", apiFile, s.name, err)
		}
		if err := syscall.Kill(api.PID, syscall.SIGTERM); err != nil { // kill $(jq -r .pid DIR/api.json)
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		err = s.proc.Wait(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("site %s after kill of the PID in %s: %v", s.name, apiFile, err)
		}
		if _, err := os.Stat(filepath.Join(s.home, apiFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("site %s left %s behind", s.name, apiFile)
		}
	}
	// The same run line again.
	for _, s := range []*e2eSite{a, b} {
		if err := s.proc.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		waitReady(ctx, t, s)
	}
	var after statusResult
	c.ok(t, nil, &after, "status", "--home", a.home)
	if len(after.Keys) != 1 || after.Keys[0].KeyID != key.KeyID || !after.Keys[0].Created.Equal(before.Keys[0].Created) {
		t.Fatalf("keys after the restart: %+v; want %s as before", after.Keys, key.KeyID)
	}
	if len(after.Keys[0].Pools) != 1 || after.Keys[0].Pools[0].Ready != made.Ready || after.PreParams.Ready != before.PreParams.Ready {
		t.Fatalf("after the restart: pools %+v, %d pre-parameter sets; want %d ready presignatures and %d sets as before",
			after.Keys[0].Pools, after.PreParams.Ready, made.Ready, before.PreParams.Ready)
	}
	var sig signResult
	c.ok(t, nil, &sig, "sign", "--home", a.home, "--key", key.KeyID, "--signers", a.peerID+","+b.peerID,
		"--digest", strings.Repeat("5a", 32))
	if sig.Protocol != "gg20" {
		t.Fatalf("signed with %s after the restart; want gg20 from the presignatures made before it", sig.Protocol)
	}
	r := c.run(t, nil, "status", "--home", a.home)
	if !strings.Contains(r.stdout, "keys      1") || !regexp.MustCompile(`pool site-[ab],site-[ab] path m \(own\): 2 ready`).MatchString(r.stdout) {
		t.Errorf("human status after the restart:\n%s", r.stdout)
	}
}
