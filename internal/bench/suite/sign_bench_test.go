package suite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// gg18Seed names the digests GG18 benchmarks sign.
const gg18Seed = "gg18"

// warmed is the deployment whose connections the last warm-up made.
var warmed *driver.Deployment

// warmUp signs once, untimed, with the main key on a deployment that has
// not signed yet, so that no timed operation pays for connection set-up.
func warmUp(b *testing.B, d *driver.Deployment, key string) {
	b.Helper()
	if warmed == d {
		return
	}
	do(b, d, party.Request{Op: party.OpSign, Party: 0, KeyID: key, Parties: signers, Seed: "warm-up", Count: 1})
	warmed = d
}

// logConnections logs how site 0's libp2p connections are secured, for
// the results page ("connections: ..." in the raw output).
func logConnections(b *testing.B, d *driver.Deployment) {
	b.Helper()
	var parts []string
	for _, c := range do(b, d, party.Request{Op: party.OpConnections, Party: 0}).Connections {
		parts = append(parts, fmt.Sprintf("site %d over %s with %s (%s)", c.Peer, c.Transport, c.Security, c.KeyExchange))
	}
	b.Logf("connections: %s", strings.Join(parts, "; "))
}

// BenchmarkSign measures classic (GG18, tss-lib) signing of one digest by
// 2 of 3 parties.
func BenchmarkSign(b *testing.B) {
	b.Run("size=2of3/impl=tsslib", func(b *testing.B) {
		keys := rawKey2of3(b)
		i := 0
		for b.Loop() {
			if _, err := rawtss.Sign(ctx, keys, 1, signers, digestInt(gg18Seed, i), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, mode := range modes {
		b.Run("size=2of3/impl="+string(mode), func(b *testing.B) {
			key := mainKey(b)
			d := deploy(b, mode, trio)
			warmUp(b, d, key)
			if mode == driver.Processes {
				logConnections(b, d)
			}
			mem := memory(b, d)
			stop := profile(b, d, 0)
			i := 0
			for b.Loop() {
				do(b, d, party.Request{Op: party.OpSign, Party: 0, KeyID: key, Parties: signers, Seed: gg18Seed, First: i, Count: 1})
				i++
			}
			stop()
			mem()
		})
	}
}
