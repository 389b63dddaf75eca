package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestCLI_PreParams: preparams status shows the set init imported;
// preparams generate makes one more now (real safe-prime generation)
// and the pool then has two; bad counts are usage errors.
func TestCLI_PreParams(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a Paillier pre-parameter set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a := sites[0]
	cluster := proctest.New(t)
	// In the site's process: the suite keeps every core busy, and an
	// idle-priority worker would wait for one (the worker is tested in
	// package tss).
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites[:1], "--preparams-worker=false")

	var st preParamsResult
	c.ok(t, nil, &st, "preparams", "status", "--home", a.home)
	if st.Ready != 1 || st.Generating != 0 {
		t.Fatalf("preparams status: %+v; want the one imported set", st)
	}
	c.fails(t, nil, 2, codeBadRequest, "preparams", "generate", "--home", a.home, "--count", "0")
	c.fails(t, nil, 2, codeBadRequest, "preparams", "generate", "--home", a.home, "--count", "17")
	c.fails(t, nil, 2, codeBadRequest, "preparams", "--home", a.home)

	r := c.run(t, nil, "preparams", "generate", "--home", a.home, "--count", "1", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("preparams generate: exit %d, stderr %q (want nothing with --json)", r.code, r.stderr)
	}
	var gen preParamsResult
	r.json(t, &gen)
	if gen.Made != 1 || gen.Ready != 2 || gen.Generated != 1 {
		t.Fatalf("preparams generate: %+v; want 1 made and 2 ready", gen)
	}
	h := c.run(t, nil, "preparams", "status", "--home", a.home)
	if h.code != 0 || !strings.Contains(h.stdout, "ready:") || !strings.Contains(h.stdout, "2") {
		t.Fatalf("human preparams status: %q", h.stdout)
	}
}
