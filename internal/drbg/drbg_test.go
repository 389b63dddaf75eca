package drbg

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHMAC_NISTVectors checks the generator against NIST CAVP known
// answers (HMAC_DRBG.rsp of the DRBG validation system, [SHA-256],
// PredictionResistance = False, 1024 returned bits, count 0): instantiate,
// optionally reseed, generate twice, and compare the second output.
func TestHMAC_NISTVectors(t *testing.T) {
	for _, tc := range []struct {
		name, entropy, nonce, reseed, want string
	}{
		{
			name:    "no reseed",
			entropy: "ca851911349384bffe89de1cbdc46e6831e44d34a4fb935ee285dd14b71a7488",
			nonce:   "659ba96c601dc69fc902940805ec0ca8",
			want:    "e528e9abf2dece54d47c7e75e5fe302149f817ea9fb4bee6f4199697d04d5b89d54fbb978a15b5c443c9ec21036d2460b6f73ebad0dc2aba6e624abf07745bc107694bb7547bb0995f70de25d6b29e2d3011bb19d27676c07162c8b5ccde0668961df86803482cb37ed6d5c0bb8d50cf1f50d476aa0458bdaba806f48be9dcb8",
		},
		{
			name:    "reseed",
			entropy: "06032cd5eed33f39265f49ecb142c511da9aff2af71203bffaf34a9ca5bd9c0d",
			nonce:   "0e66f71edc43e42a45ad3c6fc6cdc4df",
			reseed:  "01920a4e669ed3a85ae8a33b35a74ad7fb2a6bb4cf395ce00334a9c9a5a5d552",
			want:    "76fc79fe9b50beccc991a11b5635783a83536add03c157fb30645e611c2898bb2b1bc215000209208cd506cb28da2a51bdb03826aaf2bd2335d576d519160842e7158ad0949d1a9ec3e66ea1b1a064b005de914eac2e9d4f2d72a8616a80225422918250ff66a41bd2f864a6a38cc5b6499dc43f7f2bd09e1e0f8f5885935124",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(sha256.New, unhex(t, tc.entropy), unhex(t, tc.nonce), nil)
			if tc.reseed != "" {
				d.Reseed(unhex(t, tc.reseed), nil)
			}
			out := make([]byte, 128)
			if err := d.Generate(out, nil); err != nil {
				t.Fatal(err)
			}
			first := bytes.Clone(out)
			if err := d.Generate(out, nil); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(out); got != tc.want {
				t.Fatalf("second output\n got %s\nwant %s", got, tc.want)
			}
			if bytes.Equal(first, out) {
				t.Fatal("two generate calls returned the same bytes")
			}
		})
	}
}

func TestHMAC_RefusesOversizedRequestAndExhaustedSeed(t *testing.T) {
	d := New(sha512.New, make([]byte, 32), make([]byte, 16), nil)
	if err := d.Generate(make([]byte, MaxRequestBytes+1), nil); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("oversized request: got %v, want ErrRequestTooLarge", err)
	}
	d.counter = ReseedInterval + 1
	if err := d.Generate(make([]byte, 1), nil); !errors.Is(err, ErrReseedRequired) {
		t.Fatalf("exhausted seed: got %v, want ErrReseedRequired", err)
	}
	d.Reseed(make([]byte, 32), nil)
	if err := d.Generate(make([]byte, 1), nil); err != nil {
		t.Fatalf("after reseed: %v", err)
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("source broken") }

func TestNewReader_ParentErrorIsReturned(t *testing.T) {
	if _, err := NewReader(failingReader{}, sha512.New, "test"); err == nil {
		t.Fatal("NewReader over a failing parent succeeded")
	}
}

func TestReader_ReseedsFromParentWhenExhausted(t *testing.T) {
	parent := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte{7}, 200))}
	r, err := NewReader(parent, sha512.New, "test")
	if err != nil {
		t.Fatal(err)
	}
	if parent.n != seedBytes {
		t.Fatalf("seed drew %d bytes, want %d", parent.n, seedBytes)
	}
	r.d.counter = ReseedInterval + 1
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if parent.n != seedBytes+32 {
		t.Fatalf("after exhaustion the parent gave %d bytes, want %d", parent.n, seedBytes+32)
	}
	r.d.counter = ReseedInterval + 1
	r.parent = failingReader{}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("reseed from a failing parent was not reported")
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReader_LargeAndConcurrentReads(t *testing.T) {
	r, err := NewReader(bytes.NewReader(make([]byte, 48)), sha512.New, "test")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3*MaxRequestBytes+5)
	if n, err := r.Read(big); err != nil || n != len(big) {
		t.Fatalf("large read: n=%d err=%v", n, err)
	}
	if bytes.Equal(big[:64], big[MaxRequestBytes:MaxRequestBytes+64]) {
		t.Fatal("chunks of a large read repeat")
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 8)
	for i := range outs {
		wg.Go(func() {
			outs[i] = make([]byte, 64)
			if _, err := r.Read(outs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range outs {
		for j := range i {
			if bytes.Equal(outs[i], outs[j]) {
				t.Fatalf("concurrent reads %d and %d returned the same bytes", i, j)
			}
		}
	}
}

func BenchmarkReader_Read(b *testing.B) {
	r, err := NewReader(bytes.NewReader(make([]byte, 48)), sha512.New, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{32, 128, 4096} {
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
