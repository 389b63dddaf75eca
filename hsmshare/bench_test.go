package hsmshare

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
)

// Benchmarks run against SoftHSM2; a hardware or network HSM has very
// different per-call latency.

func benchSealKey(b *testing.B, scheme Scheme) *SealKey {
	b.Helper()
	tk := openToken(b, softHSM2.newToken(b), withScheme(scheme))
	k, err := tk.CreateSealKey(context.Background(), "seal")
	if err != nil {
		b.Fatal(err)
	}
	return k
}

func BenchmarkSeal4KiB(b *testing.B) {
	for _, scheme := range schemes {
		b.Run(scheme.String(), func(b *testing.B) {
			k := benchSealKey(b, scheme)
			ctx := context.Background()
			pt := randBytes(4096)
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := k.Seal(ctx, testHeader, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen4KiB(b *testing.B) {
	for _, scheme := range schemes {
		b.Run(scheme.String(), func(b *testing.B) {
			k := benchSealKey(b, scheme)
			ctx := context.Background()
			blob, err := k.Seal(ctx, testHeader, randBytes(4096))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(4096)
			for b.Loop() {
				pt, err := k.Open(ctx, blob, testHeader)
				if err != nil {
					b.Fatal(err)
				}
				wipe(pt)
			}
		})
	}
}

// BenchmarkSealOpen4KiBParallel runs seal+open pairs from GOMAXPROCS
// goroutines over the session pool.
func BenchmarkSealOpen4KiBParallel(b *testing.B) {
	k := benchSealKey(b, SchemeGCM)
	ctx := context.Background()
	pt := randBytes(4096)
	b.SetBytes(int64(len(pt)))
	b.ResetTimer() // RunParallel, unlike b.Loop, does not exclude the setup
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			blob, err := k.Seal(ctx, testHeader, pt)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := k.Open(ctx, blob, testHeader); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIdentitySign(b *testing.B) {
	tk := openToken(b, softHSM2.newToken(b))
	idn, err := tk.CreateIdentity(context.Background(), "identity")
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	for b.Loop() {
		if _, err := idn.Sign(nil, d[:], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStorePutGet4KiB is one durable Put (two fsyncs) plus one Get.
func BenchmarkStorePutGet4KiB(b *testing.B) {
	k := benchSealKey(b, SchemeGCM)
	st, err := OpenStore(filepath.Join(b.TempDir(), "store"), k, testParty)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	pt := randBytes(4096)
	b.SetBytes(int64(len(pt)))
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("k%d", i%64)
		i++
		if err := st.Put(ctx, "keyshare", id, 1, pt); err != nil {
			b.Fatal(err)
		}
		if _, _, err := st.Get(ctx, "keyshare", id); err != nil {
			b.Fatal(err)
		}
	}
}
