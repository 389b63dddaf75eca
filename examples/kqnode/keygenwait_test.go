package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/tss"
)

// keygen --wait waits for the pre-parameter sets keygen needs, at this
// site and at the others, instead of failing with no_preparams. Site c
// has no set and generates real ones in the background (safe primes: this
// test takes minutes of CPU).
func TestCLI_KeygenWait(t *testing.T) {
	if testing.Short() {
		t.Skip("generates real pre-parameters")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 0)
	a, b, sc := sites[0], sites[1], sites[2]
	for i, s := range []*e2eSite{a, b} {
		var res initResult
		c.ok(t, s.env(), &res, append([]string{"init", "--home", s.home, "--module", s.hsm.Module, "--token", s.token.Label,
			"--pin-source", "file:" + s.pinFile, "--preparams-fixtures", fixtureFile(2*i) + "," + fixtureFile(2*i+1)}, testAdminArgs()...)...)
	}
	peers := writeNamedPeers(t, root, sites)
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, peers, testPolicyFile(t), []*e2eSite{a, b})
	runSites(ctx, t, c, cluster, peers, testPolicyFile(t), []*e2eSite{sc}, "--preparams-target", "1",
		"--preparams-worker=false") // the suite keeps every core busy: an idle-priority worker would wait
	parties := a.peerID + "," + b.peerID + "," + sc.peerID
	keyOf := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "key_id:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}

	// From a: c refuses until it has a set; a asks again until it does.
	r := c.run(t, nil, "keygen", "--home", a.home, "--threshold", "2", "--parties", parties, "--wait", "--timeout", "15m")
	if r.code != 0 || len(keyOf(r.stdout)) != 32 {
		t.Fatalf("keygen --wait from a: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "keygen: site-c has no pre-parameter set yet") {
		t.Errorf("keygen --wait from a did not say it waits for site-c:\n%s", r.stderr)
	}

	// From c, whose set went into that key: it waits for its next one.
	r = c.run(t, nil, "keygen", "--home", sc.home, "--threshold", "2", "--parties", parties, "--wait", "--timeout", "15m")
	if r.code != 0 || len(keyOf(r.stdout)) != 32 {
		t.Fatalf("keygen --wait from c: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "keygen: waiting for a pre-parameter set at this site") {
		t.Errorf("keygen --wait from c did not say it waits for its own set:\n%s", r.stderr)
	}

	// A site that has none and generates none fails at once.
	c.fails(t, nil, 1, codeNoPreParams, "keygen", "--home", a.home, "--threshold", "2", "--parties", parties, "--wait")
}

// With --json, keygen --wait prints nothing but its one JSON object.
func TestKeygenWait_QuietWithJSON(t *testing.T) {
	var stderr bytes.Buffer
	n := newWaitNote(&env{stdout: &bytes.Buffer{}, stderr: &stderr, json: true})
	n.show("waiting for a pre-parameter set at this site")
	n.done()
	if stderr.Len() != 0 {
		t.Fatalf("with --json the wait printed %q", stderr.String())
	}
	n = newWaitNote(&env{stdout: &bytes.Buffer{}, stderr: &stderr})
	n.show("waiting")
	n.show("waiting")
	if stderr.String() != "keygen: waiting\n" {
		t.Fatalf("without --json, off a terminal, the wait printed %q; want one line per state", stderr.String())
	}
}

// The estimate keygen --wait and status give: what a set costs before the
// site made one, its own mean after, and a word when the current set runs
// much longer than that.
func TestPreParamsEstimate(t *testing.T) {
	for _, tc := range []struct {
		pp   tss.PreParamsStatus
		want []string
		not  []string
	}{
		{tss.PreParamsStatus{}, []string{"a few seconds to a few minutes"}, []string{"current one", "average"}},
		{tss.PreParamsStatus{GeneratingForMS: 12_000}, []string{"a few seconds to a few minutes", "the current one has run 12s"}, []string{"average"}},
		{tss.PreParamsStatus{MeanGenerationMS: 40_000}, []string{"sets took 40s on average here"}, []string{"current one"}},
		{tss.PreParamsStatus{MeanGenerationMS: 40_000, GeneratingForMS: 50_000}, []string{"40s on average", "has run 50s"}, []string{"longer than most"}},
		{tss.PreParamsStatus{MeanGenerationMS: 40_000, GeneratingForMS: 200_000}, []string{"has run 3m20s", "longer than most"}, nil},
	} {
		got := preParamsEstimate(tc.pp)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%+v: %q, want %q in it", tc.pp, got, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(got, w) {
				t.Errorf("%+v: %q, want no %q in it", tc.pp, got, w)
			}
		}
	}
}
