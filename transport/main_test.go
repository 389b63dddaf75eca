package transport

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

func TestMain(m *testing.M) {
	// A test re-executed this binary as one party of a multi-process test.
	if c, ok := proctest.FromEnv(); ok && c.Role != "" {
		if err := runChild(c); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// Started by the init function of github.com/ipfs/go-log v1, which
		// tss-lib imports (through package tss); it lives for the process.
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/writer.(*MirrorWriter).logRoutine"),
	)
}
