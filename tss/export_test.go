package tss

// HasVerifier reports whether e holds a built gg20.Verifier for the
// compressed public key pub, so tests can tell which path combining takes.
func HasVerifier(e *Engine, pub []byte) bool { return e.verifiers.ready(pub) != nil }

// PoolKey exposes a pool's record prefix for tests that plant records.
func PoolKey(spec PoolSpec, epoch uint64) string { return spec.poolKey(epoch) }
