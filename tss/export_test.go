package tss

// SetVerifierBatch changes the batch size from which online signing checks
// signatures with a precomputed gg20.Verifier, and returns a function that
// restores it; tests use it to exercise both paths with small batches.
func SetVerifierBatch(n int) (restore func()) {
	old := verifierBatch
	verifierBatch = n
	return func() { verifierBatch = old }
}
