package tss_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/rawtss"
	"github.com/keyquorum/keyquorum/tss"
)

// The benchmarks below run the same 2-of-3 work twice in one process: raw
// tss-lib with its messages passed over channels, and keyquorum's engine
// (sessions, validation, echo broadcast, sealed storage on SoftHSM2 tokens,
// in-memory network). The ratio of the two is the stack's overhead.
//
//	go test -run '^$' -bench 'Keygen2of3|Sign2of3' -benchtime 5x ./tss/

func fixturePreParams(b *testing.B, n int) []keygen.LocalPreParams {
	b.Helper()
	out := make([]keygen.LocalPreParams, n)
	for i := range out {
		pp, err := fixtures.PreParams(i)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = *pp
	}
	return out
}

func BenchmarkKeygen2of3(b *testing.B) {
	ctx := context.Background()
	b.Run("tss-lib", func(b *testing.B) {
		pre := fixturePreParams(b, 3)
		for b.Loop() {
			if _, err := rawtss.Keygen(ctx, pre, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyquorum", func(b *testing.B) {
		c := newCluster(b, 3, nil)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c.FeedPreParamsFixed() // the same three sets as tss-lib above
			b.StartTimer()
			if _, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSign2of3(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	digest := func(i int) []byte {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i))
		d := sha256.Sum256(n[:])
		return d[:]
	}
	b.Run("tss-lib", func(b *testing.B) {
		keys, err := rawtss.Keygen(ctx, fixturePreParams(b, 3), 1)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			if _, err := rawtss.Sign(ctx, keys, 1, []int{0, 1}, new(big.Int).SetBytes(digest(i)), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyquorum", func(b *testing.B) {
		c := newCluster(b, 3, nil)
		c.FeedPreParamsFixed()
		info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
		if err != nil {
			b.Fatal(err)
		}
		signers := c.IDs()[:2]
		i := 0
		for b.Loop() {
			i++
			if _, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest(i), Signers: signers}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// presigned2of3 makes a 2-of-3 key in a new cluster (fixture
// pre-parameters) and count presignatures for its first two parties, the
// signers it returns.
func presigned2of3(ctx context.Context, b *testing.B, count int) (*cluster, *tss.KeyInfo, []tss.PartyID) {
	b.Helper()
	c := newCluster(b, 3, nil)
	c.FeedPreParamsFixed()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := c.IDs()[:2]
	if _, err := c.Parties[0].Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: count}); err != nil {
		b.Fatal(err)
	}
	return c, info, signers
}

// BenchmarkSignOnline2of3 measures GG20 online signing from a warm pool, one
// digest per round trip, in one process (memnet, SoftHSM2 stores). Presigning
// is done before the timer starts.
//
//	go test -run '^$' -bench SignOnline2of3 -benchtime 64x ./tss/
func BenchmarkSignOnline2of3(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, info, signers := presigned2of3(ctx, b, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		if _, err := c.Parties[0].Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignBatch2of3 measures GG20 batch signing throughput (one round
// trip for KQ_BATCH digests, default 256) in one process; presigning is
// done before the timer starts.
//
//	go test -run '^$' -bench SignBatch2of3 -benchtime 1x ./tss/
func BenchmarkSignBatch2of3(b *testing.B) {
	batch := 256
	if v, err := strconv.Atoi(os.Getenv("KQ_BATCH")); err == nil && v > 0 {
		batch = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c, info, signers := presigned2of3(ctx, b, batch*b.N)
	digests := make([][]byte, batch)
	for i := range digests {
		d := sha256.Sum256([]byte(strconv.Itoa(i)))
		digests[i] = d[:]
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Parties[0].Engine.SignBatch(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: digests}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "sig/s")
}

// BenchmarkSignConcurrent2of3 measures classic GG18 signing with several
// independent sessions at once, all initiated by the same party of a 2-of-3
// committee in one process (memnet, SoftHSM2 stores). One operation is one
// signature; sig/s is signatures per second of wall time. With
// concurrent=1 it is one signature at a time; the ratio of the others to
// it is how far independent sessions use the machine's cores.
//
//	go test -run '^$' -bench SignConcurrent2of3 -benchtime 12x ./tss/
func BenchmarkSignConcurrent2of3(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := newCluster(b, 3, nil)
	c.FeedPreParamsFixed()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := c.IDs()[:2]
	next := 0
	for _, n := range []int{1, 2, 4, 8} {
		b.Run("concurrent="+strconv.Itoa(n), func(b *testing.B) {
			cpu0 := cpuTime(b)
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for range n {
					next++
					d := sha256.Sum256([]byte("concurrent " + strconv.Itoa(next)))
					wg.Go(func() {
						if _, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d[:], Signers: signers}); err != nil {
							errs <- err
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sig/s")
			// cores: CPU time of the process (all three parties) over wall
			// time; at GOMAXPROCS cores the machine is full.
			b.ReportMetric((cpuTime(b)-cpu0).Seconds()/b.Elapsed().Seconds(), "cores")
		})
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWaitingRequestMemory measures what a GG20 request costs while
// it waits for an initiator slot (see Config.MaxSessionsPerPeer): the
// co-signer holds the sessions that have a slot in its Policy, b.N further
// requests wait, and the growth of the heap and of goroutine stacks over
// b.N is reported as bytes/waiting.
//
//	go test -run '^$' -bench WaitingRequestMemory -benchtime 1000x ./tss/
func BenchmarkWaitingRequestMemory(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	hold := make(chan struct{})
	c := newCluster(b, 3, func(cfg *tss.Config) {
		self := cfg.Network.Self()
		cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
			if p.Op == tss.OpOnline && p.Initiator != self {
				select {
				case <-hold:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
	})
	c.FeedPreParamsFixed()
	a := c.Parties[0]
	info, err := a.Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := c.IDs()[:2]
	running := tss.DefaultMaxSessionsPerPeer / 2 // the requests that get a slot
	// Only the running requests get presignatures: the waiting ones hold
	// none, and once released they find the pool empty.
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: running}); err != nil {
		b.Fatal(err)
	}
	sign := func(wg *sync.WaitGroup, i int) {
		wg.Go(func() {
			d := sha256.Sum256([]byte("waiting " + strconv.Itoa(i)))
			_, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
			if err != nil && (i < running || !errors.Is(err, tss.ErrNoPresignature)) {
				b.Error(err)
			}
		})
	}
	var wg sync.WaitGroup
	for i := range running {
		sign(&wg, i)
	}
	// The running requests are held by the co-signer's policy.
	for len(a.Engine.Sessions()) < running {
		time.Sleep(10 * time.Millisecond)
	}
	settle := func() uint64 {
		time.Sleep(200 * time.Millisecond)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	before := settle()
	for i := range b.N {
		sign(&wg, running+i)
	}
	after := settle()
	b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "bytes/waiting")
	close(hold)
	wg.Wait()
}
