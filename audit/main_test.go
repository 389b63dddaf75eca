package audit_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// childEnv selects a child-process role when the test binary re-executes
// itself (see runChild).
const childEnv = "AUDIT_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
