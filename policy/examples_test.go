package policy_test

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/policy"
)

// exampleCase is one intent evaluated against an example policy.
type exampleCase struct {
	name      string
	intent    func(t *testing.T, k *testKey) *policy.Intent
	approvers []string // who approves, by name in the policy
	rule      string   // the rule that decides, "" for none
	want      error    // nil: allowed; else the refusal kind
}

func TestExamplePolicy_Treasury(t *testing.T) {
	src, keys := approvers(t, readExample(t, "treasury"))
	pol := mustParse(t, "treasury", src)
	btc := func(inputs []int64, outs ...out) func(*testing.T, *testKey) *policy.Intent {
		return func(t *testing.T, k *testKey) *policy.Intent { return psbtIntent(t, k, inputs, outs) }
	}
	eth := func(chain int64, to string, value *big.Int, data []byte) func(*testing.T, *testKey) *policy.Intent {
		return func(t *testing.T, k *testKey) *policy.Intent { return ethIntent(t, chain, 1, to, value, data) }
	}
	cases := []exampleCase{
		{"btc 0.3 to cold storage, one operator", btc([]int64{80_000_000}, out{coldBTC, 30_000_000}, out{"", 49_990_000}), []string{"alice"}, "btc-allowlisted", nil},
		{"btc 0.3 to cold storage and exchange, two inputs", btc([]int64{20_000_000, 20_000_000}, out{coldBTC, 10_000_000}, out{exchangeBTC, 20_000_000}, out{"", 9_990_000}), []string{"bob"}, "btc-allowlisted", nil},
		{"btc 0.3 to cold storage, no approval", btc([]int64{80_000_000}, out{coldBTC, 30_000_000}, out{"", 49_990_000}), nil, "btc-allowlisted", policy.ErrApprovalsMissing},
		{"btc to cold storage, a risk officer is not an operator", btc([]int64{80_000_000}, out{coldBTC, 30_000_000}, out{"", 49_990_000}), []string{"carol"}, "btc-allowlisted", policy.ErrApprovalsMissing},
		{"btc 0.3 outside the allowlist, one operator", btc([]int64{80_000_000}, out{outsideBTC, 30_000_000}, out{"", 49_990_000}), []string{"alice"}, "btc-other", policy.ErrApprovalsMissing},
		{"btc 0.3 outside the allowlist, two operators and risk", btc([]int64{80_000_000}, out{outsideBTC, 30_000_000}, out{"", 49_990_000}), []string{"alice", "bob", "carol"}, "btc-other", nil},
		{"btc 0.3 outside the allowlist, two operators, no risk", btc([]int64{80_000_000}, out{outsideBTC, 30_000_000}, out{"", 49_990_000}), []string{"alice", "erin"}, "btc-other", policy.ErrApprovalsMissing},
		{"btc 1.0 to cold storage is over the one-operator limit", btc([]int64{150_000_000}, out{coldBTC, 100_000_000}, out{"", 49_990_000}), []string{"alice", "erin", "dave"}, "btc-other", nil},
		{"btc fee of 0.5 BTC", btc([]int64{80_000_000}, out{coldBTC, 30_000_000}), []string{"alice", "bob", "carol"}, "btc-fee-cap", policy.ErrDenied},
		{"eth 1 ETH to our address, one operator", eth(1, coldETH, ether(1), nil), []string{"erin"}, "eth-allowlisted", nil},
		{"eth 6 ETH to our address, one operator", eth(1, coldETH, ether(6), nil), []string{"erin"}, "eth-other", policy.ErrApprovalsMissing},
		{"eth 1 ETH elsewhere, full quorum", eth(1, outsideETH, ether(1), nil), []string{"alice", "bob", "dave"}, "eth-other", nil},
		{"usdc 500,000 to our address, one operator", eth(1, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(500_000e6))), []string{"bob"}, "stablecoin-allowlisted", nil},
		{"usdc 2,000,000 to our address is over the daily limit", eth(1, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(2_000_000e6))), []string{"bob"}, "eth-other", policy.ErrApprovalsMissing},
		{"usdc unlimited approval", eth(1, usdc, big.NewInt(0), erc20("approve(address,uint256)", outsideETH, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)))), []string{"alice", "bob", "carol"}, "no-unlimited-approvals", policy.ErrDenied},
		{"eth on another chain", eth(11155111, coldETH, ether(1), nil), []string{"alice", "bob", "carol"}, "", policy.ErrNoRule},
		{"eip-2612 permit", func(t *testing.T, k *testKey) *policy.Intent { return typedIntent(t, []byte(permitJSON)) }, []string{"alice", "bob", "carol"}, "no-permits", policy.ErrDenied},
		{"other typed data", func(t *testing.T, k *testKey) *policy.Intent { return typedIntent(t, mailJSON(t)) }, []string{"alice", "bob", "carol"}, "", policy.ErrNoRule},
		{"sign-in message", func(t *testing.T, k *testKey) *policy.Intent {
			return messageIntent(t, "Sign in to example.com\nNonce: 42")
		}, nil, "sign-in-messages", nil},
		{"other message", func(t *testing.T, k *testKey) *policy.Intent { return messageIntent(t, "I owe you 100 BTC") }, []string{"alice"}, "", policy.ErrNoRule},
		{"raw digest", func(t *testing.T, k *testKey) *policy.Intent { return rawIntent(t) }, []string{"alice", "bob", "carol"}, "", policy.ErrNoRule},
	}
	runExampleCases(t, pol, keys, cases)
}

func TestExamplePolicy_AllowRawDigests(t *testing.T) {
	raw := readExample(t, "allow-raw-digests")
	first, _, _ := strings.Cut(string(raw), "\n")
	if !strings.HasPrefix(first, "#") || !strings.Contains(first, "FOR TESTS AND DEMOS ONLY") {
		t.Fatalf("first line %q must say the policy is for tests and demos only", first)
	}
	pol := mustParse(t, "allow-raw-digests", string(raw))
	cases := []exampleCase{
		{"raw digest", func(t *testing.T, k *testKey) *policy.Intent { return rawIntent(t) }, nil, "raw-digests", nil},
		{"btc anywhere", func(t *testing.T, k *testKey) *policy.Intent {
			return psbtIntent(t, k, []int64{80_000_000}, []out{{outsideBTC, 79_000_000}})
		}, nil, "everything", nil},
		{"eth anywhere", func(t *testing.T, k *testKey) *policy.Intent { return ethIntent(t, 5, 0, outsideETH, ether(100), nil) }, nil, "everything", nil},
		{"permit", func(t *testing.T, k *testKey) *policy.Intent { return typedIntent(t, []byte(permitJSON)) }, nil, "everything", nil},
		{"message", func(t *testing.T, k *testKey) *policy.Intent { return messageIntent(t, "hello") }, nil, "everything", nil},
	}
	runExampleCases(t, pol, nil, cases)
}

func runExampleCases(t *testing.T, pol *policy.Policy, keys map[string]approverKey, cases []exampleCase) {
	t.Helper()
	k := newTestKey(t, "examples")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := derive(t, c.intent(t, k), k)
			var as []policy.Approval
			for _, who := range c.approvers {
				as = append(as, keys[who].approve(t, plan.Statement(testNow.Add(time.Hour)).Text()))
			}
			vel, _ := policy.NewVelocity(0)
			d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: as, Velocity: vel})
			if d == nil {
				t.Fatalf("no decision: %v", err)
			}
			t.Log(d)
			if d.Rule != c.rule {
				t.Fatalf("decided by rule %q, want %q (%v)", d.Rule, c.rule, d)
			}
			if len(d.Rejected) != 0 {
				t.Fatalf("approvals rejected: %v", d.Rejected)
			}
			if c.want == nil {
				if err != nil || !d.Allowed {
					t.Fatalf("refused: %v", err)
				}
				for _, who := range d.Counted {
					if !slices.Contains(c.approvers, who) {
						t.Fatalf("counted %s, who did not approve", who)
					}
				}
				return
			}
			var refused *policy.RefusedError
			if d.Allowed || !errors.As(err, &refused) || !errors.Is(err, c.want) || !errors.Is(err, policy.ErrRefused) {
				t.Fatalf("decision %v, err %v; want a refusal wrapping %v", d, err, c.want)
			}
			if refused.Rule != c.rule || !errors.Is(d.Err(), c.want) {
				t.Fatalf("refusal names rule %q, want %q", refused.Rule, c.rule)
			}
		})
	}
}

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustParse(t testing.TB, name string, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
