package suite

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
)

const (
	// envLoadGG20 is the number of concurrent GG20 requests per initiator
	// of the load benchmark (default 50).
	envLoadGG20 = "KQBENCH_LOAD_GG20"
	// envLoadGG18 is the number of concurrent GG18 requests of the load
	// benchmark (default 20).
	envLoadGG18 = "KQBENCH_LOAD_GG18"

	// loadPath is the derivation path of the load benchmark's
	// presignatures: pools of their own, apart from those the online
	// benchmarks sign with.
	loadPath = "m/7/7"
	// loadSeed names the one digest every GG20 request of the load
	// benchmark signs: requests run at once, so which presignature signs
	// which request changes from run to run, and with one digest a
	// presignature used again after a restore gives the same signature.
	loadSeed = "load"
	// loadGG18Seed names the digests of its GG18 requests.
	loadGG18Seed = "load-gg18"
)

// loadInitiators are the sites that initiate GG20 requests in the load
// benchmark, each from its own pool.
var loadInitiators = []int{0, 1}

// ensureLoadPool makes sure the snapshot "load" holds, under loadPath,
// need[i] ready presignatures in the own pool of loadInitiators[i].
func ensureLoadPool(b *testing.B, need []int) {
	b.Helper()
	key := mainKey(b)
	want := fmt.Sprint(need)
	if lab.Value("load-ready") == want && lab.HasSnapshot("load") {
		return
	}
	stopDeployment()
	if lab.HasSnapshot("load") {
		if err := lab.Restore("load"); err != nil {
			b.Fatal(err)
		}
	}
	d := deploy(b, driver.InProcess, trio)
	for i, site := range loadInitiators {
		have := do(b, d, party.Request{Op: party.OpPool, Party: site, KeyID: key, Parties: signers, KeyPath: loadPath}).Done
		if have < need[i] {
			b.Logf("making %d presignatures for site %d's load requests", need[i]-have, site)
			do(b, d, party.Request{Op: party.OpPresign, Party: site, KeyID: key, Parties: signers, KeyPath: loadPath, Count: need[i] - have, Parallel: 2})
		}
	}
	stopDeployment()
	if err := lab.Snapshot("load"); err != nil {
		b.Fatal(err)
	}
	if err := lab.SetValue("load-ready", want); err != nil {
		b.Fatal(err)
	}
}

// loadRun is what one load run measured.
type loadRun struct {
	wall      time.Duration
	done, all int
	busy      int
	errors    []string
	latencies []time.Duration
	burned    uint64
	peakKiB   []int64 // per site, in site order
	cpu       time.Duration
}

// add merges another run's figures into r.
func (r *loadRun) add(o loadRun) {
	r.wall += o.wall
	r.done += o.done
	r.all += o.all
	r.busy += o.busy
	r.latencies = append(r.latencies, o.latencies...)
	r.burned += o.burned
	r.cpu += o.cpu
	for len(r.peakKiB) < len(o.peakKiB) {
		r.peakKiB = append(r.peakKiB, 0)
	}
	for i, p := range o.peakKiB {
		r.peakKiB[i] = max(r.peakKiB[i], p)
	}
	for _, e := range o.errors {
		if !slices.Contains(r.errors, e) && len(r.errors) < 5 {
			r.errors = append(r.errors, e)
		}
	}
}

// report reports the run's figures as the benchmark's metrics: sig/s
// (successful requests per second of wall time), p50-ms and p99-ms (of
// every request), success-% , busy (requests refused as busy), burned
// (presignatures consumed by failed requests), cores (CPU time of the
// three processes over wall time) and peak-RSS-MiB-siteN (each process's
// VmHWM).
func (r *loadRun) report(b *testing.B) {
	b.Helper()
	for _, e := range r.errors {
		b.Logf("failed request: %s", e)
	}
	secs := r.wall.Seconds()
	b.ReportMetric(float64(r.done)/secs, "sig/s")
	b.ReportMetric(100*float64(r.done)/float64(max(1, r.all)), "success-%")
	b.ReportMetric(float64(r.busy), "busy")
	b.ReportMetric(float64(r.burned), "burned")
	b.ReportMetric(r.cpu.Seconds()/secs, "cores")
	slices.Sort(r.latencies)
	b.ReportMetric(percentile(r.latencies, 0.50), "p50-ms")
	b.ReportMetric(percentile(r.latencies, 0.99), "p99-ms")
	for i, p := range r.peakKiB {
		b.ReportMetric(float64(p)/1024, "peak-RSS-MiB-site"+strconv.Itoa(i))
	}
}

// percentile returns the q-quantile of sorted durations, in ms.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// loadDeploy restores the load snapshot, starts the three sites as
// processes and has every initiator prepare its tables and sign once, so
// that nothing timed pays for set-up.
func loadDeploy(b *testing.B, key string, initiators []int) *driver.Deployment {
	b.Helper()
	stopDeployment()
	if err := lab.Restore("load"); err != nil {
		b.Fatal(err)
	}
	// Keys made after the snapshot are gone with it.
	if err := lab.SetValue("reshare-key", ""); err != nil {
		b.Fatal(err)
	}
	d := deploy(b, driver.Processes, trio)
	for _, site := range initiators {
		do(b, d, party.Request{Op: party.OpPrepare, Party: site, KeyID: key, KeyPath: loadPath})
		do(b, d, party.Request{Op: party.OpOnline, Party: site, KeyID: key, Parties: signers, KeyPath: loadPath, Seed: loadSeed, Count: 1})
	}
	return d
}

// loadMeasure runs reqs, one per initiating site and all at once, and
// returns what they did: wall time from the first request sent to the
// last answer, the pools' burned counters and each process's peak memory
// and CPU time over the run.
func loadMeasure(b *testing.B, d *driver.Deployment, key string, reqs []party.Request) loadRun {
	b.Helper()
	burned := func() uint64 {
		var n uint64
		for _, r := range reqs {
			if r.Op == party.OpOnline {
				n += do(b, d, party.Request{Op: party.OpPool, Party: r.Party, KeyID: key, Parties: signers, KeyPath: loadPath}).Burned
			}
		}
		return n
	}
	cpu := func() time.Duration {
		var t time.Duration
		for _, r := range each(b, d, party.Request{Op: party.OpMemory}) {
			t += r.CPU
		}
		return t
	}
	burned0 := burned()
	each(b, d, party.Request{Op: party.OpResetMemory})
	cpu0 := cpu()

	resps := make([]*party.Response, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for i, r := range reqs {
		wg.Go(func() { resps[i], errs[i] = d.Do(ctx, r) })
	}
	wg.Wait()
	run := loadRun{wall: time.Since(start)}
	b.StopTimer()
	for i, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
		run.done += resps[i].Done
		run.all += reqs[i].Count
		run.busy += resps[i].Busy
		run.latencies = append(run.latencies, resps[i].Latencies...)
		run.errors = append(run.errors, resps[i].Errors...)
	}
	run.burned = burned() - burned0
	run.cpu = cpu() - cpu0
	for _, r := range each(b, d, party.Request{Op: party.OpMemory}) {
		run.peakKiB = append(run.peakKiB, r.PeakKiB)
	}
	return run
}

// BenchmarkLoad measures a 2-of-3 committee under concurrent requests,
// each site in its own process over libp2p: GG20 online signatures from
// two initiators at once (KQBENCH_LOAD_GG20 requests each, default 50, all
// at once, each from its own pool), the same number from one initiator,
// GG18 signatures all at once (KQBENCH_LOAD_GG18, default 20) and the
// same GG18 signatures one at a time. One operation is one such run;
// the metrics are described at loadRun.report.
func BenchmarkLoad(b *testing.B) {
	per := envInt(b, envLoadGG20, 50)
	gg18 := envInt(b, envLoadGG18, 20)
	// One presignature per initiator warms up each deployment.
	ensureLoadPool(b, []int{len(loadInitiators)*per + 1, per + 1})
	key := mainKey(b)
	online := func(site, n int) party.Request {
		return party.Request{Op: party.OpOnline, Party: site, KeyID: key, Parties: signers, KeyPath: loadPath,
			Seed: loadSeed, Count: n, Concurrent: n}
	}
	cases := []struct {
		name       string
		initiators []int
		reqs       []party.Request
	}{
		{"proto=gg20/initiators=2", loadInitiators, []party.Request{online(0, per), online(1, per)}},
		{"proto=gg20/initiators=1", loadInitiators[:1], []party.Request{online(0, len(loadInitiators)*per)}},
		{"proto=gg18/concurrent=" + strconv.Itoa(gg18), nil, []party.Request{
			{Op: party.OpSign, Party: 0, KeyID: key, Parties: signers, Seed: loadGG18Seed, Count: gg18, Concurrent: gg18}}},
		{"proto=gg18/concurrent=1", nil, []party.Request{
			{Op: party.OpSign, Party: 0, KeyID: key, Parties: signers, Seed: loadGG18Seed, Count: gg18, Concurrent: 1}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var total loadRun
			for b.Loop() {
				b.StopTimer()
				var d *driver.Deployment
				if strings.Contains(c.name, "gg20") {
					d = loadDeploy(b, key, c.initiators)
				} else {
					d = deploy(b, driver.Processes, trio)
					warmUp(b, d, key)
				}
				total.add(loadMeasure(b, d, key, c.reqs))
				b.StartTimer()
			}
			total.report(b)
		})
	}
}
