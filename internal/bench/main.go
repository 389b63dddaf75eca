// Command bench runs keyquorum's benchmark suite and writes the results
// page: `go run ./internal/bench` (what `make bench` does) runs the
// benchmarks of internal/bench/suite, hsmshare and tss/gg20 with `go test
// -bench`, keeps their raw output (benchstat-compatible) in
// docs/bench/raw.txt, checks the performance targets (report.go), profiles the
// benchmarks behind missed targets, writes the separated-sites figure's data
// (docs/bench/separated.json) and writes docs/benchmarks.md and the README's
// benchmark table. The figure itself, docs/bench/separated.png, is drawn
// from that data by internal/bench/plot, a module of its own so that the
// library does not depend on a plotting library; `make bench` runs it after
// this command.
//
//	go run ./internal/bench                  # full suite, about half an hour on 2 cores
//	go run ./internal/bench -quick -out DIR  # smoke run into DIR, README untouched
//	go run ./internal/bench -render          # rebuild page and README from docs/bench
//	cd internal/bench/plot && go run .       # draw docs/bench/separated.png
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/internal/netns"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	quick   bool
	out     string
	readme  string
	render  bool
	profile bool
	lab     string
}

func run() error {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke run: a subset of the suite with few iterations")
	flag.StringVar(&o.out, "out", "docs", "directory for benchmarks.md; raw output, run.json and the plot's data go to OUT/bench")
	flag.StringVar(&o.readme, "readme", "README.md", "README whose bench section to rewrite (empty: none; never with -quick)")
	flag.BoolVar(&o.render, "render", false, "do not run anything: rebuild the page (and README) from OUT/bench/raw.txt and run.json")
	flag.BoolVar(&o.profile, "profile", true, "take CPU profiles of the benchmarks behind missed targets (not with -quick)")
	flag.StringVar(&o.lab, "lab", "", "lab directory kept between suite runs (default: a fresh temporary directory, removed at the end)")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the repository root (go run ./internal/bench)")
	}
	if o.quick {
		o.readme = ""
		o.profile = false
	}
	dataDir := filepath.Join(o.out, "bench")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	var rec runRecord
	if o.render {
		data, err := os.ReadFile(filepath.Join(dataDir, "run.json"))
		if err != nil {
			return fmt.Errorf("-render needs a previous run: %w", err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("run.json: %w", err)
		}
	} else {
		var err error
		if rec, err = runSuite(ctx, o, dataDir); err != nil {
			return err
		}
	}
	if err := write(o, dataDir, rec); err != nil {
		return err
	}
	if len(rec.Settings.Failed) > 0 {
		return fmt.Errorf("%d benchmark steps failed (see the page and %s): %s", len(rec.Settings.Failed),
			filepath.Join(dataDir, "raw.txt"), strings.Join(rec.Settings.Failed, "; "))
	}
	return nil
}

// runRecord is what a run keeps next to its raw output (run.json) so that
// the page can be rebuilt from them alone.
type runRecord struct {
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Profiles []Profile `json:"profiles"`
}

// step is one `go test -bench` invocation.
type step struct {
	pkg, bench, benchtime string
	count                 int
}

// plan returns the suite's steps. Order matters: presigning runs before
// the online benchmarks so that their pool starts from its presignatures.
func plan(quick bool) []step {
	if quick {
		return []step{
			{"./hsmshare/", "^Benchmark(Seal4KiB|Open4KiB|IdentitySign)$", "100x", 1},
			{"./internal/bench/suite/", "^Benchmark(Sign|Presign|OnlineBatch|Separated)$", "1x", 1},
			{"./internal/bench/suite/", "^BenchmarkOnline$", "10x", 1},
			{"./internal/bench/suite/", "^BenchmarkLoad$", "1x", 1},
		}
	}
	return []step{
		{"./hsmshare/", "^Benchmark(Seal4KiB|Open4KiB|IdentitySign|StorePutGet4KiB)$", "500ms", 5},
		{"./tss/gg20/", "^BenchmarkOnlineSign(Batched)?$", "1000x", 3},
		{"./internal/bench/suite/", "^BenchmarkKeygen$/^size=2of3$", "1x", 3},
		{"./internal/bench/suite/", "^BenchmarkKeygen$/^size=3of5$", "1x", 2},
		{"./internal/bench/suite/", "^BenchmarkSign$", "3x", 5},
		{"./internal/bench/suite/", "^BenchmarkPresign$", "1x", 3},
		{"./internal/bench/suite/", "^BenchmarkReshare$", "1x", 3},
		{"./internal/bench/suite/", "^BenchmarkOnline$", "200x", 5},
		{"./internal/bench/suite/", "^BenchmarkOnlineBatch$", "1x", 5},
		{"./internal/bench/suite/", "^BenchmarkSeparated$", "5x", 3},
		{"./policy/", "^Benchmark(PerSignatureRequest|PerSignatureRequestParallel)$", "500x", 3},
		{".", "^BenchmarkNodeSign$/^gg20-online(-psbt-approved|-audit-off)?$", "100x", 3},
		{"./audit/", "^BenchmarkAppend$", "2s", 3},
		{"./audit/", "^BenchmarkMillion$", "1x", 1},
		{".", "^BenchmarkNodeSignDuringPreParams$", "20x", 3},
		{"./examples/kqnode/", "^BenchmarkCLISign$", "20x", 3},
		{"./internal/bench/suite/", "^BenchmarkLoad$", "1x", 3},
	}
}

// profiles are the benchmarks re-run with a CPU profile when a target
// that depends on them is missed.
var profiles = map[string]struct {
	title     string
	bench     string
	benchtime string
	// waits adds a runtime trace, to show where the process blocked in
	// system calls (fsync, the HSM, the network): for operations that wait
	// more than they compute.
	waits bool
}{
	"keygen":  {"Keygen 2-of-3, keyquorum in one process (all three parties)", "^BenchmarkKeygen$/^size=2of3$/^impl=memnet$", "1x", false},
	"sign":    {"GG18 sign 2-of-3, keyquorum in one process (all three parties)", "^BenchmarkSign$/^size=2of3$/^impl=memnet$", "5x", false},
	"reshare": {"Resharing 2-of-3, keyquorum in one process (all three parties)", "^BenchmarkReshare$/^size=2of3$/^impl=memnet$", "1x", false},
	"presign": {"GG20 presigning, keyquorum in one process (all three parties)", "^BenchmarkPresign$/^size=2of3$/^impl=memnet$", "1x", false},
	"online":  {"GG20 online signing, one signature at a time: the initiating party's process (3 processes)", "^BenchmarkOnline$/^size=2of3$/^impl=libp2p$", "300x", true},
	"batch":   {"GG20 online signing in batches: the initiating party's process (3 processes)", "^BenchmarkOnlineBatch$/^size=2of3$/^impl=libp2p$", "1x", true},
}

func runSuite(ctx context.Context, o options, dataDir string) (runRecord, error) {
	start := time.Now()
	rec := runRecord{Machine: describeMachine(ctx)}
	if rec.Machine.LoadStart1 >= loadQuiet {
		fmt.Fprintf(os.Stderr, "bench: warning: load average is %s; figures will be pessimistic\n", rec.Machine.LoadStart)
	}
	s := &rec.Settings
	s.Quick, s.Batch, s.Presign = o.quick, 1000, 64
	if o.quick {
		s.Batch, s.Presign = 10, 4
	}
	s.Separated = "netem"
	if err := netns.NetemAvailable(); err != nil {
		s.Separated, s.SeparatedWhy = "emulated", err.Error()
	}

	lab := o.lab
	if lab == "" {
		tmp, err := os.MkdirTemp("", "keyquorum-bench-lab-")
		if err != nil {
			return rec, err
		}
		defer os.RemoveAll(tmp)
		lab = tmp
	}
	lab, err := filepath.Abs(lab)
	if err != nil {
		return rec, err
	}
	env := []string{
		"KQBENCH_DIR=" + lab,
		fmt.Sprintf("KQBENCH_BATCH=%d", s.Batch),
		fmt.Sprintf("KQBENCH_PRESIGN=%d", s.Presign),
		"KQBENCH_SEPARATED=" + s.Separated,
	}
	if o.quick {
		env = append(env, "KQBENCH_RTTS=0,50", "KQBENCH_LOAD_GG20=5", "KQBENCH_LOAD_GG18=3")
	}

	rawPath := filepath.Join(dataDir, "raw.txt")
	raw, err := os.Create(rawPath)
	if err != nil {
		return rec, err
	}
	defer raw.Close()
	// A failing step does not stop the run: its figures are missing from
	// the page, which names it, and the command fails at the end. Suite
	// steps run -count times over with -count 1, so that raw tss-lib and
	// keyquorum take turns and a drifting machine load hits both alike
	// (go test -count N runs each sub-benchmark N times in a row).
	for _, st := range plan(o.quick) {
		runs, one := 1, st
		if strings.HasPrefix(st.pkg, "./internal/bench/") {
			runs, one.count = st.count, 1
		}
		_, line := goTest(ctx, one, env, "", "")
		if runs > 1 {
			line = fmt.Sprintf("for i in $(seq %d); do %s; done", runs, line)
		}
		s.Steps = append(s.Steps, line)
		for i := range runs {
			cmd, _ := goTest(ctx, one, env, "", "")
			fmt.Fprintf(os.Stderr, "bench: (%d/%d) %s\n", i+1, runs, line)
			cmd.Stdout = io.MultiWriter(raw, os.Stderr)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: step failed: %v\n", err)
				s.Failed = append(s.Failed, line)
				break
			}
		}
	}
	if err := raw.Close(); err != nil {
		return rec, err
	}

	if o.profile {
		rs, err := readRaw(rawPath)
		if err != nil {
			return rec, err
		}
		done := map[string]bool{}
		for _, v := range Verdicts(Index(rs)) {
			if !v.Known || v.Met || v.Profile == "" || done[v.Profile] {
				continue
			}
			done[v.Profile] = true
			rec.Profiles = append(rec.Profiles, takeProfile(ctx, v.Profile, env, lab))
		}
	}
	rec.Machine.LoadEnd, rec.Machine.LoadEnd1 = loadAverage()
	rec.Machine.Elapsed = time.Since(start).Round(time.Second).String()
	return rec, nil
}

// goTest returns the command of one step and its shell form for the page.
// profile and trace, when set, are files for a CPU profile and a runtime
// trace of the benchmark's timed loop.
func goTest(ctx context.Context, st step, env []string, profile, trace string) (*exec.Cmd, string) {
	args := []string{"test", "-run", "^$", "-bench", st.bench, "-benchtime", st.benchtime,
		"-count", fmt.Sprint(st.count), "-timeout", "90m", st.pkg}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = os.Environ()
	var shown []string
	if strings.HasPrefix(st.pkg, "./internal/bench/") {
		cmd.Env = append(cmd.Env, env...)
		for _, e := range env {
			if strings.HasPrefix(e, "KQBENCH_DIR=") {
				e = "KQBENCH_DIR=$LAB"
			}
			shown = append(shown, e)
		}
		if profile != "" {
			cmd.Env = append(cmd.Env, "KQBENCH_PROFILE="+profile)
			shown = append(shown, "KQBENCH_PROFILE=cpu.pprof")
		}
		if trace != "" {
			cmd.Env = append(cmd.Env, "KQBENCH_TRACE="+trace)
			shown = append(shown, "KQBENCH_TRACE=trace.out")
		}
	}
	line := strings.Join(append(shown, "go", "test", "-run", "'^$'", "-bench", "'"+st.bench+"'",
		"-benchtime", st.benchtime, "-count", fmt.Sprint(st.count), st.pkg), " ")
	return cmd, line
}

func readRaw(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// takeProfile re-runs the benchmark behind a missed target with a CPU
// profile and returns the top of it.
func takeProfile(ctx context.Context, key string, env []string, lab string) Profile {
	spec := profiles[key]
	p := Profile{Key: key, Title: spec.title}
	dir := filepath.Join(lab, "profiles")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		p.Err = err.Error()
		return p
	}
	file := filepath.Join(dir, key+".pprof")
	traceFile := ""
	if spec.waits {
		traceFile = filepath.Join(dir, key+".trace")
	}
	cmd, line := goTest(ctx, step{"./internal/bench/suite/", spec.bench, spec.benchtime, 1}, env, file, traceFile)
	p.Command = line + " && go tool pprof -top cpu.pprof"
	fmt.Fprintf(os.Stderr, "bench: profile: %s\n", line)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.Err = fmt.Sprintf("%v: %s", err, lastLines(string(out), 5))
		return p
	}
	top, err := pprofTop(ctx, file)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Top = top
	if traceFile == "" {
		return p
	}
	// The trace's system-call blocking profile: where the process waited
	// in the kernel or in the PKCS#11 module. Two goroutines block in read
	// all the time without being part of the work: the party's reader of
	// driver requests and the profiler's own.
	sys := filepath.Join(dir, key+".syscall.pprof")
	out, err := exec.CommandContext(ctx, "go", "tool", "trace", "-pprof=syscall", traceFile).Output()
	if err == nil {
		err = os.WriteFile(sys, out, 0o600)
	}
	if err == nil {
		p.Waits, err = pprofTop(ctx, sys, `-ignore=party\.Serve\.func|runtime\.\(\*profBuf\)\.read`)
	}
	if err != nil {
		p.Err = fmt.Sprintf("system-call profile: %v", err)
		return p
	}
	p.Command += " && go tool trace -pprof=syscall trace.out > syscall.pprof && go tool pprof -top -ignore='party\\.Serve\\.func|profBuf' syscall.pprof"
	return p
}

// pprofTop returns `go tool pprof -top` of a profile without the lines
// that name local files.
func pprofTop(ctx context.Context, file string, flags ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=20"}, flags...)
	out, err := exec.CommandContext(ctx, "go", append(args, file)...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof %s: %w", filepath.Base(file), err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "File: ") || strings.HasPrefix(l, "Build ID: ") || strings.HasPrefix(l, "Main binary filename") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n")), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// write renders the page, the plot's data, run.json and the README section.
func write(o options, dataDir string, rec runRecord) error {
	rawPath := filepath.Join(dataDir, "raw.txt")
	rs, err := readRaw(rawPath)
	if err != nil {
		return err
	}
	rawText, err := os.ReadFile(rawPath)
	if err != nil {
		return err
	}
	rep := &Report{Machine: rec.Machine, Results: Index(rs), Raw: rs, Settings: rec.Settings, Profiles: rec.Profiles,
		RawPath: "bench/raw.txt", Connections: connections(string(rawText))}
	// The figure's data goes next to the raw output; the renderer
	// (internal/bench/plot, its own module) draws separated.png from it
	// after this command, as `make bench` does.
	figPath, plotPath := filepath.Join(dataDir, "separated.json"), filepath.Join(dataDir, "separated.png")
	method := "netem"
	if rec.Settings.Separated != "netem" {
		method = "emulated latency"
	}
	fig, err := SeparatedFigure(rep.Results, method)
	if err == nil {
		err = writeFigure(fig, figPath)
	}
	if err == nil {
		rep.Plot = "bench/separated.png"
	} else {
		fmt.Fprintln(os.Stderr, "bench: no plot:", err)
		os.Remove(figPath)
		os.Remove(plotPath)
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "run.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	page := filepath.Join(o.out, "benchmarks.md")
	if err := os.WriteFile(page, []byte(Page(rep)), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: wrote", page)
	if o.readme == "" {
		return nil
	}
	old, err := os.ReadFile(o.readme)
	if err != nil {
		return err
	}
	updated, err := ReplaceSection(string(old), ReadmeSection(rep))
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.readme, []byte(updated), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: updated", o.readme)
	return nil
}
