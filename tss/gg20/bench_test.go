package gg20

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
)

// The benchmarks run every party of a 2-of-3 committee (signers 0 and 1) in
// this process, so one iteration costs the CPU time of the whole committee.
// BenchmarkPresign2of3 and BenchmarkGG18Sign2of3 measure the same key on the
// same machine in the same run; the *Throughput pair does the same with
// several sessions at a time to keep every core busy:
//
//	go test -run XXX -bench . -benchtime 20x ./tss/gg20

func BenchmarkPresign2of3(b *testing.B) {
	ks := keys(b, "2-of-3")
	presign(b, ks, []int{0, 1}, nil) // builds the Precomputed tables
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		presign(b, ks, []int{0, 1}, nil)
	}
}

// reportCPU starts measuring the process's CPU time (user and system, all
// threads); the returned function reports it per iteration as cpu-ms/op.
// On a shared machine it varies much less than the wall time. Where the
// system does not report it (cputime_other_test.go) the metric is 0.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkPresign3Signers runs all three signers of the 2-of-3 key: with
// three or more signers every broadcast of rounds 1, 2 and 5 also carries
// proofs addressed to other signers, which only their verifier checks
// unless it complains (see the package documentation).
func BenchmarkPresign3Signers(b *testing.B) {
	ks := keys(b, "2-of-3")
	presign(b, ks, []int{0, 1, 2}, nil) // builds the Precomputed tables
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		presign(b, ks, []int{0, 1, 2}, nil)
	}
}

func BenchmarkGG18Sign2of3(b *testing.B) {
	ks := keys(b, "2-of-3")
	digest := digestOf("bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := gg18Sign(b, ks, []int{0, 1}, digest); err != nil {
			b.Fatal(err)
		}
	}
}

// presignedBlobs makes n presignatures for signers 0 and 1 of the 2-of-3
// fixture key and returns each one's encodings, one per signer.
func presignedBlobs(b *testing.B, n int) [][][]byte {
	b.Helper()
	ks := keys(b, "2-of-3")
	blobs := make([][][]byte, 0, n)
	for i := 0; i < n; i++ {
		var set [][]byte
		for _, ps := range presign(b, ks, []int{0, 1}, nil) {
			blob, err := ps.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			set = append(set, blob)
		}
		blobs = append(blobs, set)
	}
	return blobs
}

// BenchmarkOnlineSign is the online round for 2 signers: both SignShare
// calls and one Combine (which verifies the signature).
func BenchmarkOnlineSign(b *testing.B) {
	blobs := presignedBlobs(b, 8)
	digest := digestOf("online")
	pss := make([][]*Presignature, b.N)
	for i := range pss {
		for _, blob := range blobs[i%len(blobs)] {
			ps := new(Presignature)
			if err := ps.UnmarshalBinary(blob); err != nil {
				b.Fatal(err)
			}
			pss[i] = append(pss[i], ps)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s0, err := pss[i][0].SignShare(digest)
		if err != nil {
			b.Fatal(err)
		}
		s1, err := pss[i][1].SignShare(digest)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := pss[i][0].Combine(digest, []*big.Int{s0, s1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOnlineSignBatched is the online round's arithmetic as a batch
// of online signatures does it at the initiator, for 2 signers: both
// SignShare calls on stored presignatures and CombineWith a Verifier for
// the key (its table built before the timer starts).
func BenchmarkOnlineSignBatched(b *testing.B) {
	blobs := presignedBlobs(b, 8)
	v, err := NewVerifier(Stored(blobs[0][0]).mustPublicKey(b))
	if err != nil {
		b.Fatal(err)
	}
	digest := digestOf("online")
	sts := make([][]Stored, b.N)
	for i := range sts {
		for _, blob := range blobs[i%len(blobs)] {
			sts[i] = append(sts[i], Stored(bytes.Clone(blob)))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s0, err := sts[i][0].SignShare(digest)
		if err != nil {
			b.Fatal(err)
		}
		s1, err := sts[i][1].SignShare(digest)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := sts[i][0].CombineWith(v, digest, []*big.Int{s0, s1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignShare is one signer's part of the online round alone:
// sᵢ = m·kᵢ + r·σᵢ mod q from a stored presignature.
func BenchmarkSignShare(b *testing.B) {
	st := Stored(presignedBlobs(b, 1)[0][0])
	digest := digestOf("online")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.SignShare(digest); err != nil {
			b.Fatal(err)
		}
	}
}

func (st Stored) mustPublicKey(tb testing.TB) []byte {
	tb.Helper()
	pub, err := st.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

// concurrentSessions is how many sessions the throughput benchmarks keep in
// flight.
const concurrentSessions = 4

func throughput(b *testing.B, one func() error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		fail error
	)
	start := time.Now()
	for w := 0; w < concurrentSessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= b.N || fail != nil {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				if err := one(); err != nil {
					mu.Lock()
					fail = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if fail != nil {
		b.Fatal(fail)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sessions/s")
}

func BenchmarkPresignThroughput2of3(b *testing.B) {
	ks := keys(b, "2-of-3")
	presign(b, ks, []int{0, 1}, nil) // builds the Precomputed tables
	b.ResetTimer()
	throughput(b, func() error {
		ps := newPresignersNoFatal(ks, []int{0, 1})
		if ps == nil {
			return fmt.Errorf("setup failed")
		}
		for i, err := range newNetwork(ps).run(b) {
			if err != nil {
				return fmt.Errorf("signer %d: %w", i, err)
			}
		}
		return nil
	})
}

func BenchmarkGG18SignThroughput2of3(b *testing.B) {
	ks := keys(b, "2-of-3")
	digest := digestOf("bench")
	b.ResetTimer()
	throughput(b, func() error {
		_, err := gg18Sign(b, ks, []int{0, 1}, digest)
		return err
	})
}

// newPresignersNoFatal is newPresigners for goroutines other than the
// benchmark's own (which must not call Fatal).
func newPresignersNoFatal(ks []*keygen.LocalPartySaveData, signers []int) []*Presigner {
	var sid [32]byte
	if _, err := rand.Read(sid[:]); err != nil {
		return nil
	}
	ids := make([]*big.Int, len(signers))
	for i, s := range signers {
		ids[i] = ks[s].ShareID
	}
	out := make([]*Presigner, len(signers))
	for i, s := range signers {
		p, err := NewPresigner(Config{SessionID: sid, Key: ks[s], Signers: ids, Precomputed: precomputed(ks[s])})
		if err != nil {
			return nil
		}
		out[i] = p
	}
	return out
}

// BenchmarkPresignVsGG18Throughput2of3 alternates, in every iteration, a
// batch of concurrentSessions GG20 presigning sessions and a batch of as
// many tss-lib GG18 signing sessions on the same key, so that both see the
// same machine load. It reports each protocol's sessions per second and
// their ratio (gg20/gg18; the design target is at least 2).
func BenchmarkPresignVsGG18Throughput2of3(b *testing.B) {
	ks := keys(b, "2-of-3")
	presign(b, ks, []int{0, 1}, nil) // builds the Precomputed tables
	digest := digestOf("bench")
	batch := func(one func() error) (time.Duration, error) {
		start := time.Now()
		errs := make([]error, concurrentSessions)
		var wg sync.WaitGroup
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = one()
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	gg20 := func() error {
		ps := newPresignersNoFatal(ks, []int{0, 1})
		if ps == nil {
			return fmt.Errorf("setup failed")
		}
		for i, err := range newNetwork(ps).run(b) {
			if err != nil {
				return fmt.Errorf("signer %d: %w", i, err)
			}
		}
		return nil
	}
	gg18 := func() error {
		_, err := gg18Sign(b, ks, []int{0, 1}, digest)
		return err
	}
	var t20, t18 time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := batch(gg20)
		if err != nil {
			b.Fatal(err)
		}
		t20 += d
		if d, err = batch(gg18); err != nil {
			b.Fatal(err)
		}
		t18 += d
	}
	n := float64(b.N * concurrentSessions)
	b.ReportMetric(n/t20.Seconds(), "gg20-presigns/s")
	b.ReportMetric(n/t18.Seconds(), "gg18-signs/s")
	b.ReportMetric(t18.Seconds()/t20.Seconds(), "ratio")
}
