package policy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/policy"
)

func spent(t *testing.T, v *policy.Velocity, keyID, asset string, window time.Duration, now time.Time) int64 {
	t.Helper()
	s, err := v.Spent(keyID, asset, window, now)
	if err != nil {
		t.Fatal(err)
	}
	return s.Int64()
}

func TestVelocity_WindowsIdempotenceAndRetention(t *testing.T) {
	k, other := newTestKey(t, "vel"), newTestKey(t, "vel-other")
	v, err := policy.NewVelocity(48 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 10_000_000}, {"", 39_990_000}}), k)
	b := derive(t, psbtIntent(t, k, []int64{60_000_000}, []out{{coldBTC, 20_000_000}, {outsideBTC, 5_000_000}, {"", 34_990_000}}), k)
	c := derive(t, psbtIntent(t, other, []int64{60_000_000}, []out{{coldBTC, 1_000_000}}), other)
	t0 := testNow
	for _, r := range []struct {
		p  *policy.Plan
		at time.Time
	}{{a, t0}, {b, t0.Add(time.Hour)}, {a, t0.Add(2 * time.Hour)}, {c, t0.Add(time.Hour)}} {
		if err := v.Record(r.p, r.at); err != nil {
			t.Fatal(err)
		}
	}
	if got := spent(t, v, k.key.ID, "btc:mainnet", 24*time.Hour, t0.Add(2*time.Hour)); got != 35_000_000 {
		t.Fatalf("spent in 24h = %d, want 35,000,000 (a recorded twice counts once)", got)
	}
	if got := spent(t, v, k.key.ID, "btc:mainnet", 90*time.Minute, t0.Add(2*time.Hour)); got != 25_000_000 {
		t.Fatalf("spent in the last 90 minutes = %d, want 25,000,000", got)
	}
	if got := spent(t, v, k.key.ID, "btc:testnet", 24*time.Hour, t0.Add(2*time.Hour)); got != 0 {
		t.Fatalf("testnet spent = %d", got)
	}
	to, err := v.SpentTo("btc:mainnet", coldBTC, 24*time.Hour, t0.Add(2*time.Hour))
	if err != nil || to.Int64() != 31_000_000 {
		t.Fatalf("spent to cold storage by all keys = %v (%v), want 31,000,000", to, err)
	}
	if _, err := v.Spent(k.key.ID, "btc:mainnet", 49*time.Hour, t0); !errors.Is(err, policy.ErrVelocity) {
		t.Fatalf("window beyond retention: %v", err)
	}
	// Recording three days later drops everything older than 48 hours.
	d := derive(t, messageIntent(t, "no value"), k)
	if err := v.Record(d, t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v.Len() != 0 {
		t.Fatalf("%d spends kept beyond the retention", v.Len())
	}
}

func TestVelocity_ClockGoingBackStillCounts(t *testing.T) {
	k := newTestKey(t, "vel")
	v, _ := policy.NewVelocity(0)
	late := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 10_000_000}}), k)
	early := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 20_000_000}}), k)
	if err := v.Record(late, testNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := v.Record(early, testNow); err != nil {
		t.Fatal(err)
	}
	if got := spent(t, v, k.key.ID, "btc:mainnet", time.Minute, testNow); got != 10_000_000+20_000_000 {
		t.Fatalf("spent = %d; spends recorded after the clock must count", got)
	}
}

func TestVelocity_EncodingRoundTripAndRefusals(t *testing.T) {
	k := newTestKey(t, "vel")
	v, _ := policy.NewVelocity(10 * 24 * time.Hour)
	for i, amt := range []int64{1_000, 2_000, 3_000} {
		p := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, amt}}), k)
		if err := v.Record(p, testNow.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	e := derive(t, ethIntent(t, 1, 0, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, new(big.Int).Lsh(big.NewInt(1), 200))), k)
	if err := v.Record(e, testNow); err != nil {
		t.Fatal(err)
	}
	enc, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back policy.Velocity
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(again, enc) || back.Retention() != v.Retention() || back.Len() != 4 {
		t.Fatal("round trip changed the record")
	}
	if got := spent(t, &back, k.key.ID, "btc:mainnet", time.Hour, testNow.Add(2*time.Minute)); got != 6_000 {
		t.Fatalf("restored record: spent %d, want 6000", got)
	}
	tok, _ := back.SpentTo("erc20:1:"+usdc, coldETH, time.Hour, testNow)
	if tok.Cmp(new(big.Int).Lsh(big.NewInt(1), 200)) != 0 {
		t.Fatalf("restored token spend %v", tok)
	}

	corrupt := map[string][]byte{
		"empty":          nil,
		"bad magic":      append([]byte("KQVELOCITX"), enc[10:]...),
		"version 2":      append(append(append([]byte{}, enc[:10]...), 2), enc[11:]...),
		"truncated":      enc[:len(enc)-1],
		"trailing byte":  append(append([]byte{}, enc...), 0),
		"huge count":     append(append(append([]byte{}, enc[:19]...), 0xff, 0xff, 0xff, 0xff), enc[23:]...),
		"zero retention": append(append(append([]byte{}, enc[:11]...), 0, 0, 0, 0, 0, 0, 0, 0), enc[19:]...),
	}
	for name, b := range corrupt {
		t.Run(name, func(t *testing.T) {
			var w policy.Velocity
			if err := w.UnmarshalBinary(b); !errors.Is(err, policy.ErrVelocity) {
				t.Fatalf("err = %v, want ErrVelocity", err)
			}
		})
	}
}

func FuzzVelocityUnmarshal(f *testing.F) {
	k := newTestKey(f, "fuzz")
	v, _ := policy.NewVelocity(0)
	p, err := policy.Derive(context.Background(), rawIntentTB(f), k.key)
	if err != nil {
		f.Fatal(err)
	}
	_ = v.Record(p, testNow)
	enc, _ := v.MarshalBinary()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		var w policy.Velocity
		if w.UnmarshalBinary(b) != nil {
			return
		}
		again, err := w.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("accepted a record that does not re-encode to itself")
		}
	})
}

// velocityPolicy allows bitcoin spends while this key's daily total,
// this request included, stays within 1 BTC.
const velocityPolicy = `keyquorum-policy 1
rule daily-limit allow
  kind == "bitcoin-psbt" && velocity.spent("btc:mainnet", duration("24h")) <= 100000000
`

// TestAuthorize_VelocityLimitHoldsAcrossRestart spends 0.6 BTC, saves the
// record, restores it into a fresh Velocity as a restarted site would, and
// checks that a second 0.6 BTC is refused; with an empty record (a site that
// lost its record) the same request would pass.
func TestAuthorize_VelocityLimitHoldsAcrossRestart(t *testing.T) {
	pol := mustParse(t, "velocity", velocityPolicy)
	k := newTestKey(t, "vel")
	first := derive(t, psbtIntent(t, k, []int64{70_000_000}, []out{{coldBTC, 60_000_000}}), k)
	second := derive(t, psbtIntent(t, k, []int64{80_000_000}, []out{{coldBTC, 60_000_000}, {"", 19_000_000}}), k)
	v, _ := policy.NewVelocity(0)
	ctx := context.Background()
	if _, err := pol.Authorize(ctx, first, policy.Input{Now: testNow, Velocity: v}); err != nil {
		t.Fatal(err)
	}
	// Authorizing the same intent again (a retried session) is allowed and
	// not counted twice.
	if _, err := pol.Authorize(ctx, first, policy.Input{Now: testNow.Add(time.Minute), Velocity: v}); err != nil {
		t.Fatalf("retry of the same intent: %v", err)
	}
	saved, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}

	restored := new(policy.Velocity)
	if err := restored.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	later := policy.Input{Now: testNow.Add(3 * time.Hour), Velocity: restored}
	d, err := pol.Authorize(ctx, second, later)
	if !errors.Is(err, policy.ErrNoRule) || d.Allowed {
		t.Fatalf("second 0.6 BTC after restart: %v, want a refusal (no rule matches)", err)
	}
	empty, _ := policy.NewVelocity(0)
	if _, err := pol.Evaluate(ctx, second, policy.Input{Now: later.Now, Velocity: empty}); err != nil {
		t.Fatalf("with an empty record the request passes, so the test shows the restore: %v", err)
	}
	// A day later the first spend has left the window.
	if _, err := pol.Authorize(ctx, second, policy.Input{Now: testNow.Add(25 * time.Hour), Velocity: restored}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestAuthorize_ConcurrentRequestsShareOneAllowance runs eight 0.6 BTC
// requests at once against a 1 BTC daily limit: exactly one may pass.
func TestAuthorize_ConcurrentRequestsShareOneAllowance(t *testing.T) {
	// The long list makes each evaluation take long enough that the
	// requests overlap: every one of them reads the record before any
	// records its spend, unless Authorize serializes them.
	var filler strings.Builder
	filler.WriteString("list filler")
	for i := range 3000 {
		fmt.Fprintf(&filler, " f%d", i)
	}
	pol := mustParse(t, "velocity", velocityPolicy+"  && lists.filler.all(f, f != \"\")\n"+filler.String()+"\n")
	k := newTestKey(t, "vel")
	var plans []*policy.Plan
	for i := range 8 {
		plans = append(plans, derive(t, psbtIntent(t, k, []int64{70_000_000 + int64(i)}, []out{{coldBTC, 60_000_000}}), k))
	}
	start := make(chan struct{})
	for round := 0; round < 3; round++ {
		v, _ := policy.NewVelocity(0)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
		)
		for _, p := range plans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if d, err := pol.Authorize(context.Background(), p, policy.Input{Now: testNow, Velocity: v}); err == nil && d.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		start = make(chan struct{})
		if allowed != 1 {
			t.Fatalf("round %d: %d of %d requests of 0.6 BTC allowed under a 1 BTC limit", round, allowed, len(plans))
		}
	}
}

func TestVelocity_ZeroValueIsAnEmptyRecord(t *testing.T) {
	k := newTestKey(t, "vel")
	var v policy.Velocity
	if v.Retention() != policy.DefaultRetention {
		t.Fatalf("retention %s", v.Retention())
	}
	p := derive(t, psbtIntent(t, k, []int64{50_000_000}, []out{{coldBTC, 10_000_000}}), k)
	if err := v.Record(p, testNow); err != nil {
		t.Fatal(err)
	}
	if got := spent(t, &v, k.key.ID, "btc:mainnet", time.Hour, testNow); got != 10_000_000 {
		t.Fatalf("spent %d", got)
	}
}
