package suite

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/netns"
)

const (
	// envSeparated says how to separate the sites: "netem" (network
	// namespaces with tc netem delay; needs root and sch_netem) or
	// "emulated" (party.Delay in each process; the default).
	envSeparated = "KQBENCH_SEPARATED"
	// envRTTs lists the round trip times in ms (default 0,20,50,100).
	envRTTs = "KQBENCH_RTTS"
)

func separationRTTs(b *testing.B) []time.Duration {
	b.Helper()
	v := os.Getenv(envRTTs)
	if v == "" {
		v = "0,20,50,100"
	}
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		ms, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || ms < 0 {
			b.Fatalf("%s=%q: want round trip times in ms, separated by commas", envRTTs, v)
		}
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	return out
}

// BenchmarkSeparated measures the latency of one 2-of-3 signature when the
// sites are a round trip time apart: GG20 online signing from a ready
// presignature against classic GG18 signing. Each site runs in its own
// process over libp2p. With KQBENCH_SEPARATED=netem every process is in
// its own network namespace and tc netem delays each party's packets by
// RTT/2; otherwise (kernels without sch_netem) every process holds each
// protocol message it receives for RTT/2 (party.Delay) on loopback.
func BenchmarkSeparated(b *testing.B) {
	ensurePool(b, envInt(b, envBatch, 1000)+1)
	method := os.Getenv(envSeparated)
	if method == "" {
		method = "emulated"
	}
	if method != "netem" && method != "emulated" {
		b.Fatalf("%s=%q: want netem or emulated", envSeparated, method)
	}
	for _, rtt := range separationRTTs(b) {
		b.Run(fmt.Sprintf("rtt=%dms", rtt.Milliseconds()), func(b *testing.B) {
			mode := driver.Emulated
			if method == "netem" {
				mode = driver.Namespaced
				stopDeployment()
				topology = netns.Setup(b, netns.Options{Parties: len(trio), Delay: rtt / 2})
				// Cleanups run last-in first-out: the processes stop
				// before their namespaces go.
				b.Cleanup(func() { stopDeployment(); topology = nil })
			}
			b.Run("proto=gg20", func(b *testing.B) {
				o := newOnline(b, mode, rtt)
				o.reserve(1)
				warmed = o.d
				var lat latencies
				for b.Loop() {
					o.reserve(1)
					lat.time(func() { o.sign(1, false) })
				}
				lat.report(b)
			})
			b.Run("proto=gg18", func(b *testing.B) {
				key := mainKey(b)
				d := deploy(b, mode, trio)
				if mode == driver.Emulated {
					each(b, d, party.Request{Op: party.OpDelay, RTT: rtt})
				}
				warmUp(b, d, key)
				var lat latencies
				i := 0
				for b.Loop() {
					lat.time(func() {
						do(b, d, party.Request{Op: party.OpSign, Party: 0, KeyID: key, Parties: signers, Seed: gg18Seed, First: i, Count: 1})
					})
					i++
				}
				lat.report(b)
			})
		})
	}
}
