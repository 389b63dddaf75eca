package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/wire"
)

// The demo's signing policy: two approvers whose keys the demo makes with
// ssh-keygen, PSBTs up to 0.4 BTC with both approvals, nothing above; the
// other steps of the demo sign raw digests and an Ethereum test-chain
// transaction, which the policy allows without approvals.
const demoPolicy = `# DEMO ONLY: made by the keyquorum demo with throwaway approver keys; it
# signs raw digests, so never load it on a site that holds real funds.
keyquorum-policy 1
approval-max-validity 24h
approver alice %s
approver bob %s
group treasury alice bob

rule btc-withdrawal allow treasury=2
  kind == "bitcoin-psbt" && btc.network == "regtest" && btc.sent_sat <= 40000000 && btc.fee_sat <= 100000

rule btc-too-much deny more than 0.4 BTC leaves only through the cold site
  kind == "bitcoin-psbt"

rule eth-test-chain allow
  kind == "ethereum-transaction" && eth.chain_id == 1337 && eth.value_wei <= 1e18

rule raw-digests allow-raw-digest
  kind == "raw-digest"
`

// writePolicy makes the approvers' SSH keys and the policy file.
func (d *demo) writePolicy() (string, error) {
	dir := filepath.Join(d.dir, "approvers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	d.approvers = map[string]string{}
	var pubs []any
	for _, name := range []string{"alice", "bob"} {
		key := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@demo", "-f", key).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ssh-keygen -t ed25519 for %s: %w: %s", name, err, out)
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			return "", err
		}
		d.approvers[name] = key
		pubs = append(pubs, strings.TrimSpace(string(pub)))
	}
	d.policy = filepath.Join(d.dir, "policy")
	if err := os.WriteFile(d.policy, fmt.Appendf(nil, demoPolicy, pubs...), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("policy %s: PSBTs up to 0.4 BTC with alice's and bob's approvals, nothing above", d.policy), nil
}

type requestOut struct {
	ID        string `json:"id"`
	Statement string `json:"statement_file"`
	Approvals int    `json:"approvals"`
	Plan      struct {
		IntentHash string          `json:"intent_hash"`
		Summary    json.RawMessage `json:"summary"`
		Decision   struct {
			Allowed bool   `json:"allowed"`
			Rule    string `json:"rule"`
			Reason  string `json:"reason"`
		} `json:"decision"`
	} `json:"plan"`
	prev *wire.TxOut
}

func (r *requestOut) describe() string {
	var sum struct {
		Bitcoin *struct {
			FeeSat  json.Number `json:"feeSat"`
			Outputs []struct {
				Address   string      `json:"address"`
				AmountSat json.Number `json:"amountSat"`
				Change    bool        `json:"change"`
			} `json:"outputs"`
		} `json:"bitcoin"`
	}
	lines := []string{fmt.Sprintf("request %s (intent %s…)", r.ID, r.Plan.IntentHash[:16])}
	if json.Unmarshal(r.Plan.Summary, &sum) == nil && sum.Bitcoin != nil {
		for _, o := range sum.Bitcoin.Outputs {
			what := "pay"
			if o.Change {
				what = "change"
			}
			lines = append(lines, fmt.Sprintf("  %-6s %s %s sat", what, o.Address, o.AmountSat))
		}
		lines = append(lines, fmt.Sprintf("  fee    %s sat", sum.Bitcoin.FeeSat))
	}
	lines = append(lines, fmt.Sprintf("site b's policy: %s", r.Plan.Decision.Reason),
		"statement to approve: "+r.Statement)
	return strings.Join(lines, "\n")
}

// createRequest makes a withdrawal request of amount satoshi on site via.
func (d *demo) createRequest(ctx context.Context, via *site, key *keygenOut, amount int64) (requestOut, error) {
	p, prev, err := demoPSBT(key, amount)
	if err != nil {
		return requestOut{}, err
	}
	var req requestOut
	if err := d.request(ctx, via, &req, "create", "--key", key.KeyID, "--psbt", p, "--expires", "1h"); err != nil {
		return requestOut{}, err
	}
	req.prev = prev
	return req, nil
}

// approve has each approver sign the request's statement with ssh-keygen
// and adds the signature to the request.
func (d *demo) approve(ctx context.Context, via *site, req *requestOut, names ...string) (string, error) {
	var lines []string
	for _, name := range names {
		sig := filepath.Join(filepath.Dir(d.approvers[name]), name+"-"+req.ID+".sig")
		cmd := exec.CommandContext(ctx, "ssh-keygen", "-Y", "sign", "-n", "keyquorum-approval", "-f", d.approvers[name], req.Statement)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("ssh-keygen -Y sign for %s: %w: %s", name, err, out)
		}
		if err := os.Rename(req.Statement+".sig", sig); err != nil {
			return "", err
		}
		var after requestOut
		if err := d.request(ctx, via, &after, "approve", "--id", req.ID, "--signature", sig); err != nil {
			return "", err
		}
		verdict := "still refused"
		if after.Plan.Decision.Allowed {
			verdict = "allowed"
		}
		lines = append(lines, fmt.Sprintf("%s approved (ssh-keygen -Y sign -n keyquorum-approval): %s, %s", name, verdict, after.Plan.Decision.Reason))
		req.Plan.Decision = after.Plan.Decision
	}
	if !req.Plan.Decision.Allowed {
		return "", errors.New("the request is still refused after the approvals")
	}
	return strings.Join(lines, "\n"), nil
}

// signRequest signs an approved request and checks the transaction with
// btcd's script engine.
func (d *demo) signRequest(ctx context.Context, via *site, req *requestOut, signers []*site) (string, error) {
	var res struct {
		TxHex    string `json:"tx_hex"`
		TxID     string `json:"txid"`
		Complete bool   `json:"complete"`
	}
	start := time.Now()
	if err := d.request(ctx, via, &res, "sign", "--id", req.ID, "--signers", peerList(signers)); err != nil {
		return "", err
	}
	took := time.Since(start)
	if !res.Complete {
		return "", errors.New("the signed PSBT is not complete")
	}
	n, err := checkBitcoinTx(res.TxHex, res.TxID, req.prev)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("txid %s (%d bytes), signed by sites %s in %s\nverified with btcd txscript.NewEngine under StandardVerifyFlags",
		res.TxID, n, siteNames(signers), took.Round(time.Millisecond)), nil
}

// expectDenied asks for 0.45 BTC with both approvals and checks that the
// policy refuses it by rule btc-too-much.
func (d *demo) expectDenied(ctx context.Context, via *site, key *keygenOut, signers []*site) (string, error) {
	req, err := d.createRequest(ctx, via, key, 45_000_000)
	if err != nil {
		return "", err
	}
	if req.Plan.Decision.Allowed || req.Plan.Decision.Rule != "btc-too-much" {
		return "", fmt.Errorf("the policy decided %+v, want a denial by rule btc-too-much", req.Plan.Decision)
	}
	if _, err := d.approve(ctx, via, &req, "alice", "bob"); err == nil {
		return "", errors.New("the approvals made a denied request allowed")
	}
	var res struct{}
	err = d.request(ctx, via, &res, "sign", "--id", req.ID, "--signers", peerList(signers))
	var ke *kqError
	if !errors.As(err, &ke) || ke.Code != "policy" {
		return "", fmt.Errorf("signing the denied request: %v, want code policy", err)
	}
	first, _, _ := strings.Cut(ke.Msg, "\n")
	return fmt.Sprintf("request %s refused with code %q:\n%s", req.ID, ke.Code, first), nil
}

// request runs `kqnode request SUB` against site s.
func (d *demo) request(ctx context.Context, s *site, out any, sub string, args ...string) error {
	return d.kq(ctx, out, append([]string{"request", sub, "--home", s.home}, args...)...)
}

// verifyAudit runs kqnode audit verify on every site's log: every entry,
// and the checkpoint each site signed with its HSM identity key at
// shutdown.
func (d *demo) verifyAudit(ctx context.Context) (string, error) {
	var lines []string
	for _, s := range d.sites {
		var res struct {
			Entries    uint64 `json:"entries"`
			LatestSize uint64 `json:"latest_size"`
			Unsigned   uint64 `json:"unsigned_entries"`
		}
		if err := d.kq(ctx, &res, "audit", "verify", "--home", s.home); err != nil {
			return "", err
		}
		if res.Unsigned != 0 || res.Entries == 0 {
			return "", fmt.Errorf("site %s: %d entries, %d not covered by a checkpoint after shutdown", s.name, res.Entries, res.Unsigned)
		}
		lines = append(lines, fmt.Sprintf("site %s: %d entries, all covered by its signed checkpoint", s.name, res.Entries))
	}
	return strings.Join(lines, "\n"), nil
}
