package policy_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
)

// holds evaluates one condition as the only rule of a policy and reports
// whether the plan is allowed.
func holds(t *testing.T, cond string, plan *policy.Plan, v *policy.Velocity) (bool, error) {
	t.Helper()
	src := "keyquorum-policy 1\nlist ours " + coldBTC + " " + coldETH + "\nrule r allow\n  " + cond + "\nrule r2 allow-raw-digest\n  " + cond + "\n"
	pol := mustParse(t, "view", src)
	d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Velocity: v})
	if d == nil {
		t.Fatalf("%s: no decision: %v", cond, err)
	}
	if errors.Is(err, policy.ErrRuleFailed) {
		return false, err
	}
	return d.Allowed, nil
}

// TestEvaluate_WhatRulesSee checks each variable FORMAT.md documents
// against real intents.
func TestEvaluate_WhatRulesSee(t *testing.T) {
	k := newTestKey(t, "view")
	btc := derive(t, psbtIntent(t, k, []int64{50_000_000, 30_000_000}, []out{{coldBTC, 60_000_000}, {outsideBTC, 10_000_000}, {"", 9_990_000}}), k)
	eth := derive(t, ethIntent(t, 1, 9, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(1_500_000))), k)
	appr := derive(t, ethIntent(t, 1, 10, usdc, big.NewInt(0), erc20("approve(address,uint256)", outsideETH, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)))), k)
	val := derive(t, ethIntent(t, 1, 11, coldETH, ether(2.5), nil), k)
	typed := derive(t, typedIntent(t, []byte(permitJSON)), k)
	msg := derive(t, messageIntent(t, "Sign in to example.com"), k)
	raw := derive(t, rawIntent(t), k)
	v, _ := policy.NewVelocity(0)
	cases := []struct {
		plan *policy.Plan
		cond string
	}{
		{btc, `kind == "bitcoin-psbt" && chain == "bitcoin:mainnet"`},
		{btc, `key.id == "` + k.key.ID + `" && key.committee == ["12D3KooWsiteA", "12D3KooWsiteB", "12D3KooWsiteC"] && size(key.public_key) == 66`},
		{btc, `paths == ["m/0/0", "m/0/1"] && path == ""`},
		{btc, `now == timestamp("2026-12-04T09:30:00Z") && now.getHours() == 9`},
		{btc, `btc.network == "mainnet" && size(btc.txid) == 64 && btc.locktime == 0`},
		{btc, `btc.total_in_sat == 80000000 && btc.total_out_sat == 79990000 && btc.fee_sat == 10000`},
		{btc, `btc.sent_sat == 70000000 && btc.change_sat == 9990000`},
		{btc, `btc.destinations == ["` + coldBTC + `", "` + outsideBTC + `"]`},
		{btc, `btc.outputs[2].change && btc.outputs[2].path == "m/1/0" && !btc.outputs[0].change && btc.outputs[0].amount_sat == 60000000`},
		{btc, `btc.inputs.all(i, i.ours && i.type == "p2wpkh") && btc.inputs[1].path == "m/0/1" && btc.inputs[0].amount_sat == 50000000`},
		// 2 P2WPKH inputs, 3 P2WPKH outputs: 10 + 2*41 + 3*31 = 185 bytes
		// stripped, plus 2 witnesses of 108 and the marker: 185 + 55 = 240 vB.
		{btc, `btc.vsize == 240 && btc.fee_rate > 41.6 && btc.fee_rate < 41.7`},
		{btc, `spends.exists(s, s.asset == "btc:mainnet" && s.destination == "` + outsideBTC + `" && s.amount == 10000000.0) && size(spends) == 2`},
		{btc, `btc.destinations.exists(d, d in lists.ours) && !btc.destinations.all(d, d in lists.ours)`},
		{btc, `velocity.spent("btc:mainnet", duration("24h")) == 70000000.0 && velocity.spent_to("btc:mainnet", "` + coldBTC + `", duration("1h")) == 60000000.0`},
		{eth, `kind == "ethereum-transaction" && chain == "ethereum:1" && path == "m/44/60" && paths == ["m/44/60"]`},
		{eth, `eth.chain_id == 1 && eth.tx_type == "eip1559" && eth.nonce == 9 && eth.value_wei == 0.0 && eth.gas_limit == 90000`},
		{eth, `eth.max_fee_wei == 3.6e15 && eth.data_size == 68 && eth.selector == "a9059cbb" && !eth.contract_creation`},
		{eth, `eth.to == "` + usdc + `" && eth.from.startsWith("0x") && size(eth.from) == 42`},
		{eth, `eth.call.name == "transfer" && eth.call.method == "transfer(address,uint256)" && eth.call.token == "` + usdc + `"`},
		{eth, `eth.call.to == "` + coldETH + `" && eth.call.amount == 1500000.0 && !eth.call.unlimited && eth.destinations == ["` + coldETH + `"]`},
		{eth, `eth.call.to in lists.ours && velocity.spent_to("erc20:1:` + usdc + `", "` + coldETH + `", duration("24h")) == 1500000.0`},
		{appr, `eth.call.name == "approve" && eth.call.unlimited && eth.call.spender == "` + outsideETH + `" && eth.call.amount > 1e76 && eth.destinations == ["` + outsideETH + `"]`},
		{appr, `size(spends) == 0`},
		{val, `eth.value_wei == 2.5e18 && eth.value_wei <= 5e18 && eth.call.name == "" && eth.destinations == ["` + coldETH + `"]`},
		{val, `velocity.spent("eth:1", duration("24h")) == 2.5e18`},
		{typed, `kind == "ethereum-typed-data" && chain == "ethereum:1" && typed.primary_type == "Permit"`},
		{typed, `typed.domain.name == "USD Coin" && typed.domain.version == "2" && typed.domain.chain_id == 1 && typed.domain.verifying_contract == "` + usdc + `"`},
		{typed, `typed.message.spender == "` + outsideETH + `" && typed.message.value == "1000000000"`},
		{msg, `kind == "ethereum-personal-message" && chain == "ethereum" && message.text.startsWith("Sign in to ") && message.size == 22`},
		{msg, `message.hex == "5369676e20696e20746f206578616d706c652e636f6d"`},
		{raw, `kind == "raw-digest" && chain == "" && size(raw.digest) == 64 && path == "m/7" && size(warnings) == 1`},
		{btc, `approvers == []`},
	}
	for _, c := range cases {
		ok, err := holds(t, c.cond, c.plan, v)
		if err != nil || !ok {
			t.Errorf("%s: %s does not hold (%v)", c.plan.Intent.Kind(), c.cond, err)
		}
	}
}

// TestEvaluate_RawDigestsNeedAnExplicitRule: a catch-all allow rule does
// not let a raw digest through; only allow-raw-digest does, and it matches
// nothing else.
func TestEvaluate_RawDigestsNeedAnExplicitRule(t *testing.T) {
	k := newTestKey(t, "raw")
	raw, msg := derive(t, rawIntent(t), k), derive(t, messageIntent(t, "hello"), k)
	catchAll := mustParse(t, "catch-all", "keyquorum-policy 1\nrule everything allow\n  true\n")
	d, err := catchAll.Evaluate(context.Background(), raw, policy.Input{Now: testNow})
	if !errors.Is(err, policy.ErrNoRule) || d.Allowed || !strings.Contains(d.Reason, "allow-raw-digest") {
		t.Fatalf("raw digest under a catch-all allow: %v", err)
	}
	if _, err := catchAll.Evaluate(context.Background(), msg, policy.Input{Now: testNow}); err != nil {
		t.Fatalf("message under a catch-all allow: %v", err)
	}
	rawOnly := mustParse(t, "raw-only", "keyquorum-policy 1\nrule raw allow-raw-digest\n  true\n")
	if d, err := rawOnly.Evaluate(context.Background(), raw, policy.Input{Now: testNow}); err != nil || d.Rule != "raw" {
		t.Fatalf("raw digest under allow-raw-digest: %v", err)
	}
	if _, err := rawOnly.Evaluate(context.Background(), msg, policy.Input{Now: testNow}); !errors.Is(err, policy.ErrNoRule) {
		t.Fatalf("message under allow-raw-digest only: %v", err)
	}
	denyFirst := mustParse(t, "deny-first", "keyquorum-policy 1\nrule no deny\n  true\nrule raw allow-raw-digest\n  true\n")
	if _, err := denyFirst.Evaluate(context.Background(), raw, policy.Input{Now: testNow}); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("deny rules apply to raw digests: %v", err)
	}
}

// TestEvaluate_FailsClosed: a rule that cannot be evaluated refuses, even
// when a later rule would allow; so does an empty policy.
func TestEvaluate_FailsClosed(t *testing.T) {
	k := newTestKey(t, "closed")
	eth := derive(t, ethIntent(t, 1, 0, coldETH, ether(1), nil), k)
	ctx := context.Background()
	cases := map[string]string{
		"field of another kind":                "btc.sent_sat > 100000000",
		"window beyond the record's retention": `velocity.spent("eth:1", duration("2000h")) > 0.0`,
		"cost budget exhausted":                "lists.big.all(a, lists.big.all(b, a != b || a == b))",
		"missing message field":                `typed.message.spender == "x"`,
	}
	big := "list big"
	for i := 0; i < 500; i++ {
		big += " i" + itoa(i)
	}
	for name, cond := range cases {
		t.Run(name, func(t *testing.T) {
			pol := mustParse(t, "closed", "keyquorum-policy 1\n"+big+"\nrule broken deny\n  "+cond+"\nrule everything allow\n  true\n")
			v, _ := policy.NewVelocity(0)
			d, err := pol.Evaluate(ctx, eth, policy.Input{Now: testNow, Velocity: v})
			if !errors.Is(err, policy.ErrRuleFailed) || d.Allowed || d.Rule != "broken" {
				t.Fatalf("decision %v, err %v; want rule broken to fail and refuse", d, err)
			}
		})
	}
	empty := mustParse(t, "empty", "keyquorum-policy 1\n")
	if _, err := empty.Evaluate(ctx, eth, policy.Input{Now: testNow}); !errors.Is(err, policy.ErrNoRule) {
		t.Fatalf("empty policy: %v", err)
	}
}

func TestEvaluate_PureAndContextAware(t *testing.T) {
	pol := mustParse(t, "velocity", velocityPolicy)
	k := newTestKey(t, "pure")
	plan := derive(t, psbtIntent(t, k, []int64{70_000_000}, []out{{coldBTC, 60_000_000}}), k)
	v, _ := policy.NewVelocity(0)
	for range 3 {
		d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Velocity: v})
		if err != nil || !d.Allowed || d.Rule != "daily-limit" {
			t.Fatalf("%v", err)
		}
	}
	if v.Len() != 0 {
		t.Fatal("Evaluate recorded a spend")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := pol.Evaluate(ctx, plan, policy.Input{Now: testNow}); d != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v %v", d, err)
	}
	if _, err := pol.Evaluate(context.Background(), plan, policy.Input{}); err == nil {
		t.Fatal("evaluation without a clock")
	}
	if _, err := pol.Authorize(context.Background(), plan, policy.Input{Now: testNow}); !errors.Is(err, policy.ErrVelocity) {
		t.Fatalf("Authorize without a record: %v", err)
	}
	if _, err := pol.Evaluate(context.Background(), nil, policy.Input{Now: testNow}); err == nil {
		t.Fatal("evaluation without a plan")
	}
	d, _ := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow.Add(time.Hour)})
	if !d.Allowed || d.Err() != nil || !strings.HasPrefix(d.String(), "allowed by rule daily-limit") {
		t.Fatalf("decision %v", d)
	}
}

// TestEvaluate_VelocityCallsAreCharged: a rule that asks the velocity
// record about each destination of a PSBT with hundreds of outputs, against
// a record of 100,000 spends, would scan the record hundreds of times. Each
// call is charged by the record's size, so the rule exhausts its budget and
// refuses instead.
func TestEvaluate_VelocityCallsAreCharged(t *testing.T) {
	k := newTestKey(t, "charged")
	outs := make([]out, 300)
	net, _ := wallet.Network("mainnet")
	for i := range outs {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		a, err := btcutil.NewAddressWitnessPubKeyHash(h[:20], net)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = out{a.EncodeAddress(), 1000}
	}
	plan := derive(t, psbtIntent(t, k, []int64{50_000_000}, outs), k)
	vel := bigVelocity(t, 100_000)
	pol := mustParse(t, "charged", "keyquorum-policy 1\nrule per-destination allow\n"+
		"  btc.destinations.all(d, velocity.spent_to(\"btc:mainnet\", d, duration(\"24h\")) < 1e9)\n")
	d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Velocity: vel})
	if !errors.Is(err, policy.ErrRuleFailed) || d.Allowed || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("decision %v, err %v; want the rule to exhaust its cost budget", d, err)
	}
	small, _ := policy.NewVelocity(0)
	if _, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Velocity: small}); err != nil {
		t.Fatalf("with an empty record the rule passes: %v", err)
	}
}

// bigVelocity builds a record of n spends by another key, an hour old.
func bigVelocity(t *testing.T, n int) *policy.Velocity {
	t.Helper()
	b := append([]byte("KQVELOCITY"), 1)
	b = binary.BigEndian.AppendUint64(b, uint64(policy.DefaultRetention))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	at := testNow.Add(-time.Hour).UnixNano()
	for i := 0; i < n; i++ {
		b = binary.BigEndian.AppendUint64(b, uint64(at))
		b = append(b, make([]byte, 32)...)
		b = append(b, 5, 'o', 't', 'h', 'e', 'r')
		b = append(b, 11)
		b = append(b, "btc:mainnet"...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(outsideBTC)))
		b = append(b, outsideBTC...)
		b = append(b, 1, 1)
	}
	v := new(policy.Velocity)
	if err := v.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEvaluate_RefusesPlansNotMadeByDerive(t *testing.T) {
	pol := mustParse(t, "all", "keyquorum-policy 1\nrule r allow\n  true\nrule raw allow-raw-digest\n  true\n")
	k := newTestKey(t, "manual")
	good := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 40_000_000}}), k)
	raw := derive(t, rawIntent(t), k)
	broken := map[string]*policy.Plan{
		"zero plan":               {},
		"no digests":              {Intent: raw.Intent, Summary: raw.Summary},
		"summary of another kind": {Intent: good.Intent, Summary: raw.Summary, Digests: good.Digests},
		"bitcoin summary missing": {Intent: good.Intent, Summary: &wallet.Summary{Kind: wallet.KindBitcoinPSBT}, Digests: good.Digests},
		"message summary missing": {Intent: messageIntent(t, "x"), Summary: &wallet.Summary{Kind: wallet.KindEthereumPersonalMessage}, Digests: good.Digests},
	}
	for name, p := range broken {
		if d, err := pol.Evaluate(context.Background(), p, policy.Input{Now: testNow}); d != nil || !errors.Is(err, policy.ErrIntent) {
			t.Errorf("%s: decision %v, err %v", name, d, err)
		}
	}
}
