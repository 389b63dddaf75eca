package hsmshare

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keyquorum/keyquorum/internal/drbg"
)

func TestRandom_DrawsFromTheToken(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		tk := openToken(t, im.newToken(t))
		ctx := context.Background()
		r, err := tk.Random(ctx)
		if err != nil {
			t.Fatalf("Random: %v", err)
		}
		if got := r.Stats().TokenDraws; got != 1 {
			t.Fatalf("after Random: %d token draws, want 1 (the first seed)", got)
		}
		buf := make([]byte, 32)
		for range RandomReseedReads {
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.Stats().TokenDraws; got != 1 {
			t.Fatalf("after %d reads: %d token draws, want still 1", RandomReseedReads, got)
		}
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := r.Stats().TokenDraws; got != 2 {
			t.Fatalf("read %d: %d token draws, want 2 (a reseed)", RandomReseedReads+1, got)
		}
		if _, err := r.Read(make([]byte, drbg.MaxRequestBytes+1)); err != nil {
			t.Fatal(err)
		}
		st := r.Stats()
		if st.TokenDraws != 3 {
			t.Fatalf("after a large read: %d token draws, want 3", st.TokenDraws)
		}
		if want := uint64(RandomReseedReads + 2); st.Reads != want {
			t.Fatalf("Stats.Reads = %d, want %d", st.Reads, want)
		}
	})
}

// TestRandom_MixesBothSources checks the construction with known inputs:
// the output is HMAC_DRBG-SHA-512 over T(32) || O(32) with nonce O(16), and
// it changes when either source changes alone.
func TestRandom_MixesBothSources(t *testing.T) {
	fill := func(v byte) func(b []byte) {
		return func(b []byte) {
			for i := range b {
				b[i] = v
			}
		}
	}
	hsm := func(v byte) func(context.Context, []byte) error {
		return func(_ context.Context, b []byte) error { fill(v)(b); return nil }
	}
	read := func(r *Random) []byte {
		t.Helper()
		out := make([]byte, 64)
		if _, err := r.Read(out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	serial := []byte("1234")
	got := read(newRandom("test", serial, hsm(0x11), fill(0x22)))

	T, O := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 48)
	pers := append([]byte(randomPersonalization), serial...)
	want := make([]byte, 64)
	if err := drbg.New(sha512.New, append(bytes.Clone(T), O[:32]...), O[32:], pers).Generate(want, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output is not HMAC_DRBG(T || O, O):\n got %x\nwant %x", got, want)
	}
	if bytes.Equal(got, read(newRandom("test", serial, hsm(0x12), fill(0x22)))) {
		t.Fatal("changing only the token's bytes did not change the output")
	}
	if bytes.Equal(got, read(newRandom("test", serial, hsm(0x11), fill(0x23)))) {
		t.Fatal("changing only the operating system's bytes did not change the output")
	}
	for name, alone := range map[string][]byte{"token": T, "os": O[:32]} {
		only := make([]byte, 64)
		if err := drbg.New(sha512.New, alone, O[32:], pers).Generate(only, nil); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, only) || bytes.Contains(got, alone[:16]) {
			t.Fatalf("output is determined by the %s source alone", name)
		}
	}
}

// TestRandom_TokenFailureIsAnError breaks the token under a Random (its
// sessions closed, or the module finalized): the next read that needs the
// token fails with ErrRandomFailed and the PKCS#11 error, returns no bytes,
// and is not served from the operating system alone. NSS softoken's
// C_GenerateRandom does not check the session handle, so the closed
// sessions case runs on SoftHSM2 only.
func TestRandom_TokenFailureIsAnError(t *testing.T) {
	type breaker struct {
		name  string
		impls []impl
		brk   func(tk *Token) error
		rv    uint
	}
	for _, b := range []breaker{
		{"sessions closed", []impl{softHSM2}, func(tk *Token) error { return tk.mod.ctx.CloseAllSessions(tk.slot) }, pkcs11.CKR_SESSION_HANDLE_INVALID},
		{"module finalized", impls, func(tk *Token) error { return tk.mod.ctx.Finalize() }, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED},
	} {
		for _, im := range b.impls {
			t.Run(b.name+"/"+im.name, func(t *testing.T) {
				tok := im.newToken(t)
				ctx := context.Background()
				tk, err := Open(ctx, testConfig(tok))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tk.Close() }) // the token is broken: errors expected
				r, err := tk.Random(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.brk(tk); err != nil {
					t.Fatal(err)
				}
				buf := bytes.Repeat([]byte{0xaa}, drbg.MaxRequestBytes+1) // a large read reseeds first
				n, err := r.Read(buf)
				var rv pkcs11.Error
				if !errors.Is(err, ErrRandomFailed) || !errors.As(err, &rv) {
					t.Fatalf("read after the token failed: %v, want ErrRandomFailed wrapping the PKCS#11 error", err)
				}
				// NSS softoken answers CKR_ARGUMENTS_BAD once finalized.
				if im.name == softHSM2.name && uint(rv) != b.rv {
					t.Fatalf("read after the token failed: %v, want %s", err, pkcs11.Error(b.rv))
				}
				if n != 0 || !bytes.Equal(buf, make([]byte, len(buf))) {
					t.Fatalf("failed read returned n=%d and left bytes in the buffer", n)
				}
				if _, err := r.Read(buf); !errors.Is(err, ErrRandomFailed) {
					t.Fatalf("second read after the failure: %v, want ErrRandomFailed again (no fallback)", err)
				}
				if r.Stats().TokenDraws != 1 {
					t.Fatalf("token draws = %d, want 1", r.Stats().TokenDraws)
				}
				if _, err := tk.Random(ctx); !errors.Is(err, ErrRandomFailed) {
					t.Fatalf("Random on the failed token: %v, want ErrRandomFailed", err)
				}
			})
		}
	}
}

func TestRandom_AfterCloseIsErrClosed(t *testing.T) {
	tok := softHSM2.newToken(t)
	ctx := context.Background()
	tk, err := Open(ctx, testConfig(tok))
	if err != nil {
		t.Fatal(err)
	}
	r, err := tk.Random(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if _, err := tk.Random(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Random after Close: %v, want ErrClosed", err)
	}
}

func TestRequireRNG_RefusesTokenWithoutGenerator(t *testing.T) {
	if err := requireRNG(pkcs11.CKF_TOKEN_INITIALIZED|pkcs11.CKF_LOGIN_REQUIRED, "token \"x\""); !errors.Is(err, ErrNoRNG) {
		t.Fatalf("flags without CKF_RNG: %v, want ErrNoRNG", err)
	}
	if err := requireRNG(pkcs11.CKF_RNG|pkcs11.CKF_TOKEN_INITIALIZED, "token \"x\""); err != nil {
		t.Fatalf("flags with CKF_RNG: %v", err)
	}
	// The real tokens announce their generator.
	forEachImpl(t, func(t *testing.T, im impl) {
		tk := openToken(t, im.newToken(t))
		if tk.flags&pkcs11.CKF_RNG == 0 {
			t.Fatalf("%s token does not announce CKF_RNG", im.name)
		}
	})
}

func TestRandom_ConcurrentReadsDiffer(t *testing.T) {
	tk := openToken(t, softHSM2.newToken(t))
	r, err := tk.Random(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const g, n = 8, 300 // crosses a reseed while others read
	outs := make([][][]byte, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			for range n {
				b := make([]byte, 32)
				if _, err := r.Read(b); err != nil {
					t.Error(err)
					return
				}
				outs[i] = append(outs[i], b)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, o := range outs {
		for _, b := range o {
			if seen[string(b)] {
				t.Fatal("two reads returned the same bytes")
			}
			seen[string(b)] = true
		}
	}
	if r.Stats().TokenDraws < 3 {
		t.Fatalf("token draws = %d over %d reads, want at least 3", r.Stats().TokenDraws, g*n)
	}
}

func BenchmarkRandom_Read(b *testing.B) {
	tk := openToken(b, softHSM2.newToken(b))
	r, err := tk.Random(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{32, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := r.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
