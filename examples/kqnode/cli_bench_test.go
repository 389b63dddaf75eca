package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// BenchmarkCLISign measures where the time of a GG20 signature asked for
// from the command line goes, on three kqnode processes with a 2-of-3 key
// and a pool of presignatures made before the clock starts:
//
//   - process: starting and ending kqnode alone (kqnode help), the cost
//     every command pays before it does anything;
//   - in-process: the client's work, the API round trip and the signature,
//     without a process start (the command's code called in this process);
//   - single: kqnode sign --digest, one process per signature;
//   - lines: one kqnode sign --digests - for b.N digests, per signature.
//
// Run it with a fixed count, which sizes the pools: -benchtime 20x. Each
// run presigns its b.N presignatures before its clock starts.
func BenchmarkCLISign(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, b)
	sites := initSites(b, c, root, 1)
	a, sb, sc := sites[0], sites[1], sites[2]
	runSites(ctx, b, c, proctest.New(b), writeNamedPeers(b, root, sites), testPolicyFile(b), sites)
	key := keygen2of3(b, c, a, sb, sc)
	ab := a.peerID + "," + sb.peerID
	n := 0
	presign := func(count int) {
		b.Helper()
		var res presignResult
		c.ok(b, nil, &res, "presign", "--home", a.home, "--key", key.KeyID, "--count", strconv.Itoa(count), "--signers", ab)
	}
	digest := func() string {
		n++
		d := sha256.Sum256(fmt.Appendf(nil, "cli benchmark %d", n))
		return hex.EncodeToString(d[:])
	}
	signArgs := []string{"sign", "--home", a.home, "--key", key.KeyID, "--signers", ab, "--protocol", "gg20", "--json"}

	b.Run("process", func(b *testing.B) {
		for range b.N {
			if err := exec.Command(c.bin, "help").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process", func(b *testing.B) {
		presign(b.N)
		b.ResetTimer()
		for range b.N {
			var out, errb bytes.Buffer
			if code := run(ctx, append(signArgs, "--digest", digest()), &out, &errb); code != 0 {
				b.Fatalf("sign: exit %d: %s", code, errb.String())
			}
		}
	})
	b.Run("single", func(b *testing.B) {
		presign(b.N)
		b.ResetTimer()
		for range b.N {
			if r := c.run(b, nil, append(signArgs, "--digest", digest())...); r.code != 0 {
				b.Fatalf("sign: exit %d: %s", r.code, r.stderr)
			}
		}
	})
	b.Run("lines", func(b *testing.B) {
		presign(b.N)
		var in strings.Builder
		for range b.N {
			in.WriteString(digest() + "\n")
		}
		b.ResetTimer()
		cmd := exec.CommandContext(ctx, c.bin, append(signArgs, "--digests", "-")...)
		cmd.Stdin = strings.NewReader(in.String())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			b.Fatalf("sign --digests: %v: %s", err, errb.String())
		}
		b.StopTimer()
		if got := strings.Count(out.String(), `"protocol":"gg20"`); got != b.N {
			b.Fatalf("sign --digests: %d GG20 signatures for %d digests:\n%s", got, b.N, out.String())
		}
	})
}
