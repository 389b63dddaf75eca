package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// sshKey makes an ed25519 key pair with ssh-keygen and returns the private
// key file and the public key line.
func sshKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	priv := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -t ed25519: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(pub))
}

// TestCLI_RequestWorkflow runs three kqnode processes whose policy wants
// two treasury approvals for a PSBT and refuses raw digests. A request is
// created on one site, approved by two people with real ssh-keygen -Y sign,
// and signed; before the second approval it is refused, and a raw digest
// is refused with the rule's reason.
func TestCLI_RequestWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen take about a minute")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("ssh-keygen not found: `make deps` installs openssh-client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)

	alice, alicePub := sshKey(t, root, "alice")
	bob, bobPub := sshKey(t, root, "bob")
	policyFile := filepath.Join(root, "policy")
	pol := strings.Join([]string{
		"keyquorum-policy 1",
		"approval-max-validity 24h",
		"approver alice " + alicePub,
		"approver bob " + bobPub,
		"group treasury alice bob",
		"rule psbt allow treasury=2",
		`  kind == "bitcoin-psbt" && btc.fee_sat < 100000`,
		"rule no-raw deny raw digests are never signed",
		`  kind == "raw-digest"`,
		"",
	}, "\n")
	if err := os.WriteFile(policyFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}

	// A policy with a mistake stops run at once, naming the line.
	bad := filepath.Join(root, "bad-policy")
	if err := os.WriteFile(bad, []byte("keyquorum-policy 1\nrule r allow\n  kind == \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eb := c.fails(t, nil, 1, codeBadRequest, "policy", "check", "--policy", bad)
	if !strings.Contains(eb.Error, "bad-policy:3") {
		t.Errorf("policy check of a bad file: %s, want the line named", eb.Error)
	}

	sites := initSites(t, c, root, 1)
	a, b, sc := sites[0], sites[1], sites[2]
	peerFile := writePeers(t, root, sites)
	if r := c.run(t, a.env(), "run", "--home", a.home, "--peers", peerFile, "--policy", bad); r.code != 1 || !strings.Contains(r.stderr, "bad-policy:3") {
		t.Fatalf("run with a bad policy: exit %d, stderr %q; want exit 1 naming the line", r.code, r.stderr)
	}
	runSites(ctx, t, c, proctest.New(t), peerFile, policyFile, sites,
		"--join-timeout", "5s", "--send-timeout", "5s", "--round-timeout", "1m")
	key := keygen2of3(t, c, a, b, sc)

	packet, prev := regtestPSBT(t, key.BTCAddress)
	var buf bytes.Buffer
	if err := packet.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	psbtFile := filepath.Join(root, "spend.psbt")
	if err := os.WriteFile(psbtFile, []byte(base64.StdEncoding.EncodeToString(buf.Bytes())), 0o600); err != nil {
		t.Fatal(err)
	}

	var req requestResult
	c.ok(t, nil, &req, "request", "create", "--home", a.home, "--key", key.KeyID, "--psbt", "@"+psbtFile, "--expires", "1h")
	if req.Plan.Decision.Allowed || req.Plan.Decision.Rule != "psbt" || len(req.Plan.Digests) != 1 ||
		!strings.Contains(req.Plan.Decision.Reason, "treasury") {
		t.Fatalf("request create: %+v", req)
	}
	if !strings.Contains(string(req.Plan.Summary), "bcrt1q") {
		t.Errorf("the summary does not show the destination: %s", req.Plan.Summary)
	}

	// Without approvals the initiating site refuses itself.
	eb = c.fails(t, nil, 1, codePolicy, "request", "sign", "--home", a.home, "--id", req.ID, "--signers", a.peerID+","+b.peerID)
	if !strings.Contains(eb.Error, "psbt") {
		t.Errorf("refusal does not name the rule: %s", eb.Error)
	}

	approve := func(who, keyFile string) requestResult {
		t.Helper()
		out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "keyquorum-approval", "-f", keyFile, req.Statement).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -Y sign for %s: %v\n%s", who, err, out)
		}
		sig := filepath.Join(root, who+".sig")
		if err := os.Rename(req.Statement+".sig", sig); err != nil {
			t.Fatal(err)
		}
		var r requestResult
		c.ok(t, nil, &r, "request", "approve", "--home", a.home, "--id", req.ID, "--signature", sig)
		return r
	}
	if r := approve("alice", alice); r.Plan.Decision.Allowed || r.Approvals != 1 {
		t.Fatalf("after one approval: %+v", r.Plan.Decision)
	}
	if r := approve("bob", bob); !r.Plan.Decision.Allowed || r.Approvals != 2 {
		t.Fatalf("after two approvals: %+v", r.Plan.Decision)
	}
	// The same decision offline, from the policy file and the request.
	var pt policyTestResult
	c.ok(t, nil, &pt, "policy", "test", "--policy", policyFile, "--home", a.home, "--request", req.ID)
	if !pt.Decision.Allowed || pt.Decision.Rule != "psbt" || len(pt.Decision.Counted) != 2 {
		t.Fatalf("policy test: %+v", pt)
	}
	var list requestListResult
	c.ok(t, nil, &list, "request", "list", "--home", a.home)
	if len(list.Requests) != 1 || list.Requests[0].ID != req.ID || list.Requests[0].Approvals != 2 {
		t.Fatalf("request list: %+v", list)
	}

	var res signPSBTResult
	c.ok(t, nil, &res, "request", "sign", "--home", a.home, "--id", req.ID, "--signers", a.peerID+","+b.peerID)
	if !res.Complete {
		t.Fatalf("request sign: %+v", res)
	}
	// What it prints as signed is what the approvers were shown.
	if !bytes.Equal(res.Summary, req.Plan.Summary) {
		t.Errorf("request sign printed the summary %s, the approved request showed %s", res.Summary, req.Plan.Summary)
	}
	raw, _ := hex.DecodeString(res.TxHex)
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Execute(); err != nil {
		t.Fatalf("btcd's script engine rejects the input: %v", err)
	}

	// A raw digest: denied by rule no-raw, on the initiating site.
	eb = c.fails(t, nil, 1, codePolicy, "sign", "--home", b.home, "--key", key.KeyID, "--digest", strings.Repeat("ab", 32))
	if !strings.Contains(eb.Error, "no-raw") || !strings.Contains(eb.Error, "never signed") {
		t.Errorf("raw digest refusal: %s", eb.Error)
	}

	// Every site's audit log holds its decisions and verifies; the
	// co-signer's names the rule and the approvers.
	for _, s := range sites {
		var v auditVerifyResult
		c.ok(t, nil, &v, "audit", "verify", "--home", s.home)
		if v.Entries < 2 {
			t.Errorf("audit log of %s: %+v", s.name, v)
		}
	}
	r := c.run(t, nil, "audit", "tail", "--home", b.home, "-n", "100")
	if r.code != 0 || !strings.Contains(r.stdout, `"type":"sign.authorize"`) || !strings.Contains(r.stdout, `"approvers":"alice,bob"`) ||
		!strings.Contains(r.stdout, `"rule":"psbt"`) || !strings.Contains(r.stdout, `"type":"site.start"`) {
		t.Errorf("audit tail of b: exit %d\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, `"type":"sign.refuse"`) || !strings.Contains(r.stdout, "no-raw") {
		t.Errorf("b's refusal of the raw digest is not in its audit log:\n%s", r.stdout)
	}
}
