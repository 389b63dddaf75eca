package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// writeNamedPeers writes a peer file that names every site "site-NAME".
func writeNamedPeers(t testing.TB, dir string, sites []*e2eSite) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i, s := range sites {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"peer_id": %q, "name": "site-%s", "addrs": ["/ip4/127.0.0.1/tcp/%d"]}`, s.peerID, s.name, s.port)
	}
	b.WriteString("]")
	p := filepath.Join(dir, "named-peers.json")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var statusLabels = []string{"site ", "api ", "listen ", "WARNING ", "peers ", "network ", "preparams ", "keys ", "running ", "session ", "finished ", "ENGINE STOPPED", " "}

// The human status after a keygen, a sign-psbt and a failure with a
// multi-line error: sites by their peer-file names, one line per item,
// finished operations in order and each once, the key's creation time.
func TestCLI_HumanStatus(t *testing.T) {
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
	packet, _ := regtestPSBT(t, key.BTCAddress)
	var buf bytes.Buffer
	if err := packet.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	var signed signPSBTResult
	c.ok(t, nil, &signed, "sign-psbt", "--home", a.home, "--key", key.KeyID, "--psbt", base64.StdEncoding.EncodeToString(buf.Bytes()),
		"--signers", a.peerID+","+b.peerID)
	// Site c stops: signing with it fails, and the transport's error
	// spans several lines (one per address dialed).
	if err := sc.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	c.fails(t, nil, 1, codeUnreachable, "sign", "--home", a.home, "--key", key.KeyID, "--digest", strings.Repeat("ab", 32),
		"--signers", a.peerID+","+sc.peerID, "--protocol", "gg18")

	// a's own name for the key: in its status, keys list and keys show,
	// not in b's; a bad label is a usage error.
	var labelled keyLabelRequest
	c.ok(t, nil, &labelled, "keys", "label", "--home", a.home, "--key", key.KeyID, "--label", "treasury hot")
	if labelled.Label != "treasury hot" || labelled.KeyID != key.KeyID {
		t.Fatalf("keys label printed %+v", labelled)
	}
	if r := c.run(t, nil, "keys", "label", "--home", a.home, "--key", key.KeyID, "--label", "two\nlines"); r.code != 2 {
		t.Fatalf("keys label with a newline: exit %d, want 2 (usage)", r.code)
	}
	if r := c.run(t, nil, "keys", "label", "--home", a.home, "--key", key.KeyID); r.code != 2 {
		t.Fatalf("keys label without --label: exit %d, want 2 (usage)", r.code)
	}
	var listB keysListResult
	c.ok(t, nil, &listB, "keys", "list", "--home", b.home)
	if len(listB.Keys) != 1 || listB.Keys[0].Label != "" {
		t.Fatalf("b's keys %+v: a's label is a's own", listB.Keys)
	}
	if r := c.run(t, nil, "keys", "list", "--home", a.home); r.code != 0 || !strings.Contains(r.stdout, "treasury hot") {
		t.Fatalf("a's keys list (exit %d) does not show the label:\n%s", r.code, r.stdout)
	}

	var st statusResult
	c.ok(t, nil, &st, "status", "--home", a.home)
	if len(st.Keys) != 1 || st.Keys[0].Label != "treasury hot" {
		t.Fatalf("status keys %+v; want the label", st.Keys)
	}
	if st.Names[b.peerID] != "site-b" || st.Names[a.peerID] != "site-a" {
		t.Fatalf("status names %v; want the peer file's", st.Names)
	}
	if len(st.Keys) != 1 || st.Keys[0].Created.IsZero() || time.Since(st.Keys[0].Created) > time.Hour {
		t.Fatalf("status keys %+v; want the key with its creation time", st.Keys)
	}
	parentOf := map[int]uint64{}
	for _, o := range st.Finished {
		parentOf[int(o.ID)] = o.Parent
	}
	steps := 0
	for _, o := range st.Finished {
		if o.Parent != 0 {
			steps++
		}
	}
	if steps == 0 {
		t.Fatalf("finished operations %+v: the sign-psbt's signature is not marked as its step", st.Finished)
	}

	r := c.run(t, nil, "status", "--home", a.home)
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	out := r.stdout
	t.Logf("status:\n%s", out)
	finishedRE := regexp.MustCompile(`^finished  #(\d+) `)
	last := 0
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		known := false
		for _, p := range statusLabels {
			known = known || strings.HasPrefix(l, p)
		}
		if !known {
			t.Errorf("line %q starts with no label: a value spilled over lines", l)
		}
		// After the label column, one space between words.
		rest := strings.TrimLeft(l, " ")
		if i := strings.Index(rest, " "); i >= 0 {
			rest = strings.TrimLeft(rest[i:], " ")
		}
		if strings.Contains(rest, "  ") {
			t.Errorf("line %q holds a double space", l)
		}
		if m := finishedRE.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			if id <= last {
				t.Errorf("finished #%d listed after #%d", id, last)
			}
			last = id
			if p := parentOf[id]; p != 0 && parentOf[int(p)] == 0 && strings.Contains(out, fmt.Sprintf("finished  #%d ", p)) {
				t.Errorf("finished #%d is a step of #%d and listed on its own", id, p)
			}
		}
	}
	partiesRE := regexp.MustCompile(`(?m)^    parties: site-[abc],site-[abc],site-[abc]$`)
	if !partiesRE.MatchString(out) {
		t.Errorf("human status does not name the key's parties by their names")
	}
	for _, want := range []string{"site-b " + b.peerID + ":", "connections refused",
		"created " + st.Keys[0].Created.UTC().Format("2006-01-02"), key.KeyID + ` "treasury hot" 2-of-3`, "sign-psbt " + key.KeyID, "(steps: #", "UNREACHABLE", "FAILED: "} {
		if !strings.Contains(out, want) {
			t.Errorf("human status lacks %q", want)
		}
	}
	if strings.Contains(out, "sites up: "+a.peerID) {
		t.Errorf("human status names a site by its peer ID although the peer file names it")
	}
}
