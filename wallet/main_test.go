package wallet_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum/internal/sitetest"
)

// TestMain gives the threshold signer's three sites their SoftHSM2 tokens,
// and fails the package's tests if any goroutine outlives them. The one
// ignored goroutine is started by the init function of ipfs/go-log, which
// tss-lib imports for its logger.
func TestMain(m *testing.M) {
	code := sitetest.Main(m, 3)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/ipfs/go-log/writer.(*MirrorWriter).logRoutine")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}
