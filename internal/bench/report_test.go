package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleRaw is `go test -bench` output in the shape the suite produces:
// headers, log lines, PASS/ok lines, custom metrics, and -count=3 runs.
const sampleRaw = `goos: linux
goarch: amd64
pkg: github.com/keyquorum/keyquorum/hsmshare
cpu: AMD EPYC
BenchmarkSeal4KiB/aes-256-gcm-2         	   10000	    100000 ns/op
BenchmarkSeal4KiB/aes-256-gcm-2         	   10000	    120000 ns/op
BenchmarkIdentitySign-2                 	    5000	    150000 ns/op
PASS
ok  	github.com/keyquorum/keyquorum/hsmshare	12.3s
pkg: github.com/keyquorum/keyquorum/tss/gg20
BenchmarkOnlineSign-2   	    1000	    200000 ns/op
BenchmarkOnlineSignBatched-2   	    1000	    100000 ns/op
goos: linux
goarch: amd64
pkg: github.com/keyquorum/keyquorum/internal/bench/suite
cpu: AMD EPYC
BenchmarkSign/size=2of3/impl=tsslib-2   	       3	1000000000 ns/op
BenchmarkSign/size=2of3/impl=memnet-2   	       3	1100000000 ns/op	        50.00 peak-RSS-MiB
BenchmarkSign/size=2of3/impl=libp2p-2   	       3	1300000000 ns/op	        40.00 peak-RSS-MiB
BenchmarkSign/size=2of3/impl=tsslib-2   	       3	1200000000 ns/op
BenchmarkSign/size=2of3/impl=memnet-2   	       3	1150000000 ns/op	        52.00 peak-RSS-MiB
BenchmarkSign/size=2of3/impl=libp2p-2   	       3	1400000000 ns/op	        42.00 peak-RSS-MiB
BenchmarkSign/size=2of3/impl=tsslib-2   	       3	1100000000 ns/op
BenchmarkSign/size=2of3/impl=memnet-2   	       3	1200000000 ns/op	        51.00 peak-RSS-MiB
BenchmarkSign/size=2of3/impl=libp2p-2   	       3	1500000000 ns/op	        41.00 peak-RSS-MiB
    main_test.go:170: making 990 presignatures for the online benchmarks
BenchmarkPresign/size=2of3/impl=tsslib-gg18-2 	       1	9000000000 ns/op	         0.5000 sig/s
BenchmarkPresign/size=2of3/impl=memnet-2      	       1	4000000000 ns/op	        57.84 peak-RSS-MiB	         1.100 presig/s
BenchmarkPresign/size=2of3/impl=libp2p-2      	       1	5000000000 ns/op	        49.61 peak-RSS-MiB	         0.9000 presig/s
BenchmarkOnline/size=2of3/impl=libp2p-2       	     200	  20000000 ns/op	        17.00 p50-ms	        30.00 p90-ms
BenchmarkOnline/size=2of3/impl=libp2p-2       	     200	  20000000 ns/op	         4.00 p50-ms	        30.00 p90-ms
BenchmarkOnline/size=2of3/impl=libp2p-2       	     200	  20000000 ns/op	         4.50 p50-ms	        30.00 p90-ms
BenchmarkOnlineBatch/size=2of3/impl=libp2p-2  	       1	 100000000 ns/op	     10000 sig/s	        39.00 peak-RSS-MiB
BenchmarkSeparated/rtt=0ms/proto=gg20-2       	       5	  20000000 ns/op	        20.00 p50-ms	        25.00 p90-ms
BenchmarkSeparated/rtt=0ms/proto=gg18-2       	       5	1000000000 ns/op	      1000 p50-ms	      1100 p90-ms
BenchmarkSeparated/rtt=50ms/proto=gg20-2      	       5	  70000000 ns/op	        70.00 p50-ms	        75.00 p90-ms
BenchmarkSeparated/rtt=50ms/proto=gg18-2      	       5	1600000000 ns/op	      1600 p50-ms	      1700 p90-ms
BenchmarkSeparated/rtt=100ms/proto=gg20-2     	       5	 120000000 ns/op	       120.0 p50-ms	       125.0 p90-ms
BenchmarkSeparated/rtt=100ms/proto=gg18-2     	       5	2200000000 ns/op	      2200 p50-ms	      2300 p90-ms
BenchmarkLoad/proto=gg20/initiators=2-2       	       1	 200000000 ns/op	         0 burned	         0 busy	         1.700 cores	        11.00 p50-ms	        15.00 p99-ms	        60.00 peak-RSS-MiB-site0	        61.00 peak-RSS-MiB-site1	        40.00 peak-RSS-MiB-site2	       500.0 sig/s	       100.0 success-%
BenchmarkLoad/proto=gg20/initiators=1-2       	       1	 250000000 ns/op	         0 burned	         0 busy	         1.300 cores	        16.00 p50-ms	        22.00 p99-ms	        62.00 peak-RSS-MiB-site0	        42.00 peak-RSS-MiB-site1	        40.00 peak-RSS-MiB-site2	       400.0 sig/s	       100.0 success-%
BenchmarkLoad/proto=gg18/concurrent=20-2      	       1	8000000000 ns/op	         0 burned	         0 busy	         1.950 cores	      7000 p50-ms	      8000 p99-ms	        70.00 peak-RSS-MiB-site0	        50.00 peak-RSS-MiB-site1	        40.00 peak-RSS-MiB-site2	         2.400 sig/s	       100.0 success-%
BenchmarkLoad/proto=gg18/concurrent=1-2       	       1	13000000000 ns/op	         0 burned	         0 busy	         1.050 cores	       650.0 p50-ms	       700.0 p99-ms	        64.00 peak-RSS-MiB-site0	        45.00 peak-RSS-MiB-site1	        40.00 peak-RSS-MiB-site2	         1.500 sig/s	       100.0 success-%
PASS
ok  	github.com/keyquorum/keyquorum/internal/bench/suite	118.675s
pkg: github.com/keyquorum/keyquorum
BenchmarkNodeSignDuringPreParams/preparams=idle/protocol=gg18-2         	       5	 400000000 ns/op
BenchmarkNodeSignDuringPreParams/preparams=idle/protocol=gg20-2         	       5	  10000000 ns/op
BenchmarkNodeSignDuringPreParams/preparams=worker/protocol=gg18-2       	       5	 440000000 ns/op
BenchmarkNodeSignDuringPreParams/preparams=worker/protocol=gg20-2       	       5	  13000000 ns/op
BenchmarkNodeSignDuringPreParams/preparams=in-process/protocol=gg18-2   	       5	1200000000 ns/op
BenchmarkNodeSignDuringPreParams/preparams=in-process/protocol=gg20-2   	       5	  30000000 ns/op
BenchmarkCLISign/process-2         	      20	  26000000 ns/op
BenchmarkCLISign/in-process-2      	      20	   6000000 ns/op
BenchmarkCLISign/single-2          	      20	  34000000 ns/op
BenchmarkCLISign/lines-2           	      20	   6500000 ns/op
PASS
ok  	github.com/keyquorum/keyquorum	60.1s
`

func sampleResults(t *testing.T) []Result {
	t.Helper()
	rs, err := Parse(strings.NewReader(sampleRaw))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestParse_ReadsBenchmarkLines(t *testing.T) {
	rs := sampleResults(t)
	if len(rs) != 41 {
		t.Fatalf("parsed %d results, want 41", len(rs))
	}
	first := rs[0]
	if first.Pkg != "github.com/keyquorum/keyquorum/hsmshare" || first.Name != "BenchmarkSeal4KiB/aes-256-gcm" ||
		first.Procs != 2 || first.Iterations != 10000 || first.Metrics[unitTime] != 100000 {
		t.Errorf("first result = %+v", first)
	}
	var presign Result
	for _, r := range rs {
		if strings.HasPrefix(r.Name, "BenchmarkPresign/size=2of3/impl=tsslib") {
			presign = r
		}
	}
	// A name that itself contains a dash keeps it; only the numeric
	// GOMAXPROCS suffix goes.
	if presign.Name != "BenchmarkPresign/size=2of3/impl=tsslib-gg18" || presign.Procs != 2 {
		t.Errorf("presign baseline parsed as %q procs %d", presign.Name, presign.Procs)
	}
	if presign.Metrics[unitSigs] != 0.5 || presign.Pkg != "github.com/keyquorum/keyquorum/internal/bench/suite" {
		t.Errorf("presign baseline metrics %v in %s", presign.Metrics, presign.Pkg)
	}
	online := Index(rs)["BenchmarkOnline/size=2of3/impl=libp2p"]
	if got := online[unitP50]; len(got) != 3 || got[0] != 17 || got[2] != 4.5 {
		t.Errorf("online p50 values %v, want [17 4 4.5] in run order", got)
	}
}

func TestParse_NameWithoutProcsSuffix(t *testing.T) {
	rs, err := Parse(strings.NewReader("BenchmarkX/impl=a-b 5 10 ns/op\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != "BenchmarkX/impl=a-b" || rs[0].Procs != 0 {
		t.Errorf("got %+v", rs)
	}
}

// TestParse_SkipsFailedBenchmarks: a benchmark that failed is printed as
// "0 NaN ns/op" after its FAIL line; the other results still count.
func TestParse_SkipsFailedBenchmarks(t *testing.T) {
	in := "--- FAIL: BenchmarkX/a-2\nBenchmarkX/a-2 0 NaN ns/op\nBenchmarkX/b-2 5 10 ns/op\n"
	rs, err := Parse(strings.NewReader(in))
	if err != nil || len(rs) != 1 || rs[0].Name != "BenchmarkX/b" {
		t.Fatalf("Parse: %+v, %v; want only BenchmarkX/b", rs, err)
	}
}

func TestParse_RejectsMalformedBenchmarkLines(t *testing.T) {
	for name, line := range map[string]string{
		"value not a number": "BenchmarkX-2 5 abc ns/op\n",
		"value without unit": "BenchmarkX-2 5 10 ns/op 7\n",
		"infinite value":     "BenchmarkX-2 5 +Inf ns/op\n",
		"NaN value":          "BenchmarkX-2 5 NaN ns/op\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(strings.NewReader(line)); err == nil {
				t.Errorf("Parse(%q) accepted it", line)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{7}, Stat{N: 1, Median: 7, Min: 7, Max: 7}},
		{[]float64{3, 1, 2}, Stat{N: 3, Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 3, 2}, Stat{N: 4, Median: 2.5, Min: 1, Max: 4}},
		{[]float64{17, 4, 4.5, 5, 100}, Stat{N: 5, Median: 5, Min: 4, Max: 100}},
	} {
		if got := Summarize(tc.vals); got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.vals, got, tc.want)
		}
	}
	// Summarize must not reorder its input (run order matters elsewhere).
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 {
		t.Errorf("Summarize sorted its argument: %v", in)
	}
}

func verdict(t *testing.T, vs []Verdict, prefix string) Verdict {
	t.Helper()
	for _, v := range vs {
		if strings.HasPrefix(v.Target, prefix) {
			return v
		}
	}
	t.Fatalf("no verdict starting %q", prefix)
	return Verdict{}
}

func TestVerdicts_ChecksEachTarget(t *testing.T) {
	vs := Verdicts(Index(sampleResults(t)))
	for _, tc := range []struct {
		prefix   string
		measured string
		known    bool
		met      bool
	}{
		// Sign medians: tss-lib 1.1 s, memnet 1.15 s, libp2p 1.4 s.
		{"Classic GG18 sign, 2-of-3, keyquorum 1 process (memnet) over raw tss-lib", "1.05×", true, true},
		{"Classic GG18 sign, 2-of-3, keyquorum 3 processes (libp2p) over raw tss-lib", "1.27×", true, false},
		{"libp2p between 3 processes adds", "+250 ms (medians: 1.40 s vs 1.15 s)", true, false},
		// Presign: 1.1 presig/s and 0.9 presig/s against 0.5 sig/s.
		{"GG20 presign throughput vs tss-lib GG18 signing throughput, keyquorum 1 process", "2.20×", true, true},
		{"GG20 presign throughput vs tss-lib GG18 signing throughput, keyquorum 3 processes", "1.80×", true, false},
		// Online p50 runs 17, 4 and 4.5 ms: the median is 4.5.
		{"GG20 online, one signature, 3 processes", "4.50 ms", true, true},
		{"GG20 online, batches, 3 processes", "10,000 /s", true, true},
		{"Sites 50 ms RTT apart: GG20 online", "1.40 RTT (70.0 ms)", true, true},
		{"GG18 signing waits for", "12.0 RTT", true, true},
		// During generation: 440 ms over 400 ms idle, 13 ms over 10 ms.
		{"GG18 signing while the site generates pre-parameters", "1.10× (generation inside the site's process: 3.00×)", true, true},
		{"GG20 signing while the site generates pre-parameters", "1.30× (generation inside the site's process: 3.00×)", true, false},
		// CLI: 6.5 ms per signature with --digests; 34 ms a process each.
		{"A GG20 signature from the command line", "6.50 ms (a process per signature: 34.0 ms, of which starting kqnode 26.0 ms)", true, true},
		// Load: 500 and 400 sig/s for GG20, 2.4 and 1.5 sig/s for GG18.
		{"Concurrent GG20 requests, 3 processes", "100% signed, 0 burned (worst run)", true, true},
		{"Concurrent GG20 throughput, 2 initiators at once", "1.25× (500 vs 400 signatures/s)", true, true},
		{"Concurrent GG18 throughput over one signature at a time", "1.60× (2.40 vs 1.50 signatures/s), 1.95 cores busy", true, true},
		{"Keygen 2-of-3 (warm pre-parameters), keyquorum 1 process", "", false, false},
		{"Resharing 2-of-3 → 2-of-3, keyquorum 3 processes", "", false, false},
	} {
		v := verdict(t, vs, tc.prefix)
		if v.Measured != tc.measured || v.Known != tc.known || (v.Known && v.Met != tc.met) {
			t.Errorf("%s: measured %q known %v met %v; want %q %v %v", tc.prefix, v.Measured, v.Known, v.Met, tc.measured, tc.known, tc.met)
		}
	}
	if v := verdict(t, vs, "Resharing"); !strings.Contains(v.Limit, "confirmation") {
		t.Errorf("the resharing verdict does not explain the confirmation signature: %q", v.Limit)
	}
}

func TestSlope_CountsRoundTrips(t *testing.T) {
	pts := separatedPoints(Index(sampleResults(t)))
	if len(pts) != 3 || pts[0].rtt != 0 || pts[2].rtt != 100 {
		t.Fatalf("points %+v", pts)
	}
	// GG20 p50: 20, 70, 120 ms at 0, 50, 100 ms: exactly one RTT each.
	s, ok := slope(pts, func(p separatedPoint) Cell { return p.gg20 })
	if !ok || math.Abs(s-1) > 1e-9 {
		t.Errorf("GG20 slope %v, %v; want 1", s, ok)
	}
	// GG18: 1000, 1600, 2200 ms: twelve.
	s, ok = slope(pts, func(p separatedPoint) Cell { return p.gg18 })
	if !ok || math.Abs(s-12) > 1e-9 {
		t.Errorf("GG18 slope %v, %v; want 12", s, ok)
	}
	if _, ok := slope(pts[:1], func(p separatedPoint) Cell { return p.gg18 }); ok {
		t.Error("slope of one point")
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtTime(1.5e9), "1.50 s"},
		{fmtTime(2.34e7), "23.4 ms"},
		{fmtTime(95000), "95.0 µs"},
		{fmtTime(512), "512 ns"},
		{sig3(0.9), "0.9"},
		{sig3(0.4339), "0.434"},
		{sig3(1234.4), "1234"},
		{thousands(10000), "10,000"},
		{thousands(999), "999"},
		{thousands(1234567.6), "1,234,568"},
		{fmtCell(Cell{OK: true, Unit: unitTime, Stat: Stat{N: 3, Median: 1.1e9, Min: 1e9, Max: 1.25e9}}), "1.10 s [1.00–1.25]"},
		{fmtCell(Cell{OK: true, Unit: unitP50, Stat: Stat{N: 1, Median: 4.5, Min: 4.5, Max: 4.5}}), "4.50 ms"},
		{fmtCell(Cell{}), "—"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func sampleReport(t *testing.T) *Report {
	rs := sampleResults(t)
	return &Report{
		Machine: Machine{Date: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC), CPU: "AMD EPYC", Cores: 2, Memory: "23.5 GiB",
			GoVersion: "go1.26.8", LoadStart: "0.50, 0.40, 0.30", LoadStart1: 0.5, LoadEnd: "0.90, 0.50, 0.30", LoadEnd1: 0.9, Elapsed: "25m0s"},
		Results: Index(rs), Raw: rs, RawPath: "bench/raw.txt", Plot: "bench/separated.png",
		Settings: Settings{Batch: 1000, Presign: 64, Separated: "emulated", SeparatedWhy: "no sch_netem",
			Steps: []string{"go test -run '^$' -bench '^BenchmarkSign$' ./internal/bench/suite/"}},
		Profiles: []Profile{{Key: "online", Title: "GG20 online", Command: "go test ...", Top: "flat  flat%\n1s 50% main.f"}},
	}
}

func TestPage_ShowsMeasuredFiguresAndVerdicts(t *testing.T) {
	page := Page(sampleReport(t))
	for _, want := range []string{
		"| Classic GG18 sign, 2-of-3 | 1.10 s [1.00–1.20] | 1.15 s [1.10–1.20] | 1.05× | 1.40 s [1.30–1.50] | 1.27× |",
		"| GG20 presign throughput vs tss-lib GG18 signing throughput | 0.5 /s | 1.10 /s | 2.20× | 0.9 /s | 1.80× |",
		"| Classic GG18 sign, 2-of-3, keyquorum 3 processes (libp2p) over raw tss-lib: ≤ 1.2× | 1.27× | **missed** |",
		"| GG20 online, one signature, 3 processes: p50 ≤ 5 ms | 4.50 ms | met |",
		"| Keygen 2-of-3 (warm pre-parameters), keyquorum 1 process (memnet) over raw tss-lib: ≤ 1.2× | — | not measured |",
		"| 50 ms | 1600 ms | 70.0 ms | 23× |",
		"**GG18 12.0 RTT**, **GG20 online 1.0 RTT**",
		"**Emulated latency.** tc netem could not be used on this machine (`no sch_netem`)",
		"![p50 signing latency against round trip time](bench/separated.png)",
		"| Seal 4 KiB, AES-256-GCM in the token | `BenchmarkSeal4KiB/aes-256-gcm` | 110 µs [100–120] |",
		"| GG18 sign 2-of-3 | 41.0 MiB [40.0–42.0] | 51.0 MiB [50.0–52.0] |",
		"### GG20 online\n\n`go test ...`\n\nCPU:\n\n```\nflat  flat%\n1s 50% main.f\n```",
		"go test -run '^$' -bench '^BenchmarkSign$' ./internal/bench/suite/\n",
		"2026-11-26 06:00 UTC",
		"takes 100 µs per signature with the key's verification tables (`tss/gg20` BenchmarkOnlineSignBatched). On this machine's 2 cores that alone caps signing near 20,000 signatures per second",
		"Checked the plain way (dcrd's ECDSA verification, BenchmarkOnlineSign) the same work takes 200 µs",
		"| GG20, 2 initiators at once, each from its own pool | 100 % | 500 | 11.0 | 15.0 | 0 | 0 | 1.70 | 60.0 / 61.0 / 40.0 |",
		"| GG18, all at once | 100 % | 2.40 | 7000 | 8000 | 0 | 0 | 1.95 | 70.0 / 50.0 / 40.0 |",
		"| Concurrent GG18 throughput over one signature at a time, 3 processes: ≥ 1.5× | 1.60× (2.40 vs 1.50 signatures/s), 1.95 cores busy | met |",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Quick smoke run", "The machine was busy", "steps failed"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("page of a quiet full run says %q", unwanted)
		}
	}
	rep := sampleReport(t)
	rep.Settings.Quick = true
	rep.Machine.LoadStart1 = 7
	rep.Settings.Failed = []string{"go test -bench '^BenchmarkReshare$' ./internal/bench/suite/"}
	page = Page(rep)
	for _, want := range []string{"Quick smoke run", "The machine was busy", "**Some benchmark steps failed**", "> - `go test -bench '^BenchmarkReshare$' ./internal/bench/suite/`"} {
		if !strings.Contains(page, want) {
			t.Errorf("page of a quick run on a busy machine lacks %q", want)
		}
	}
}

func TestReadme_SectionReplacedBetweenMarkers(t *testing.T) {
	section := ReadmeSection(sampleReport(t))
	if !strings.Contains(section, "| GG20 online, batches, 3 processes: ≥ 10,000 signatures/s | 10,000 /s | met |") ||
		!strings.Contains(section, "[docs/benchmarks.md](docs/benchmarks.md)") {
		t.Errorf("README section:\n%s", section)
	}
	// Only headline verdicts: not the 1-process rows.
	if strings.Contains(section, "1 process (memnet)") {
		t.Errorf("README section repeats non-headline rows:\n%s", section)
	}
	readme := "# title\n\nintro\n\n" + readmeBegin + "\nold table\n" + readmeEnd + "\n\n## after\n"
	got, err := ReplaceSection(readme, section)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "# title\n\nintro\n\n"+readmeBegin+section+readmeEnd) || !strings.HasSuffix(got, readmeEnd+"\n\n## after\n") {
		t.Errorf("replaced README:\n%s", got)
	}
	if strings.Contains(got, "old table") {
		t.Error("old section kept")
	}
	for _, bad := range []string{"no markers", readmeEnd + readmeBegin, readmeBegin + readmeEnd + readmeBegin + readmeEnd} {
		if _, err := ReplaceSection(bad, section); err == nil {
			t.Errorf("ReplaceSection(%q) accepted it", bad)
		}
	}
}

func TestConnections_TakesTheSuitesLogLine(t *testing.T) {
	raw := sampleRaw + "    sign_bench_test.go:40: connections: site 1 over quic-v1 with tls (X25519MLKEM768)\n" +
		"BenchmarkSign/size=2of3/impl=libp2p-2 3 1 ns/op\n"
	if got := connections(raw); got != "site 1 over quic-v1 with tls (X25519MLKEM768)" {
		t.Errorf("connections = %q", got)
	}
	if got := connections(sampleRaw); got != "" {
		t.Errorf("connections of output without the line = %q", got)
	}
}

func TestSeparatedFigure_HoldsBothProtocolsWithTheirRanges(t *testing.T) {
	f, err := SeparatedFigure(Index(sampleResults(t)), "emulated latency")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Title, "emulated latency") {
		t.Errorf("title %q does not say how the latency was made", f.Title)
	}
	want := []Series{
		{Name: "GG18 (tss-lib, 9 rounds)", Points: []Point{{0, 1000, 1000, 1000}, {50, 1600, 1600, 1600}, {100, 2200, 2200, 2200}}},
		{Name: "GG20 online (1 round)", Points: []Point{{0, 20, 20, 20}, {50, 70, 70, 70}, {100, 120, 120, 120}}},
	}
	if !reflect.DeepEqual(f.Series, want) {
		t.Errorf("series = %+v, want %+v", f.Series, want)
	}

	path := filepath.Join(t.TempDir(), "separated.json")
	if err := writeFigure(f, path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Figure
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Errorf("read back %+v, wrote %+v", back, f)
	}
	for _, key := range []string{`"title"`, `"x_label"`, `"y_label"`, `"series"`, `"points"`, `"median"`, `"min"`, `"max"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("separated.json has no %s key (the renderer in internal/bench/plot reads it)", key)
		}
	}

	if _, err := SeparatedFigure(Results{}, "x"); !errors.Is(err, errNoFigure) {
		t.Errorf("SeparatedFigure of nothing: %v, want errNoFigure", err)
	}
}

func TestVerdicts_LoadMissesOnAnyFailureOrBurn(t *testing.T) {
	r := Index(sampleResults(t))
	// A second run of the 2-initiator load in which one request failed and
	// its presignature burned: the worst run decides.
	r[loadGG20Two][unitSuccess] = append(r[loadGG20Two][unitSuccess], 99)
	r[loadGG20Two][unitBurned] = append(r[loadGG20Two][unitBurned], 1)
	v := verdict(t, Verdicts(r), "Concurrent GG20 requests, 3 processes")
	if !v.Known || v.Met || v.Measured != "99.0% signed, 1 burned (worst run)" {
		t.Errorf("verdict %+v; want missed with 99%% signed, 1 burned", v)
	}
	delete(r, loadGG20One)
	if v := verdict(t, Verdicts(r), "Concurrent GG20 requests, 3 processes"); v.Known {
		t.Errorf("verdict without the 1-initiator run is known: %+v", v)
	}
}
