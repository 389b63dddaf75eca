//go:build linux

package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/audit"
)

// Child roles (the test binary re-executed, see TestMain).
const (
	roleAppendLoop = "append-loop"
	roleDiskFull   = "disk-full"
	roleCrashAt    = "crash-at"
)

// child runs the test binary as a child process with a role.
func startChild(t *testing.T, role, dir string, key *ecdsa.PrivateKey, env ...string) *exec.Cmd {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "AUDIT_CHILD_DIR="+dir, "AUDIT_CHILD_KEY="+hex.EncodeToString(der))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runChild is the body of a child process; it reports on stdout/stderr
// and through its exit code.
func runChild(role string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child %s: %s\n", role, fmt.Sprintf(format, args...))
		return 1
	}
	der, err := hex.DecodeString(os.Getenv("AUDIT_CHILD_KEY"))
	if err != nil {
		return fail("key: %v", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fail("key: %v", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return fail("key is %T", k)
	}
	dir := os.Getenv("AUDIT_CHILD_DIR")
	l, err := audit.Open(dir, audit.Config{Origin: originA, Site: "site-a", Signer: key})
	if err != nil {
		return fail("open: %v", err)
	}
	switch role {
	case roleAppendLoop:
		workers, _ := strconv.Atoi(os.Getenv("AUDIT_CHILD_WORKERS"))
		return appendLoop(l, workers)
	case roleDiskFull:
		defer l.Close()
		return diskFull(l, dir, fail)
	case roleCrashAt:
		return crashAt(l, os.Getenv("AUDIT_CHILD_STEP"), fail)
	}
	return fail("unknown role")
}

// crashPad makes entries a few KiB long so that a kill can land inside a
// record's write.
var crashPad = strings.Repeat("p", 3000)

// appendLoop appends from several goroutines until the process is
// killed, printing "ok SEQ WORKER I" after each append returns (that is,
// once the entry is durable) and "cp SIZE" after each checkpoint.
func appendLoop(l *audit.Log, workers int) int {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.Write([]byte(fmt.Sprintf(format, args...))) // one write(2) per line
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e, err := l.Append(context.Background(), audit.Record{Type: "crash.test", Fields: map[string]string{
					"w": strconv.Itoa(w), "i": strconv.Itoa(i), "pad": crashPad,
				}})
				if err != nil {
					say("error %v\n", err)
					return
				}
				say("ok %d %d %d\n", e.Seq, w, i)
				if w == 0 && i%20 == 19 {
					cp, err := l.Checkpoint(context.Background())
					if err != nil {
						say("error %v\n", err)
						return
					}
					say("cp %d\n", cp.Size)
				}
			}
		}()
	}
	wg.Wait()
	return 1
}

// crashAt appends three entries, then kills itself with SIGKILL at a
// chosen step of the fourth append's commit.
func crashAt(l *audit.Log, step string, fail func(string, ...any) int) int {
	ctx := context.Background()
	for i := range 3 {
		if _, err := l.Append(ctx, audit.Record{Type: "crash.test", Fields: map[string]string{"i": strconv.Itoa(i), "pad": crashPad}}); err != nil {
			return fail("append: %v", err)
		}
	}
	audit.SetCommitHook(l, func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	})
	l.Append(ctx, audit.Record{Type: "crash.test", Fields: map[string]string{"i": "3", "pad": crashPad}})
	return fail("append returned instead of dying at step %q", step)
}

// TestCrash_KillAtEachStepOfACommit kills the writer at every step of a
// commit: before the entry is written, halfway through writing it, after
// it is written but before fdatasync, and after fdatasync. The log must
// open and verify with the three earlier entries, plus the fourth only if
// its record was complete, never half of it.
func TestCrash_KillAtEachStepOfACommit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	for _, tc := range []struct {
		step     string
		wantSize uint64
		torn     bool
	}{
		{"caches", 3, false},
		{"torn", 3, true},
		{"written", 4, false}, // a process kill keeps the page cache
		{"synced", 4, false},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			key := newKey(t)
			cmd := startChild(t, roleCrashAt, dir, key, "AUDIT_CHILD_STEP="+tc.step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, not SIGKILL: %s", err, out)
			}
			before, _ := os.Stat(filepath.Join(dir, "entries"))
			l, err := audit.Open(dir, audit.Config{Origin: originA, Site: "site-a", Signer: key})
			if err != nil {
				t.Fatalf("Open after SIGKILL at %s: %v", tc.step, err)
			}
			after, _ := os.Stat(filepath.Join(dir, "entries"))
			if l.Size() != tc.wantSize {
				t.Fatalf("log holds %d entries after SIGKILL at %s, want %d", l.Size(), tc.step, tc.wantSize)
			}
			if cut := before.Size() - after.Size(); (cut > 0) != tc.torn {
				t.Fatalf("recovery cut %d bytes", cut)
			}
			// The log goes on from there.
			e, err := l.Append(context.Background(), audit.Record{Type: "after.crash"})
			if err != nil || e.Seq != tc.wantSize {
				t.Fatalf("append after recovery: %+v, %v", e, err)
			}
			if _, err := l.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.Close()
			v, _ := audit.NewVerifier(originA, key.Public())
			if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{Log: v}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCrash_KillDuringAppends kills a child process with SIGKILL at random
// points while it appends; after each kill the log must open, verify, and
// hold every entry the child reported durable, and nothing but entries
// whose append was in flight after them.
func TestCrash_KillDuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	for _, workers := range []int{1, 8} {
		t.Run(fmt.Sprintf("%d appenders", workers), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			key := newKey(t)
			cfg := audit.Config{Origin: originA, Site: "site-a", Signer: key}
			reported := map[uint64][2]string{}
			var cps []uint64
			for round := range 4 {
				out := killedChild(t, dir, key, workers, time.Duration(5+mrand.IntN(60))*time.Millisecond)
				maxSeq := int64(-1)
				for _, line := range strings.Split(out, "\n") {
					f := strings.Fields(line)
					switch {
					case len(f) == 4 && f[0] == "ok":
						seq, _ := strconv.ParseUint(f[1], 10, 64)
						reported[seq] = [2]string{f[2], f[3]}
						maxSeq = max(maxSeq, int64(seq))
					case len(f) == 2 && f[0] == "cp":
						n, _ := strconv.ParseUint(f[1], 10, 64)
						cps = append(cps, n)
					case len(f) > 0 && f[0] == "error":
						t.Fatalf("round %d: child: %s", round, line)
					}
				}
				before, err := os.Stat(filepath.Join(dir, "entries"))
				if err != nil {
					t.Fatal(err)
				}
				l, err := audit.Open(dir, cfg)
				if err != nil {
					t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
				}
				after, err := os.Stat(filepath.Join(dir, "entries"))
				if err != nil {
					t.Fatal(err)
				}
				size := l.Size()
				if int64(size)-1 < maxSeq || int64(size)-1-maxSeq > int64(workers) {
					l.Close()
					t.Fatalf("round %d: log ends at entry %d; the child reported entry %d durable with %d appends in flight", round, int64(size)-1, maxSeq, workers)
				}
				for seq, want := range reported {
					e, err := l.Entry(context.Background(), seq)
					if err != nil || e.Fields["w"] != want[0] || e.Fields["i"] != want[1] || e.Fields["pad"] != crashPad {
						l.Close()
						t.Fatalf("round %d: entry %d the child reported durable: %+v, %v", round, seq, e.Fields, err)
					}
				}
				have := map[uint64]bool{}
				for _, c := range l.Checkpoints() {
					have[c.Size] = true
				}
				for _, n := range cps {
					if !have[n] {
						l.Close()
						t.Fatalf("round %d: checkpoint at size %d reported but not in the log", round, n)
					}
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				v, _ := audit.NewVerifier(originA, key.Public())
				if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{Log: v}); err != nil {
					t.Fatalf("round %d: Verify after recovery: %v", round, err)
				}
				t.Logf("round %d: killed after %d reported entries; the log holds %d; recovery cut a torn tail of %d bytes", round, maxSeq+1, size, before.Size()-after.Size())
			}
		})
	}
}

// killedChild runs the append loop, kills it with SIGKILL some time after
// its first durable append, and returns what it printed.
func killedChild(t *testing.T, dir string, key *ecdsa.PrivateKey, workers int, after time.Duration) string {
	t.Helper()
	cmd := startChild(t, roleAppendLoop, dir, key, "AUDIT_CHILD_WORKERS="+strconv.Itoa(workers))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	first := make(chan struct{})
	readDone := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		once := sync.OnceFunc(func() { close(first) })
		for {
			line, err := r.ReadString('\n')
			out.WriteString(line)
			if strings.HasPrefix(line, "ok ") {
				once()
			}
			if err != nil {
				once()
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readDone <- err
				return
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child made no append in 30s: %s", stderr.String())
	}
	time.Sleep(after)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Read to the end (the pipe closes when the child dies) before Wait,
	// which closes the pipe.
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not SIGKILL: %s", err, stderr.String())
	}
	return out.String()
}

// diskFull appends under a file-size limit (RLIMIT_FSIZE, so the kernel's
// write(2) fails with EFBIG as on a full disk), checks that Append fails
// with ErrAppendFailed and leaves the log as it was, lifts the limit and
// appends again.
func diskFull(l *audit.Log, dir string, fail func(string, ...any) int) int {
	ctx := context.Background()
	rec := audit.Record{Type: "disk.test", Fields: map[string]string{"pad": crashPad}}
	for range 3 {
		if _, err := l.Append(ctx, rec); err != nil {
			return fail("append before the limit: %v", err)
		}
	}
	entries := filepath.Join(dir, "entries")
	st, err := os.Stat(entries)
	if err != nil {
		return fail("%v", err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fail("getrlimit: %v", err)
	}
	full := lim
	// Room for one more entry and most of another, so the failing write
	// leaves a long partial record behind.
	full.Cur = uint64(st.Size()) + 2*uint64(len(crashPad))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		return fail("setrlimit: %v", err)
	}
	var failed error
	for range 10 {
		if _, err := l.Append(ctx, rec); err != nil {
			failed = err
			break
		}
	}
	if !errors.Is(failed, audit.ErrAppendFailed) || !errors.Is(failed, syscall.EFBIG) {
		return fail("append past the limit = %v, want ErrAppendFailed wrapping EFBIG", failed)
	}
	size := l.Size()
	before, _ := os.Stat(entries)
	// Still full: still refused, and nothing changes.
	if _, err := l.Append(ctx, rec); !errors.Is(err, audit.ErrAppendFailed) {
		return fail("second append past the limit = %v", err)
	}
	after, _ := os.Stat(entries)
	if err := l.Healthy(); err != nil {
		return fail("a failed write left the log unusable: %v", err)
	}
	if l.Size() != size || after.Size() != before.Size() {
		return fail("a failed append changed the log: %d -> %d entries, %d -> %d bytes", size, l.Size(), before.Size(), after.Size())
	}
	// Space is back: appends work again.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fail("setrlimit: %v", err)
	}
	// A short entry, so that anything the failed write left behind would
	// outlast it.
	e, err := l.Append(ctx, audit.Record{Type: "disk.test"})
	if err != nil {
		return fail("append after the limit was lifted: %v", err)
	}
	if e.Seq != size {
		return fail("entry after recovery has seq %d, want %d", e.Seq, size)
	}
	fmt.Printf("size %d\n", l.Size())
	return 0
}

// TestAppend_FailsClosedWhenTheDiskIsFull runs diskFull in a child process
// (a file-size limit would hit the test binary's own files too).
func TestAppend_FailsClosedWhenTheDiskIsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "audit")
	key := newKey(t)
	cmd := startChild(t, roleDiskFull, dir, key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var size uint64
	if _, err := fmt.Sscanf(string(out), "size %d", &size); err != nil {
		t.Fatalf("child output %q", out)
	}
	l, err := audit.Open(dir, audit.Config{Origin: originA, Site: "site-a", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Size() != size {
		t.Fatalf("log holds %d entries, the child left %d", l.Size(), size)
	}
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, _ := audit.NewVerifier(originA, key.Public())
	if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{Log: v}); err != nil {
		t.Fatal(err)
	}
}
