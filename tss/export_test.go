package tss

// HasVerifier reports whether e holds a built gg20.Verifier for the
// compressed public key pub, so tests can tell which path combining takes.
func HasVerifier(e *Engine, pub []byte) bool { return e.verifiers.ready(pub) != nil }
