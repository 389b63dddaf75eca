package suite

import (
	"fmt"
	"testing"

	"github.com/keyquorum/keyquorum/internal/bench/internal/driver"
	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// modes are the two ways keyquorum runs in the suite.
var modes = []driver.Mode{driver.InProcess, driver.Processes}

// BenchmarkKeygen measures distributed key generation with warm
// pre-parameters (fixture sets fed before each operation, outside the
// timer) for 2-of-3 and 3-of-5: raw tss-lib in one process, then
// keyquorum (sessions, validation, echo broadcast, shares sealed in
// SoftHSM2-backed stores) in one process and as one process per party.
func BenchmarkKeygen(b *testing.B) {
	for _, size := range []struct{ m, n int }{{2, 3}, {3, 5}} {
		committee := make([]int, size.n)
		for i := range committee {
			committee[i] = i
		}
		b.Run(fmt.Sprintf("size=%dof%d/impl=tsslib", size.m, size.n), func(b *testing.B) {
			pre := rawPre(b, 0, size.n)
			for b.Loop() {
				if _, err := rawtss.Keygen(ctx, pre, size.m-1); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, mode := range modes {
			b.Run(fmt.Sprintf("size=%dof%d/impl=%s", size.m, size.n, mode), func(b *testing.B) {
				d := deploy(b, mode, committee)
				mem := memory(b, d)
				stop := profile(b, d, 0)
				for b.Loop() {
					b.StopTimer()
					feed(b, d, committee, 0)
					b.StartTimer()
					do(b, d, party.Request{Op: party.OpKeygen, Party: 0, Parties: committee, Threshold: size.m})
				}
				stop()
				mem()
			})
		}
	}
}
