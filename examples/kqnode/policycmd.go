package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/policy"
)

type policyCheckResult struct {
	Name      string   `json:"name"`
	Rules     []string `json:"rules"`
	Approvers []string `json:"approvers"`
}

type policyTestResult struct {
	Policy   string       `json:"policy"`
	KeyID    string       `json:"key_id"`
	Kind     string       `json:"kind"`
	Summary  string       `json:"summary"`
	Decision decisionJSON `json:"decision"`
}

// cmdPolicy checks a policy file, or evaluates one against an intent
// offline: the file need not be the one the site runs with, so a policy
// change can be tried before it is deployed.
func cmdPolicy(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode policy check --policy FILE | kqnode policy test --policy FILE --home DIR --key ID (INTENT FLAGS | --request ID) [--at TIME]"
	if len(args) == 0 {
		return usageErrorf("policy: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "check":
		return cmdPolicyCheck(e, args[1:])
	case "test":
		return cmdPolicyTest(ctx, e, args[1:])
	}
	return usageErrorf("policy: unknown subcommand %q\nusage: %s", args[0], usage)
}

func readPolicyFile(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, usageErrorf("--policy is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--policy: %v", err)
	}
	if len(b) > maxPolicySize {
		return nil, fmt.Errorf("%w: policy file %s is larger than %d bytes", errBadRequest, path, maxPolicySize)
	}
	p, err := policy.Parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return p, nil
}

func cmdPolicyCheck(e *env, args []string) error {
	fs := newFlagSet("policy check", "kqnode policy check --policy FILE [--json]")
	file := fs.String("policy", "", "the policy file (required)")
	asJSON := fs.Bool("json", false, "print exactly one JSON object on stdout (also on failure)")
	e.json = slices.Contains(args, "--json")
	if err := fs.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *asJSON
	p, err := readPolicyFile(*file)
	if err != nil {
		return err
	}
	res := policyCheckResult{Name: p.Name(), Rules: []string{}, Approvers: p.Approvers()}
	for _, r := range p.Rules() {
		res.Rules = append(res.Rules, r.Name+" "+string(r.Action))
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "%s: %d rules, %d approvers\n", res.Name, len(res.Rules), len(res.Approvers))
	for _, r := range res.Rules {
		fmt.Fprintf(e.stdout, "  rule %s\n", r)
	}
	return nil
}

func cmdPolicyTest(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("policy test", "kqnode policy test --policy FILE --home DIR --key ID (--psbt B64|@FILE | --tx HEX|@FILE --chain-id N | --digest HEX | --request ID) [--at RFC3339] [--json]")
	file := f.String("policy", "", "the policy file to evaluate (required; need not be the one the site runs with)")
	key := f.String("key", "", "key ID (required unless --request)")
	reqID := f.String("request", "", "evaluate a request of this home, with its approvals, instead of intent flags")
	at := f.String("at", "", "evaluate at this time (RFC 3339) instead of now")
	fl := addIntentFlags(f)
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	pol, err := readPolicyFile(*file)
	if err != nil {
		return err
	}
	now := time.Now()
	if *at != "" {
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageErrorf("--at %q: %v", *at, err)
		}
	}
	var (
		in        *policy.Intent
		approvals []policy.Approval
	)
	if *reqID != "" {
		rf, aps, _, err := loadRequest(c.home.dir, *reqID)
		if err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(rf.Intent)
		if err != nil {
			return fmt.Errorf("request %s: intent: %w", *reqID, err)
		}
		if in, err = policy.ParseIntent(raw); err != nil {
			return fmt.Errorf("request %s: %w", *reqID, err)
		}
		if approvals, err = parseApprovals(aps); err != nil {
			return err
		}
		*key = rf.KeyID
	} else if in, err = fl.intent(); err != nil {
		return err
	}
	if *key == "" {
		return usageErrorf("policy test: --key is required\nusage: %s", f.synopsis)
	}
	// The key's public data comes from the site; the evaluation is local.
	var st statusResult
	if err := c.call(ctx, pathStatus, nil, &st); err != nil {
		return err
	}
	var k policy.Key
	for _, ks := range st.Keys {
		if ks.KeyID != *key {
			continue
		}
		pub, err1 := hex.DecodeString(ks.PublicKey)
		cc, err2 := hex.DecodeString(ks.ChainCode)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("status of key %s: bad public key or chain code", *key)
		}
		k = policy.Key{ID: ks.KeyID, PublicKey: pub, ChainCode: cc}
		for _, p := range ks.Parties {
			k.Committee = append(k.Committee, string(p))
		}
		slices.Sort(k.Committee)
	}
	if k.ID == "" {
		return fmt.Errorf("%w: this site holds no key %s (kqnode status lists them)", errBadRequest, *key)
	}
	plan, err := policy.Derive(ctx, in, k)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	d, err := pol.Evaluate(ctx, plan, policy.Input{Now: now, Approvals: approvals})
	if err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	res := policyTestResult{Policy: pol.Name(), KeyID: k.ID, Kind: string(in.Kind()), Summary: string(plan.SummaryJSON),
		Decision: decisionJSON{Allowed: d.Allowed, Rule: d.Rule, Counted: d.Counted, Approvers: d.Approvers, Reason: d.Reason}}
	for _, q := range d.Required {
		res.Decision.Required = append(res.Decision.Required, q.String())
	}
	for _, r := range d.Rejected {
		res.Decision.Rejected = append(res.Decision.Rejected, r.Error())
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	verdict := "REFUSED"
	if d.Allowed {
		verdict = "ALLOWED"
	}
	rule := d.Rule
	if rule == "" {
		rule = "(no rule matched)"
	}
	fmt.Fprintf(e.stdout, "%s %s intent for key %s: %s by rule %s: %s\n", pol.Name(), in.Kind(), k.ID, verdict, rule, d.Reason)
	for _, r := range res.Decision.Rejected {
		fmt.Fprintf(e.stdout, "  rejected: %s\n", strings.TrimSpace(r))
	}
	return nil
}
