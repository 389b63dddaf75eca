package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// scrape GETs url and returns the status code and body.
func scrape(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

type readyBody struct {
	Ready  bool `json:"ready"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func (r readyBody) failing() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestCLI_MetricsAndHealth runs a kqnode site with --metrics and scrapes
// /metrics, /healthz and /readyz over HTTP: /readyz answers 503 naming the
// peers while the other sites are down and 200 once they run; the
// endpoint closes with the site.
func TestCLI_MetricsAndHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	peerFile := writePeers(t, root, sites)
	cluster := proctest.New(t)
	a := sites[0]

	// Flags are checked before anything starts.
	for _, bad := range [][]string{
		{"--metrics", "localhost:9464"},
		{"--metrics", "127.0.0.1:http"},
		{"--ready-peers", "1"},
		{"--metrics", "127.0.0.1:0", "--ready-presignatures", "-1"},
	} {
		args := append([]string{"run", "--home", a.home, "--peers", peerFile}, bad...)
		if res := c.run(t, a.env(), args...); res.code != 2 {
			t.Errorf("kqnode run %v: exit %d, want 2 (usage)\n%s", bad, res.code, res.stderr)
		}
	}

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	runSites(ctx, t, c, cluster, peerFile, testPolicyFile(t), []*e2eSite{a},
		"--metrics", fmt.Sprintf("127.0.0.1:%d", port), "--ready-peers", "2", "--ready-preparams", "1")
	line, err := a.proc.WaitForLine(ctx, `{"ready":true`)
	if err != nil {
		t.Fatal(err)
	}
	var rl readyLine
	if err := json.Unmarshal([]byte(line), &rl); err != nil || rl.Metrics != base {
		t.Fatalf("ready line %s: metrics %q (%v), want %s", line, rl.Metrics, err, base)
	}

	if code, body := scrape(ctx, t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"alive":true`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	code, body := scrape(ctx, t, base+"/readyz")
	var rd readyBody
	if err := json.Unmarshal([]byte(body), &rd); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || rd.Ready || !slices.Equal(rd.failing(), []string{"peers"}) {
		t.Fatalf("/readyz of a lone site: %d %s, want 503 with peers failing", code, body)
	}
	code, body = scrape(ctx, t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{
		fmt.Sprintf(`keyquorum_site_info{peer_id=%q} 1`, a.peerID),
		"keyquorum_peers_connected 0",
		`keyquorum_preparams{state="ready"} 1`,
		"keyquorum_audit_healthy 1",
		`keyquorum_hsm_operations_total{op="unseal",outcome="ok"}`,
		"go_goroutines",
		"process_open_fds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := scrape(ctx, t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/: %d, want 404", code)
	}

	// The other sites start: the round-trip probes reach them and /readyz
	// turns 200.
	runSites(ctx, t, c, cluster, peerFile, testPolicyFile(t), sites[1:])
	for {
		code, body = scrape(ctx, t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz never turned 200 with every site up: %d %s", code, body)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := json.Unmarshal([]byte(body), &rd); err != nil || !rd.Ready || len(rd.failing()) != 0 {
		t.Fatalf("/readyz 200 body %s: %+v (%v)", body, rd, err)
	}
	_, body = scrape(ctx, t, base+"/metrics")
	for _, s := range sites[1:] {
		for _, want := range []string{
			fmt.Sprintf(`keyquorum_peer_connected{peer=%q} 1`, s.peerID),
			fmt.Sprintf(`keyquorum_peer_rtt_seconds{peer=%q}`, s.peerID),
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	}

	// The endpoint stops with the site.
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the metrics endpoint still answers after the site stopped")
	}
}
