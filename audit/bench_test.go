package audit_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

// benchRecord is a typical entry: a signing proposal with its identifiers
// and digests (about 400 bytes of JSON).
func benchRecord(i int) audit.Record {
	return audit.Record{Type: "sign.proposal", Fields: map[string]string{
		"session":  fmt.Sprintf("%064x", i),
		"op":       "sign",
		"key":      "k-2of3-main",
		"signers":  "12D3KooWQ8vR7n7iSxXQsXKk9c8Kf3VYq6t3yN1fQW2gRk5p3aBc,12D3KooWMx1PqG4kS8nYb2vC7dE9fH3jL5mN6pQ8rT1uV2wX3yZ4",
		"path":     "m/0/" + strconv.Itoa(i%1000),
		"intent":   fmt.Sprintf("%064x", i*7),
		"summary":  fmt.Sprintf("%064x", i*13),
		"protocol": "gg20",
	}}
}

func benchLog(b *testing.B, maxBatch int) *audit.Log {
	b.Helper()
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit"), audit.Config{Origin: originA, Site: "site-a", Signer: newKey(b), MaxBatch: maxBatch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkAppend measures durable appends: one appender (every append
// waits for its own fdatasync), and 64 concurrent appenders with and
// without group commit.
func BenchmarkAppend(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		l := benchLog(b, 0)
		b.ResetTimer()
		for i := range b.N {
			if _, err := l.Append(context.Background(), benchRecord(i)); err != nil {
				b.Fatal(err)
			}
		}
		reportAppends(b, l)
	})
	for _, tc := range []struct {
		name     string
		maxBatch int
	}{{"64-concurrent/group-commit", 0}, {"64-concurrent/no-group-commit", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			l := benchLog(b, tc.maxBatch)
			var n atomic.Int64
			b.SetParallelism(max(1, 64/runtimeProcs()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), benchRecord(int(n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportAppends(b, l)
		})
	}
}

func runtimeProcs() int {
	n, _ := strconv.Atoi(os.Getenv("GOMAXPROCS"))
	if n > 0 {
		return n
	}
	return 2
}

func reportAppends(b *testing.B, l *audit.Log) {
	st := l.Stats()
	b.ReportMetric(float64(st.Appends)/b.Elapsed().Seconds(), "appends/s")
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Commits), "appends/fdatasync")
	}
}

// millionLog is a log of benchEntries entries with a cosigned checkpoint,
// built once per benchmark run.
type millionLog struct {
	dir       string
	log       note.Verifier
	witnesses []note.Verifier
	cfg       audit.Config
	build     time.Duration
	stats     audit.Stats
	size      int64
}

func benchEntries() int {
	if n, err := strconv.Atoi(os.Getenv("AUDIT_BENCH_ENTRIES")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

func buildMillion(b *testing.B) *millionLog {
	tmp := b.TempDir()
	var millionErr error
	m := &millionLog{dir: filepath.Join(tmp, "audit")}
	func() {
		key, wkey := newKey(b), newKey(b)
		wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
		m.cfg = audit.Config{Origin: originA, Site: "site-a", Signer: key, Witnesses: []note.Verifier{wv}}
		l, err := audit.Open(m.dir, m.cfg)
		if err != nil {
			millionErr = err
			return
		}
		defer l.Close()
		m.log = l.Verifier()
		m.witnesses = []note.Verifier{wv}
		total := benchEntries()
		const appenders = 128
		var next atomic.Int64
		var wg sync.WaitGroup
		var appendErr atomic.Value
		start := time.Now()
		for range appenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					if _, err := l.Append(context.Background(), benchRecord(i)); err != nil {
						appendErr.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := appendErr.Load().(error); err != nil {
			millionErr = err
			return
		}
		m.build = time.Since(start)
		m.stats = l.Stats()
		cp, err := l.Checkpoint(context.Background())
		if err != nil {
			millionErr = err
			return
		}
		store, err := audit.OpenWitnessStore(filepath.Join(tmp, "witness"))
		if err != nil {
			millionErr = err
			return
		}
		defer store.Close()
		w, _ := audit.NewWitness(audit.WitnessConfig{Name: witnessB, Signer: wkey, Logs: []note.Verifier{l.Verifier()}, Store: store})
		req, _ := l.CosignRequest(cp, 0)
		sigs, err := w.Cosign(context.Background(), req)
		if err == nil {
			_, err = l.AddCosignatures(context.Background(), cp, sigs)
		}
		if err != nil {
			millionErr = err
			return
		}
		for _, name := range []string{"entries", "index", "hashes", "checkpoints"} {
			st, err := os.Stat(filepath.Join(m.dir, name))
			if err == nil {
				m.size += st.Size()
			}
		}
	}()
	if millionErr != nil {
		b.Fatal(millionErr)
	}
	return m
}

// BenchmarkMillion builds a log of 1,000,000 entries (AUDIT_BENCH_ENTRIES
// overrides) with 128 concurrent appenders and group commit, and measures
// on it: Verify of the whole log, Open after a clean close, an inclusion
// proof against the cosigned checkpoint and its verification, and the disk
// used per entry.
func BenchmarkMillion(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a million-entry log")
	}
	m := buildMillion(b)
	n := benchEntries()
	b.Run("append", func(b *testing.B) {
		// The build, reported once: wall time for all n appends.
		for range b.N {
		}
		b.ReportMetric(float64(n)/m.build.Seconds(), "appends/s")
		b.ReportMetric(float64(m.stats.Appends)/float64(m.stats.Commits), "appends/fdatasync")
		b.ReportMetric(m.build.Seconds(), "s-total")
		b.ReportMetric(float64(m.size)/float64(n), "disk-bytes/entry")
	})
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			rep, err := audit.Verify(context.Background(), m.dir, audit.VerifyOptions{Log: m.log, Witnesses: m.witnesses})
			if err != nil || rep.Entries != uint64(n) {
				b.Fatalf("Verify: %+v, %v", rep, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("open", func(b *testing.B) {
		for range b.N {
			l, err := audit.Open(m.dir, m.cfg)
			if err != nil {
				b.Fatal(err)
			}
			l.Close()
		}
	})
	l, err := audit.OpenReadOnly(m.dir, m.log, m.witnesses...)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.Run("prove", func(b *testing.B) {
		for range b.N {
			if _, err := l.Prove(context.Background(), uint64(mrand.IntN(n)), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prove+verify", func(b *testing.B) {
		for range b.N {
			p, err := l.Prove(context.Background(), uint64(mrand.IntN(n)), 1)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := audit.VerifyInclusion(p, m.log, m.witnesses, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
