package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// loadQuiet is the 1-minute load average under which the page treats the
// machine as idle.
const loadQuiet = 1.5

// Machine describes where and when the suite ran.
type Machine struct {
	Date       time.Time `json:"date"`
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	Memory     string    `json:"memory"`
	Kernel     string    `json:"kernel"`
	GoVersion  string    `json:"go"`
	Platform   string    `json:"platform"`
	TSSLib     string    `json:"tss_lib"`
	SoftHSM    string    `json:"softhsm"`
	Commit     string    `json:"commit"`
	LoadStart  string    `json:"load_start"`
	LoadEnd    string    `json:"load_end"`
	LoadStart1 float64   `json:"load_start_1m"`
	LoadEnd1   float64   `json:"load_end_1m"`
	Elapsed    string    `json:"elapsed"`
}

// describeMachine collects what the page says about the machine. Facts
// that cannot be read are reported as "unknown" rather than guessed.
func describeMachine(ctx context.Context) Machine {
	m := Machine{
		Date:     time.Now(),
		Cores:    runtime.NumCPU(),
		CPU:      cpuModel(),
		Memory:   memTotal(),
		Kernel:   firstLine(readFile("/proc/sys/kernel/osrelease")),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		TSSLib:   moduleVersion("github.com/bnb-chain/tss-lib/v2"),
		SoftHSM:  firstLine(command(ctx, "softhsm2-util", "--version")),
		Commit:   gitCommit(ctx),
	}
	m.GoVersion = firstLine(command(ctx, "go", "env", "GOVERSION"))
	m.LoadStart, m.LoadStart1 = loadAverage()
	return m
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return "unknown"
	}
	return s
}

func command(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotal returns MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/meminfo")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}

// loadAverage returns the 1, 5 and 15 minute load averages as text and the
// 1-minute one as a number (-1 when unknown).
func loadAverage() (string, float64) {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown", -1
	}
	one, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "unknown", -1
	}
	return strings.Join(f[:3], ", "), one
}

// moduleVersion reads the version of a required module from go.mod.
func moduleVersion(path string) string {
	for _, line := range strings.Split(readFile("go.mod"), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return "unknown"
}

// gitCommit returns the short commit hash, marked when the tree has
// uncommitted changes.
func gitCommit(ctx context.Context) string {
	c := strings.TrimSpace(command(ctx, "git", "rev-parse", "--short", "HEAD"))
	if c == "" {
		return "unknown"
	}
	if strings.TrimSpace(command(ctx, "git", "status", "--porcelain", "--untracked-files=no")) != "" {
		c += " (with uncommitted changes)"
	}
	return c
}
