//go:build linux

package tss_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/tss"
)

// The test binary doubles as a pre-parameter worker: TestMain hands over
// to runTestWorker when testWorkerEnv names a mode; it reports to the file
// named by testWorkerReport.
const testWorkerReport = "KQ_TSS_TEST_WORKER_REPORT"

// runTestWorker is the body of the test binary run as a worker:
//
//   - fixture: reports the policy and nice value of each of its threads,
//     then writes fixture set 0 as a real worker would;
//   - slow: waits 300 ms, then writes fixture set 0;
//   - hang: reports its pid and never answers;
//   - garbage: writes something that is not a set;
//   - fail: fails with a message on standard error.
func runTestWorker(mode string) int {
	var seed [48]byte
	if _, err := io.ReadFull(os.Stdin, seed[:]); err != nil {
		fmt.Fprintln(os.Stderr, "no seed:", err)
		return 2
	}
	report := func(s string) {
		if err := os.WriteFile(os.Getenv(testWorkerReport), []byte(s), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	switch mode {
	case "fixture":
		report(threadPriorities())
		b, err := fixtures.PreParamsJSON(0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		os.Stdout.Write(b)
	case "slow":
		time.Sleep(300 * time.Millisecond)
		b, err := fixtures.PreParamsJSON(0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		os.Stdout.Write(b)
	case "hang":
		report(strconv.Itoa(os.Getpid()))
		time.Sleep(time.Hour)
	case "garbage":
		fmt.Println("not a set")
	case "fail":
		fmt.Fprintln(os.Stderr, "worker broke on purpose")
		return 3
	}
	return 0
}

// threadPriorities lists "tid policy nice" for every thread of this
// process, one a line.
func threadPriorities() string {
	runtime.GC() // a few more runtime threads, made after the start
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return "error " + err.Error()
	}
	var b strings.Builder
	for _, t := range tids {
		tid, _ := strconv.Atoi(t.Name())
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			fmt.Fprintf(&b, "%d error %v\n", tid, err)
			continue
		}
		fmt.Fprintf(&b, "%d %d %d\n", tid, attr.Policy, attr.Nice)
	}
	return b.String()
}

// workerPool returns a pool over a fresh site's store whose worker is this
// test binary in the given mode, and the path the worker reports to.
func workerPool(t *testing.T, mode string) (*tss.PreParamsPool, *sitetest.Site, string) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report")
	t.Setenv(testWorkerEnv, mode)
	t.Setenv(testWorkerReport, report)
	site := sitetest.NewSite(t)
	pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: site.Store, Target: 1, Command: []string{os.Args[0], "-test.run=^$"}})
	if err != nil {
		t.Fatal(err)
	}
	return pool, site, report
}

// runUntil runs pool until cond holds for its status or a minute passes,
// then stops it and waits for Run to return.
func runUntil(t *testing.T, pool *tss.PreParamsPool, cond func(tss.PreParamsStatus) bool) tss.PreParamsStatus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := pool.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool status after a minute: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPreParamsPool_WorkerRunsAtIdlePriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the worker's priority is lowered on Linux only")
	}
	pool, _, report := workerPool(t, "fixture")
	runUntil(t, pool, func(st tss.PreParamsStatus) bool { return st.Generated == 1 || st.LastError != "" })
	st, err := pool.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Generated != 1 || st.Ready != 1 {
		t.Fatalf("status %+v, want one set generated and ready", st)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worker threads (tid policy nice):\n%s", b)
	checkThreads(t, "worker", string(b), unix.SCHED_IDLE, 19)
	// The thread that started the worker was retired: this process runs
	// at its own priority still.
	checkThreads(t, "this process", threadPriorities(), unix.SCHED_NORMAL, 0)
	// The set the worker wrote is the one handed out.
	got, err := pool.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, err := fixtures.PreParams(0)
	if err != nil {
		t.Fatal(err)
	}
	if got.PaillierSK.N.Cmp(want.PaillierSK.N) != 0 || got.NTildei.Cmp(want.NTildei) != 0 {
		t.Fatal("the pool handed out a set other than the worker's")
	}
}

// checkThreads fails t unless every "tid policy nice" line of report has
// the given policy and nice value.
func checkThreads(t *testing.T, who, report string, policy, nice int) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(report), "\n") {
		var tid, p, ni int
		if _, err := fmt.Sscanf(line, "%d %d %d", &tid, &p, &ni); err != nil {
			t.Fatalf("%s: thread report %q: %v", who, line, err)
		}
		if p != policy || ni != nice {
			t.Errorf("%s: thread %d has policy %d nice %d, want policy %d nice %d", who, tid, p, ni, policy, nice)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no threads reported", who)
	}
}

func TestPreParamsPool_CancelledWorkerLeavesNothing(t *testing.T) {
	pool, site, report := workerPool(t, "hang")
	var pid int
	runUntil(t, pool, func(tss.PreParamsStatus) bool {
		b, err := os.ReadFile(report)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	// Run has returned: the worker was killed and reaped before.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("worker %d after the pool stopped: kill(0) = %v, want ESRCH (the worker outlived its pool)", pid, err)
	}
	ids, err := site.Store.List(context.Background(), "preparams")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("a cancelled generation left %d sets in the store", len(ids))
	}
	st, err := pool.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Generating != 0 || st.Generated != 0 {
		t.Errorf("status after cancellation %+v, want nothing generating or generated", st)
	}
}

func TestPreParamsPool_FailingWorkerIsReported(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"fail", "exit status 3): worker broke on purpose"},
		{"garbage", "its output is not a pre-parameter set"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			pool, site, _ := workerPool(t, tc.mode)
			st := runUntil(t, pool, func(st tss.PreParamsStatus) bool { return st.LastError != "" })
			if !strings.Contains(st.LastError, tc.want) || !strings.Contains(st.LastError, os.Args[0]) {
				t.Errorf("last error %q, want one naming the worker and %q", st.LastError, tc.want)
			}
			ids, err := site.Store.List(context.Background(), "preparams")
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 0 || st.Generated != 0 {
				t.Errorf("a failed generation stored %d sets, counted %d", len(ids), st.Generated)
			}
		})
	}
}

// Status says how long generation takes here: the mean of the sets made,
// and how long the current one has run, so that keygen --wait can give an
// estimate.
func TestPreParamsPool_ReportsGenerationTimes(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		pool, _, _ := workerPool(t, "hang")
		st := runUntil(t, pool, func(st tss.PreParamsStatus) bool { return st.GeneratingForMS >= 200 })
		if st.MeanGenerationMS != 0 || st.Generated != 0 {
			t.Errorf("status while the first set generates %+v, want no mean yet", st)
		}
	})
	t.Run("made", func(t *testing.T) {
		pool, _, _ := workerPool(t, "slow")
		st := runUntil(t, pool, func(st tss.PreParamsStatus) bool { return st.Generated == 1 })
		// The worker slept 300 ms before it answered: the mean cannot
		// be less.
		if st.MeanGenerationMS < 300 || st.GeneratingForMS != 0 {
			t.Errorf("status after one set %+v, want a mean of at least 300 ms and nothing generating", st)
		}
	})
	t.Run("failed", func(t *testing.T) {
		pool, _, _ := workerPool(t, "fail")
		st := runUntil(t, pool, func(st tss.PreParamsStatus) bool { return st.LastError != "" })
		if st.MeanGenerationMS != 0 {
			t.Errorf("a failed generation counts toward the mean: %+v", st)
		}
	})
}
