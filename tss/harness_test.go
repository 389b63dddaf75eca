package tss_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum/internal/sitetest"
	"github.com/keyquorum/keyquorum/tss"
)

// The protocol tests run committees of SoftHSM2-backed sites over the
// in-memory network (internal/sitetest).
type (
	cluster   = sitetest.Committee
	testParty = sitetest.Party
)

func newCluster(t testing.TB, n int, cfg func(*tss.Config)) *cluster {
	t.Helper()
	return sitetest.NewCommittee(t, n, cfg)
}

// testWorkerEnv names the mode in which the test binary runs as a
// pre-parameter worker (runTestWorker).
const testWorkerEnv = "KQ_TSS_TEST_WORKER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(testWorkerEnv); mode != "" {
		os.Exit(runTestWorker(mode))
	}
	code := sitetest.Main(m, 40)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}
