package suite

import (
	"sync"
	"testing"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

const (
	// rawConcurrency is how many tss-lib GG18 signings run at once in the
	// throughput baseline: enough to keep every core of a small machine
	// busy.
	rawConcurrency = 4
	// presignParallel is how many keyquorum presigning sessions (of up to
	// 32 presignatures each) run at once.
	presignParallel = 2
)

// BenchmarkPresign measures throughput. One operation makes KQBENCH_PRESIGN
// (default 64) GG20 presignatures for 2-of-3 (signers 0 and 1), stored
// sealed on both signers; its baseline makes as many raw tss-lib GG18
// signatures with the same committee, rawConcurrency at a time. presig/s
// and sig/s are the throughputs the design compares (presigning at least
// twice GG18 signing).
func BenchmarkPresign(b *testing.B) {
	per := envInt(b, envPresign, 64)
	b.Run("size=2of3/impl=tsslib-gg18", func(b *testing.B) {
		keys := rawKey2of3(b)
		for b.Loop() {
			if err := concurrently(per, rawConcurrency, func(i int) error {
				_, err := rawtss.Sign(ctx, keys, 1, signers, digestInt("throughput", i), nil)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "sig/s")
	})
	for _, mode := range modes {
		b.Run("size=2of3/impl="+string(mode), func(b *testing.B) {
			key := mainKey(b)
			d := deploy(b, mode, trio)
			warmUp(b, d, key)
			mem := memory(b, d)
			stop := profile(b, d, 0)
			for b.Loop() {
				resp := do(b, d, party.Request{Op: party.OpPresign, Party: 0, KeyID: key, Parties: signers, Count: per, Parallel: presignParallel})
				if resp.Done != per {
					b.Fatalf("made %d of %d presignatures", resp.Done, per)
				}
			}
			b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "presig/s")
			stop()
			mem()
		})
	}
}

// concurrently runs f(0..n-1) with at most workers calls at once and
// returns the first error.
func concurrently(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || first != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
