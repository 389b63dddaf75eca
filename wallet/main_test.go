package wallet_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, in
// particular a tss-lib party of the in-process 2-of-3 signer. The one
// ignored goroutine is started by the init function of ipfs/go-log, which
// tss-lib imports for its logger.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/ipfs/go-log/writer.(*MirrorWriter).logRoutine"))
}
