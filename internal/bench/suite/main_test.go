package suite

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/netns"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// Environment variables the suite reads (set by `go run ./internal/bench`).
const (
	// EnvDir is the directory that keeps the lab between runs.
	envDir = "KQBENCH_DIR"
	// envBatch is the number of digests per online batch (default 1000).
	envBatch = "KQBENCH_BATCH"
	// envPresign is the number of presignatures (and of tss-lib GG18
	// signatures) per operation of the throughput benchmark (default 64).
	envPresign = "KQBENCH_PRESIGN"
	// envProfile, when set, is a file to which the keyquorum process that
	// does the work writes a CPU profile of each benchmark's timed loop
	// (the last benchmark run wins).
	envProfile = "KQBENCH_PROFILE"
	// envTrace, with envProfile, is a file for a runtime execution trace
	// of the same process and loop.
	envTrace = "KQBENCH_TRACE"
)

// sites is the number of sites the lab holds: enough for 3-of-5.
const sites = 5

var (
	lab      *driver.Lab
	dep      *driver.Deployment // the running deployment, if any
	topology *netns.Topology    // the namespaces of mode Namespaced, if any
	ctx      = context.Background()

	trio    = []int{0, 1, 2} // the 2-of-3 committee
	signers = []int{0, 1}    // its signers for GG18 and GG20
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // no benchmarks asked for: nothing to set up
	}
	os.Exit(runBenchmarks(m))
}

func runBenchmarks(m *testing.M) int {
	dir := os.Getenv(envDir)
	if dir == "" {
		tmp, err := os.MkdirTemp("", "kqbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "suite:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	bin, err := proctest.Build(ctx, filepath.Join(dir, "bin"), "github.com/keyquorum/keyquorum/internal/bench/cmd/kqbenchparty", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		return 1
	}
	if lab, err = driver.OpenLab(ctx, filepath.Join(dir, "lab"), bin, sites); err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		return 1
	}
	code := m.Run()
	stopDeployment()
	return code
}

// deploy returns a running deployment of the sites in mode, reusing the
// current one when it matches.
func deploy(b *testing.B, mode driver.Mode, siteIdx []int) *driver.Deployment {
	b.Helper()
	if dep != nil && dep.Mode == mode && slices.Equal(dep.Sites, siteIdx) && dep.Running() {
		return dep
	}
	stopDeployment()
	var (
		d   *driver.Deployment
		err error
	)
	if mode == driver.Namespaced {
		if topology == nil {
			b.Fatal("no network namespaces set up for this benchmark")
		}
		d, err = lab.StartIn(ctx, topology, siteIdx)
	} else {
		d, err = lab.Start(ctx, mode, siteIdx)
	}
	if err != nil {
		b.Fatal(err)
	}
	dep = d
	return d
}

func stopDeployment() {
	if dep != nil {
		dep.Stop()
		dep = nil
	}
}

func do(b *testing.B, d *driver.Deployment, req party.Request) *party.Response {
	b.Helper()
	resp, err := d.Do(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func each(b *testing.B, d *driver.Deployment, req party.Request) []*party.Response {
	b.Helper()
	resps, err := d.EachResponse(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	return resps
}

// feed gives site i fixture pre-parameter set offset+i, so that every
// party of a committee gets its own set.
func feed(b *testing.B, d *driver.Deployment, siteIdx []int, offset int) {
	b.Helper()
	var f []party.Feed
	for _, i := range siteIdx {
		f = append(f, party.Feed{Site: i, Sets: []int{(offset + i) % fixtures.PreParamsCount()}})
	}
	each(b, d, party.Request{Op: party.OpFeed, Feed: f})
}

// memory resets the peak resident size of every process of d and returns
// a function that reports, as the metric peak-RSS-MiB, the largest peak of
// one process since then: the peak of the busiest party with one party
// per process, of all parties together in memnet mode.
func memory(b *testing.B, d *driver.Deployment) func() {
	b.Helper()
	peak := memoryPeak(b, d)
	return func() { b.ReportMetric(peak(), "peak-RSS-MiB") }
}

// memoryPeak is memory that returns the figure instead of reporting it.
func memoryPeak(b *testing.B, d *driver.Deployment) func() float64 {
	b.Helper()
	each(b, d, party.Request{Op: party.OpResetMemory})
	return func() float64 {
		var peak int64
		for _, r := range each(b, d, party.Request{Op: party.OpMemory}) {
			peak = max(peak, r.PeakKiB)
		}
		return float64(peak) / 1024
	}
}

// profile starts a CPU profile in the process running site when the
// suite was asked for one, and returns the function that stops it.
func profile(b *testing.B, d *driver.Deployment, site int) func() {
	b.Helper()
	path := os.Getenv(envProfile)
	if path == "" {
		return func() {}
	}
	do(b, d, party.Request{Op: party.OpProfileStart, Party: site, Path: path, Trace: os.Getenv(envTrace)})
	return func() { do(b, d, party.Request{Op: party.OpProfileStop, Party: site}) }
}

// mainKey returns the 2-of-3 key of sites 0, 1, 2 that signing and
// presigning benchmarks use, generating it the first time.
func mainKey(b *testing.B) string {
	b.Helper()
	id, made := labKey(b, "main-key")
	// A pool snapshot made before this key would not hold it.
	if made {
		for _, name := range []string{"pool-ready", "load-ready"} {
			if err := lab.SetValue(name, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	return id
}

// labKey returns the 2-of-3 key of sites 0, 1, 2 that the lab keeps under
// name, and whether it was generated by this call because the lab had none.
func labKey(b *testing.B, name string) (id string, made bool) {
	b.Helper()
	if k := lab.Value(name); k != "" {
		return k, false
	}
	d := deploy(b, driver.InProcess, trio)
	feed(b, d, trio, 0)
	resp := do(b, d, party.Request{Op: party.OpKeygen, Party: 0, Parties: trio, Threshold: 2})
	if err := lab.SetValue(name, resp.KeyID); err != nil {
		b.Fatal(err)
	}
	return resp.KeyID, true
}

// ensurePool makes sure the snapshot "pool" holds at least need ready
// presignatures of the main key for signers 0 and 1. Online benchmarks
// restore it before they sign, so every run starts from the same
// presignatures and signs the same digests with them (digest k with the
// k-th presignature used): signing again reproduces the same signatures
// and reveals nothing new about the key.
func ensurePool(b *testing.B, need int) {
	b.Helper()
	key := mainKey(b)
	ready, _ := strconv.Atoi(lab.Value("pool-ready"))
	if ready >= need && lab.HasSnapshot("pool") {
		return
	}
	if ready > 0 && lab.HasSnapshot("pool") {
		stopDeployment()
		if err := lab.Restore("pool"); err != nil {
			b.Fatal(err)
		}
	}
	d := deploy(b, driver.InProcess, trio)
	have := do(b, d, party.Request{Op: party.OpPool, Party: 0, KeyID: key, Parties: signers}).Done
	if have < need {
		b.Logf("making %d presignatures for the online benchmarks", need-have)
		do(b, d, party.Request{Op: party.OpPresign, Party: 0, KeyID: key, Parties: signers, Count: need - have, Parallel: 2})
		have = do(b, d, party.Request{Op: party.OpPool, Party: 0, KeyID: key, Parties: signers}).Done
	}
	stopDeployment()
	if err := lab.Snapshot("pool"); err != nil {
		b.Fatal(err)
	}
	if err := lab.SetValue("pool-ready", strconv.Itoa(have)); err != nil {
		b.Fatal(err)
	}
}

// restorePool stops the deployment and puts the pool snapshot back.
func restorePool(b *testing.B) {
	b.Helper()
	stopDeployment()
	if err := lab.Restore("pool"); err != nil {
		b.Fatal(err)
	}
	// Keys made after the snapshot are gone with it.
	if err := lab.SetValue("reshare-key", ""); err != nil {
		b.Fatal(err)
	}
}

// envInt returns the positive number in the environment variable name, or
// def when it is not set.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// rawPre returns fixture pre-parameter sets first..first+n-1.
func rawPre(b *testing.B, first, n int) []keygen.LocalPreParams {
	b.Helper()
	out := make([]keygen.LocalPreParams, n)
	for i := range out {
		pp, err := fixtures.PreParams((first + i) % fixtures.PreParamsCount())
		if err != nil {
			b.Fatal(err)
		}
		out[i] = *pp
	}
	return out
}

var (
	rawKeysOnce sync.Once
	rawKeys     []*keygen.LocalPartySaveData
	rawKeysErr  error
)

// rawKey2of3 returns a raw tss-lib 2-of-3 committee made from fixture
// pre-parameters. It is kept in the lab (its secrets are as public as the
// fixtures) so that each run does not pay for a keygen.
func rawKey2of3(b *testing.B) []*keygen.LocalPartySaveData {
	b.Helper()
	rawKeysOnce.Do(func() {
		path := filepath.Join(lab.Root, "rawtss-2of3.json")
		if data, err := os.ReadFile(path); err == nil {
			rawKeysErr = json.Unmarshal(data, &rawKeys)
			return
		}
		if rawKeys, rawKeysErr = rawtss.Keygen(ctx, rawPre(b, 0, 3), 1); rawKeysErr != nil {
			return
		}
		data, err := json.Marshal(rawKeys)
		if err == nil {
			err = os.WriteFile(path, data, 0o600)
		}
		rawKeysErr = err
	})
	if rawKeysErr != nil {
		b.Fatal(rawKeysErr)
	}
	return rawKeys
}

func digestInt(seed string, i int) *big.Int {
	return new(big.Int).SetBytes(party.Digest(seed, i))
}

// latencies records the duration of each operation of a benchmark loop and
// reports percentiles of them.
type latencies []time.Duration

func (l *latencies) time(f func()) {
	start := time.Now()
	f()
	*l = append(*l, time.Since(start))
}

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	// Nearest rank: the smallest value with at least p of them at or below.
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return float64(s[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.9), "p90-ms")
}
