package suite

import (
	"strconv"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
)

// onlineSeed names the digests online benchmarks sign.
const onlineSeed = "online"

// online signs with GG20 presignatures from the pool snapshot. It counts
// the presignatures used since the last restore, so the k-th presignature
// always signs Digest(onlineSeed, k), whatever the benchmark.
type online struct {
	b     *testing.B
	mode  driver.Mode
	rtt   time.Duration
	key   string
	ready int
	d     *driver.Deployment
	next  int
}

// newOnline prepares online signing in mode; the first restart (by
// reserve or restart) restores the pool and deploys. rtt is the emulated
// round trip time (Emulated mode only).
func newOnline(b *testing.B, mode driver.Mode, rtt time.Duration) *online {
	b.Helper()
	return &online{b: b, mode: mode, rtt: rtt, key: mainKey(b), ready: poolReady(b)}
}

func poolReady(b *testing.B) int {
	b.Helper()
	n, err := strconv.Atoi(lab.Value("pool-ready"))
	if err != nil {
		b.Fatalf("no presignature pool snapshot: %v", err)
	}
	return n
}

// restart restores the pool snapshot, deploys, has the initiating party
// build its verification tables for the key (tss.Engine.PrepareOnline, as
// a running signing service has them) and signs once (presignature 0) so
// that every connection is up before anything is timed.
func (o *online) restart() {
	o.b.Helper()
	restorePool(o.b)
	o.d = deploy(o.b, o.mode, trio)
	if o.mode == driver.Emulated {
		each(o.b, o.d, party.Request{Op: party.OpDelay, RTT: o.rtt})
	}
	do(o.b, o.d, party.Request{Op: party.OpPrepare, Party: 0, KeyID: o.key})
	o.next = 0
	o.sign(1, false)
}

// reserve makes sure n presignatures are left, restarting from the
// snapshot (with the benchmark timer stopped) when they are not.
func (o *online) reserve(n int) {
	o.b.Helper()
	if o.d != nil && o.d == dep && o.next+n <= o.ready {
		return
	}
	if 1+n > o.ready {
		o.b.Fatalf("the pool snapshot holds %d presignatures; %d needed", o.ready, 1+n)
	}
	o.b.StopTimer()
	o.restart()
	o.b.StartTimer()
}

// sign signs the next n digests, in one batch or one at a time.
func (o *online) sign(n int, batch bool) {
	o.b.Helper()
	resp := do(o.b, o.d, party.Request{Op: party.OpOnline, Party: 0, KeyID: o.key, Parties: signers,
		Seed: onlineSeed, First: o.next, Count: n, Batch: batch})
	o.next += n
	if resp.Done != n {
		o.b.Fatalf("signed %d of %d digests", resp.Done, n)
	}
}

// BenchmarkOnline measures GG20 one-round signing of one digest from a
// ready presignature, 2-of-3: the initiator sends the request, the other
// signer checks it, durably deletes the presignature and answers with its
// share; the initiator combines and verifies. One operation is one
// signature; p50-ms and p90-ms are percentiles over the run's signatures.
func BenchmarkOnline(b *testing.B) {
	ensurePool(b, envInt(b, envBatch, 1000)+1)
	for _, mode := range []driver.Mode{driver.InProcess, driver.Processes} {
		b.Run("size=2of3/impl="+string(mode), func(b *testing.B) {
			o := newOnline(b, mode, 0)
			o.reserve(1)
			d := o.d
			stop := profile(b, d, 0)
			var lat latencies
			for b.Loop() {
				o.reserve(1)
				lat.time(func() { o.sign(1, false) })
			}
			if d == dep {
				stop()
			}
			lat.report(b)
		})
	}
}

// BenchmarkOnlineBatch measures SignBatch: KQBENCH_BATCH (default 1000)
// digests signed with as many presignatures in one round trip and one
// durable write per party. One operation is one batch; sig/s is digests
// signed per second of batch time.
func BenchmarkOnlineBatch(b *testing.B) {
	n := envInt(b, envBatch, 1000)
	ensurePool(b, n+1)
	for _, mode := range []driver.Mode{driver.InProcess, driver.Processes} {
		b.Run("size=2of3/impl="+string(mode), func(b *testing.B) {
			o := newOnline(b, mode, 0)
			var peak float64
			for b.Loop() {
				b.StopTimer()
				o.restart()
				mem := memoryPeak(b, o.d)
				stop := profile(b, o.d, 0)
				b.StartTimer()
				o.sign(n, true)
				b.StopTimer()
				stop()
				peak = max(peak, mem())
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sig/s")
			b.ReportMetric(peak, "peak-RSS-MiB")
		})
	}
}
