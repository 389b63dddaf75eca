package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Benchmark names of the suite (internal/bench/suite) and of the package
// benchmarks the page quotes.
const (
	benchKeygen  = "BenchmarkKeygen"
	benchSign    = "BenchmarkSign"
	benchPresign = "BenchmarkPresign"
	benchOnline  = "BenchmarkOnline"
	benchBatch   = "BenchmarkOnlineBatch"
	benchReshare = "BenchmarkReshare"
	benchSep     = "BenchmarkSeparated"
	// benchLoad is the suite's concurrent-requests benchmark (3 processes).
	benchLoad = "BenchmarkLoad"
	// benchDuringGen is package keyquorum's Node signing while the site
	// generates pre-parameters: idle, in a worker, in process.
	benchDuringGen = "BenchmarkNodeSignDuringPreParams"
	// benchCLI is a GG20 signature asked for with kqnode (examples/kqnode):
	// the process alone, in-process, a process per signature, one for all.
	benchCLI      = "BenchmarkCLISign"
	benchCoreSign = "BenchmarkOnlineSign"        // tss/gg20: the online round's arithmetic, plain verification
	benchCoreFast = "BenchmarkOnlineSignBatched" // tss/gg20: the same with the key's verification tables

	implRaw     = "impl=tsslib"
	implRawGG18 = "impl=tsslib-gg18"
	implMemnet  = "impl=memnet"
	implLibp2p  = "impl=libp2p"

	unitTime    = "ns/op"
	unitP50     = "p50-ms"
	unitP90     = "p90-ms"
	unitRSS     = "peak-RSS-MiB"
	unitSigs    = "sig/s"
	unitPresigs = "presig/s"
	unitP99     = "p99-ms"
	unitSuccess = "success-%"
	unitBurned  = "burned"
	unitBusy    = "busy"
	unitCores   = "cores"
)

// Performance targets. Verdicts checks every run against them, and the
// results page (docs/benchmarks.md, "Targets") and the README's benchmark
// table state each one with the figure measured.
const (
	targetOverhead      = 1.2   // keyquorum time / raw tss-lib time
	targetLibp2pAddedMs = 10.0  // ms libp2p may add to a signature at 0 RTT
	targetOnlineP50Ms   = 5.0   // GG20 online p50, 3 processes
	targetBatchPerSec   = 10000 // GG20 batched signatures per second
	targetPresignRatio  = 2.0   // presignatures/s over tss-lib GG18 signatures/s
	targetDuringGen     = 1.2   // signing while pre-parameters generate / idle
	targetCLIMs         = 10.0  // ms per GG20 signature through kqnode sign --digests
	targetOnlineRTTs    = 1.5   // GG20 online latency at 50 ms RTT, in RTTs ("≈ 1")
	targetGG18RTTs      = 9.0   // GG18 signing needs at least this many RTTs
	separatedTargetRTT  = 50    // ms
	targetLoadSuccess   = 100.0 // % of concurrent requests signed while the pools hold enough
	targetLoadGG20      = 0.8   // GG20 sig/s with 2 initiators at once / with 1 initiator
	targetLoadGG18      = 1.5   // GG18 sig/s with concurrent requests / one at a time
)

// comparison is one row of the table of keyquorum against raw tss-lib.
type comparison struct {
	title   string
	bench   string // benchmark name up to the impl= element
	raw     string // the baseline's impl element
	unit    string // unit compared: ns/op, or a throughput
	rawUnit string
	higher  bool // a higher value is better (throughput)
	target  float64
	note    string
	profile string // profile to take when a target of the row is missed
}

var comparisons = []comparison{
	{title: "Keygen 2-of-3 (warm pre-parameters)", bench: benchKeygen + "/size=2of3", raw: implRaw, unit: unitTime, rawUnit: unitTime, target: targetOverhead, profile: "keygen"},
	{title: "Keygen 3-of-5 (warm pre-parameters)", bench: benchKeygen + "/size=3of5", raw: implRaw, unit: unitTime, rawUnit: unitTime, target: targetOverhead, profile: "keygen"},
	{title: "Classic GG18 sign, 2-of-3", bench: benchSign + "/size=2of3", raw: implRaw, unit: unitTime, rawUnit: unitTime, target: targetOverhead, profile: "sign"},
	{title: "Resharing 2-of-3 → 2-of-3", bench: benchReshare + "/size=2of3", raw: implRaw, unit: unitTime, rawUnit: unitTime, target: targetOverhead, profile: "reshare",
		note: "keyquorum's reshare is two-phase: after tss-lib resharing the new committee signs a confirmation digest (a GG18 signature) and then commits; tss-lib's figure is its resharing protocol alone"},
	{title: "GG20 presign throughput vs tss-lib GG18 signing throughput", bench: benchPresign + "/size=2of3", raw: implRawGG18, unit: unitPresigs, rawUnit: unitSigs, higher: true, target: targetPresignRatio, profile: "presign"},
}

// Verdict is one design target checked against the run.
type Verdict struct {
	// Target states the target.
	Target string
	// Measured is the figure, formatted.
	Measured string
	// Known is false when the run lacks the data (the row shows "not
	// measured").
	Known bool
	// Met says whether the figure meets the target.
	Met bool
	// Headline marks the verdicts the README repeats.
	Headline bool
	// Profile names the profile to take when the target is missed.
	Profile string
	// Limit explains a miss that a profile does not (design choices).
	Limit string
}

// Cell is one measured figure with its spread.
type Cell struct {
	Stat Stat
	Unit string
	OK   bool
}

func (r Results) cell(name, unit string) Cell {
	s, ok := r.Stat(name, unit)
	return Cell{Stat: s, Unit: unit, OK: ok}
}

// ratio returns num's median over den's median (den over num when lower is
// better, so that a ratio above 1 always means "keyquorum is slower"
// for times and "keyquorum does more per second" for throughputs).
func ratio(num, den Cell) (float64, bool) {
	if !num.OK || !den.OK || den.Stat.Median == 0 {
		return 0, false
	}
	return num.Stat.Median / den.Stat.Median, true
}

// Verdicts evaluates every design target against r.
func Verdicts(r Results) []Verdict {
	var out []Verdict
	modes := []struct{ impl, what string }{{implMemnet, "1 process (memnet)"}, {implLibp2p, "3 processes (libp2p)"}}
	for _, c := range comparisons {
		raw := r.cell(c.bench+"/"+c.raw, c.rawUnit)
		for _, m := range modes {
			kq := r.cell(c.bench+"/"+m.impl, c.unit)
			q, ok := ratio(kq, raw)
			v := Verdict{Known: ok, Profile: c.profile, Headline: m.impl == implLibp2p}
			if c.higher {
				v.Target = fmt.Sprintf("%s, keyquorum %s: ≥ %s×", c.title, m.what, trimFloat(c.target))
				v.Met = q >= c.target
			} else {
				v.Target = fmt.Sprintf("%s, keyquorum %s over raw tss-lib: ≤ %s×", c.title, m.what, trimFloat(c.target))
				v.Met = q <= c.target
			}
			if ok {
				v.Measured = fmt.Sprintf("%.2f×", q)
			}
			if c.note != "" {
				v.Limit = c.note
			}
			out = append(out, v)
		}
	}

	// libp2p's share of a GG18 signature (transport issue).
	mem, lp := r.cell(benchSign+"/size=2of3/"+implMemnet, unitTime), r.cell(benchSign+"/size=2of3/"+implLibp2p, unitTime)
	v := Verdict{Target: fmt.Sprintf("libp2p between 3 processes adds ≤ %s ms to a GG18 signature (0 ms RTT)", trimFloat(targetLibp2pAddedMs)), Known: mem.OK && lp.OK, Profile: "sign"}
	if v.Known {
		added := (lp.Stat.Median - mem.Stat.Median) / 1e6
		v.Measured = fmt.Sprintf("%+.0f ms (medians: %s vs %s)", added, fmtTime(lp.Stat.Median), fmtTime(mem.Stat.Median))
		v.Met = added <= targetLibp2pAddedMs
	}
	out = append(out, v)

	p50 := r.cell(benchOnline+"/size=2of3/"+implLibp2p, unitP50)
	v = Verdict{Target: fmt.Sprintf("GG20 online, one signature, 3 processes: p50 ≤ %s ms", trimFloat(targetOnlineP50Ms)), Known: p50.OK, Headline: true, Profile: "online"}
	if v.Known {
		v.Measured = fmt.Sprintf("%s ms", sig3(p50.Stat.Median))
		v.Met = p50.Stat.Median <= targetOnlineP50Ms
	}
	out = append(out, v)

	batch := r.cell(benchBatch+"/size=2of3/"+implLibp2p, unitSigs)
	v = Verdict{Target: fmt.Sprintf("GG20 online, batches, 3 processes: ≥ %s signatures/s", thousands(targetBatchPerSec)), Known: batch.OK, Headline: true, Profile: "batch",
		Limit: "batched online signing is bound by elliptic-curve arithmetic, not by the network or the HSM: every signature's shares are computed, combined, verified and given a recovery ID (see GG20 signing for the cost of the arithmetic alone, and the profile below)"}
	if v.Known {
		v.Measured = fmt.Sprintf("%s /s", thousands(batch.Stat.Median))
		v.Met = batch.Stat.Median >= targetBatchPerSec
	}
	out = append(out, v)

	// Signing while the initiating site generates pre-parameters in its
	// worker at idle priority (operations issue), against no generation.
	for _, proto := range []string{"gg18", "gg20"} {
		idle := r.cell(benchDuringGen+"/preparams=idle/protocol="+proto, unitTime)
		worker := r.cell(benchDuringGen+"/preparams=worker/protocol="+proto, unitTime)
		inproc := r.cell(benchDuringGen+"/preparams=in-process/protocol="+proto, unitTime)
		q, ok := ratio(worker, idle)
		v := Verdict{Target: fmt.Sprintf("%s signing while the site generates pre-parameters (worker process at idle priority) over signing with none: ≤ %s×",
			strings.ToUpper(proto), trimFloat(targetDuringGen)), Known: ok}
		if ok {
			v.Measured = fmt.Sprintf("%.2f×", q)
			v.Met = q <= targetDuringGen
			if qi, ok := ratio(inproc, idle); ok {
				v.Measured += fmt.Sprintf(" (generation inside the site's process: %.2f×)", qi)
			}
		}
		out = append(out, v)
	}

	lines := r.cell(benchCLI+"/lines", unitTime)
	v = Verdict{Target: fmt.Sprintf("A GG20 signature from the command line (kqnode sign --digests, one process for many): ≤ %s ms each", trimFloat(targetCLIMs)),
		Known: lines.OK,
		Limit: "A kqnode process per signature (sign --digest) pays the process start of a program that links libp2p, tss-lib, go-ethereum, btcd and CEL on every call; see the README's \"Latency from the command line\""}
	if lines.OK {
		ms := lines.Stat.Median / 1e6
		v.Measured = fmt.Sprintf("%s ms", sig3(ms))
		v.Met = ms <= targetCLIMs
		single, proc := r.cell(benchCLI+"/single", unitTime), r.cell(benchCLI+"/process", unitTime)
		if single.OK && proc.OK {
			v.Measured += fmt.Sprintf(" (a process per signature: %s ms, of which starting kqnode %s ms)", sig3(single.Stat.Median/1e6), sig3(proc.Stat.Median/1e6))
		}
	}
	out = append(out, v)

	pts := separatedPoints(r)
	sep := separatedAt(r, separatedTargetRTT)
	v = Verdict{Target: fmt.Sprintf("Sites %d ms RTT apart: GG20 online signing takes ≈ 1 RTT (≤ %s RTT)", separatedTargetRTT, trimFloat(targetOnlineRTTs)), Known: sep.gg20.OK, Headline: true}
	if v.Known {
		rtts := sep.gg20.Stat.Median / separatedTargetRTT
		v.Measured = fmt.Sprintf("%s RTT (%s ms)", sig3(rtts), sig3(sep.gg20.Stat.Median))
		v.Met = rtts <= targetOnlineRTTs
	}
	out = append(out, v)
	s18, ok := slope(pts, func(p separatedPoint) Cell { return p.gg18 })
	v = Verdict{Target: fmt.Sprintf("GG18 signing waits for ≥ %s round trips (the design's premise; slope of latency over RTT)", trimFloat(targetGG18RTTs)), Known: ok, Headline: true,
		Limit: "GG18 round trips: each of tss-lib's nine rounds is a one-way step (every party sends, then waits for the others' messages), so the nine cost about 4.5 RTT, and the session's propose, accept and start add to that; with two signers a broadcast has one recipient, so its echo adds no wait. \"≥ 9 RTTs\" counts rounds, not round trips"}
	if ok {
		v.Measured = fmt.Sprintf("%s RTT", sig3(s18))
		v.Met = s18 >= targetGG18RTTs
	}
	out = append(out, v)
	return append(out, loadVerdicts(r)...)
}

// Names of the load benchmark's runs.
const (
	loadGG20Two = benchLoad + "/proto=gg20/initiators=2"
	loadGG20One = benchLoad + "/proto=gg20/initiators=1"
	loadGG18One = benchLoad + "/proto=gg18/concurrent=1"
)

// loadGG18Many returns the name of the load benchmark's concurrent GG18
// run (its number of requests is a setting), or "".
func loadGG18Many(r Results) string {
	best, most := "", 1
	for name := range r {
		n, ok := strings.CutPrefix(name, benchLoad+"/proto=gg18/concurrent=")
		if !ok {
			continue
		}
		var k int
		if _, err := fmt.Sscan(n, &k); err == nil && k > most {
			best, most = name, k
		}
	}
	return best
}

// loadVerdicts checks the targets of concurrent requests (BenchmarkLoad).
func loadVerdicts(r Results) []Verdict {
	var out []Verdict
	// Every request signs and no presignature burns, in the worst run.
	v := Verdict{Target: fmt.Sprintf("Concurrent GG20 requests, 3 processes (2 initiators at once, and 1): %s%% signed, 0 presignatures burned",
		trimFloat(targetLoadSuccess)), Headline: true}
	var worst, burned float64
	worst = math.Inf(1)
	for _, name := range []string{loadGG20Two, loadGG20One} {
		s, okS := r.Stat(name, unitSuccess)
		bu, okB := r.Stat(name, unitBurned)
		if !okS || !okB {
			v.Known = false
			break
		}
		v.Known = true
		worst = min(worst, s.Min)
		burned = max(burned, bu.Max)
	}
	if v.Known {
		v.Measured = fmt.Sprintf("%s%% signed, %.0f burned (worst run)", sig3(worst), burned)
		v.Met = worst >= targetLoadSuccess && burned == 0
	}
	out = append(out, v)

	two, one := r.cell(loadGG20Two, unitSigs), r.cell(loadGG20One, unitSigs)
	q, ok := ratio(two, one)
	v = Verdict{Target: fmt.Sprintf("Concurrent GG20 throughput, 2 initiators at once over 1 initiator with the same requests: ≥ %s×", trimFloat(targetLoadGG20)),
		Known: ok}
	if ok {
		v.Measured = fmt.Sprintf("%.2f× (%s vs %s signatures/s)", q, sig3(two.Stat.Median), sig3(one.Stat.Median))
		v.Met = q >= targetLoadGG20
	}
	out = append(out, v)

	many := loadGG18Many(r)
	par, seq := r.cell(many, unitSigs), r.cell(loadGG18One, unitSigs)
	q, ok = ratio(par, seq)
	v = Verdict{Target: fmt.Sprintf("Concurrent GG18 throughput over one signature at a time, 3 processes: ≥ %s×", trimFloat(targetLoadGG18)),
		Known: ok && many != "",
		Limit: "GG18 signing is bound by the CPU (Paillier and range proofs): concurrent sessions run in parallel, with no lock held across a round, " +
			"so they gain only the cores one signature at a time leaves idle while each party waits for the other's message; " +
			"the load section's cores column shows how much of the machine each run used"}
	if v.Known {
		v.Measured = fmt.Sprintf("%.2f× (%s vs %s signatures/s)", q, sig3(par.Stat.Median), sig3(seq.Stat.Median))
		if c := r.cell(many, unitCores); c.OK {
			v.Measured += fmt.Sprintf(", %s cores busy", sig3(c.Stat.Median))
		}
		v.Met = q >= targetLoadGG18
	}
	out = append(out, v)
	return out
}

// separatedPoint is one RTT of the separated-sites benchmark: p50
// latencies in ms.
type separatedPoint struct {
	rtt        int // ms
	gg18, gg20 Cell
}

func separatedAt(r Results, rtt int) separatedPoint {
	name := fmt.Sprintf("%s/rtt=%dms/proto=", benchSep, rtt)
	return separatedPoint{rtt: rtt, gg18: r.cell(name+"gg18", unitP50), gg20: r.cell(name+"gg20", unitP50)}
}

// separatedPoints returns every RTT the run measured, ascending.
func separatedPoints(r Results) []separatedPoint {
	var out []separatedPoint
	for rtt := 0; rtt <= 1000; rtt++ {
		p := separatedAt(r, rtt)
		if p.gg18.OK || p.gg20.OK {
			out = append(out, p)
		}
	}
	return out
}

// slope fits latency = a + b·RTT by least squares over the points and
// returns b: the number of round trips one signature waits for.
func slope(pts []separatedPoint, get func(separatedPoint) Cell) (float64, bool) {
	var xs, ys []float64
	for _, p := range pts {
		if c := get(p); c.OK {
			xs = append(xs, float64(p.rtt))
			ys = append(ys, c.Stat.Median)
		}
	}
	if len(xs) < 2 {
		return 0, false
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// fmtTime formats nanoseconds with three significant digits in a fitting
// unit.
func fmtTime(ns float64) string {
	v, unit := timeUnit(ns)
	return sig3(ns/v) + " " + unit
}

// timeUnit picks the unit for a duration of ns nanoseconds.
func timeUnit(ns float64) (float64, string) {
	switch a := math.Abs(ns); {
	case a >= float64(time.Second):
		return float64(time.Second), "s"
	case a >= float64(time.Millisecond):
		return float64(time.Millisecond), "ms"
	case a >= float64(time.Microsecond):
		return float64(time.Microsecond), "µs"
	}
	return 1, "ns"
}

// sig3 formats v with three significant digits (more for large integers).
func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3g", v), "0"), ".")
}

// trimFloat formats a target without trailing zeros.
func trimFloat(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// thousands formats v rounded to an integer with thin-space-free comma
// grouping (12,345).
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
