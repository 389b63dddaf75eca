package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	// Pkg is the package the line belongs to (from the preceding "pkg:"
	// line).
	Pkg string
	// Name is the benchmark's full name without the GOMAXPROCS suffix,
	// for example "BenchmarkSign/size=2of3/impl=memnet".
	Name string
	// Procs is the GOMAXPROCS suffix (0 when the line has none).
	Procs int
	// Iterations is b.N.
	Iterations int
	// Metrics maps each unit ("ns/op", "p50-ms", ...) to its value.
	Metrics map[string]float64
}

// benchLine matches "BenchmarkName-2   \t  10\t  123 ns/op\t 4.5 unit...".
var benchLine = regexp.MustCompile(`^(Benchmark\S*)\s+(\d+)\s+(.+)$`)

// Parse reads `go test -bench` output (as benchstat does: the format of
// golang.org/design/14313-benchmark-format) and returns its benchmark
// lines in order. Lines that are not benchmark results are skipped; a
// benchmark line that does not parse is an error.
func Parse(r io.Reader) ([]Result, error) {
	var (
		out []Result
		pkg string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(v)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		res := Result{Pkg: pkg, Metrics: map[string]float64{}}
		res.Name, res.Procs = splitProcs(m[1])
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: iterations %q: %w", lineNo, m[2], err)
		}
		if n == 0 {
			// A benchmark that failed: go test prints "0 NaN ns/op" for it
			// after its FAIL line, and the step is reported as failed.
			continue
		}
		res.Iterations = n
		fields := strings.Fields(m[3])
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("line %d: value without a unit in %q", lineNo, line)
		}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("line %d: value %q is not a number", lineNo, fields[i])
			}
			res.Metrics[fields[i+1]] = v
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// splitProcs splits "BenchmarkX/y-2" into "BenchmarkX/y" and 2.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 0
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil || p <= 0 {
		return name, 0
	}
	return name[:i], p
}

// Stat summarizes the values one benchmark metric took over the runs
// (-count) of a suite.
type Stat struct {
	N                int
	Median, Min, Max float64
}

// Summarize returns the median and range of vals. The median of an even
// number of values is the mean of the middle two.
func Summarize(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// Results indexes parsed results by benchmark name and unit.
type Results map[string]map[string][]float64

// Index groups results by name and unit, in run order.
func Index(rs []Result) Results {
	idx := Results{}
	for _, r := range rs {
		m := idx[r.Name]
		if m == nil {
			m = map[string][]float64{}
			idx[r.Name] = m
		}
		for unit, v := range r.Metrics {
			m[unit] = append(m[unit], v)
		}
	}
	return idx
}

// Stat returns the summary of one benchmark's unit; ok is false when the
// run has no such values.
func (r Results) Stat(name, unit string) (Stat, bool) {
	vals := r[name][unit]
	if len(vals) == 0 {
		return Stat{}, false
	}
	return Summarize(vals), true
}
