package tss

import "context"

// HasVerifier reports whether e holds a built gg20.Verifier for the
// compressed public key pub, so tests can tell which path combining takes.
func HasVerifier(e *Engine, pub []byte) bool { return e.verifiers.ready(pub) != nil }

// PoolKey exposes a pool's record prefix for tests that plant records.
func PoolKey(spec PoolSpec, epoch uint64) string { return spec.poolKey(epoch) }

// EchoesHeld returns the number of echoes e's running sessions hold, so
// tests can check that a flood does not grow them.
func EchoesHeld(e *Engine) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, s := range e.sessions {
		n += s.echoes.Load()
	}
	return n
}

// PreParamsLease is a set handed out by PreParamsPool.Reserve.
type PreParamsLease = preParamsLease

// Reserve hands out a set without deleting it (what keygen does at its
// start).
func Reserve(ctx context.Context, p *PreParamsPool) (*PreParamsLease, error) { return p.reserve(ctx) }

// Consume deletes the set durably (what keygen does before round 1 leaves).
func (l *preParamsLease) Consume(ctx context.Context) error { return l.consume(ctx) }

// Release gives the set back.
func (l *preParamsLease) Release() { l.release() }

// ID names the set in the store.
func (l *preParamsLease) ID() string { return l.id }

// MaxPreParamSessionsPerPeer is maxPreParamSessionsPerPeer.
const MaxPreParamSessionsPerPeer = maxPreParamSessionsPerPeer

// HeldBytes returns the bytes of other parties' messages e holds now
// (peerBufferBytes accounting), so tests can check that every message is
// released once handled.
func HeldBytes(e *Engine) int64 {
	e.peersMu.Lock()
	defer e.peersMu.Unlock()
	var n int64
	for _, p := range e.peers {
		n += p.held.Load()
	}
	return n
}

// ReadyIDs lists the unreserved presignature IDs e holds in spec's pool
// (spec.Initiator set), so tests can name them in requests.
func ReadyIDs(ctx context.Context, e *Engine, spec PoolSpec, epoch uint64) ([]string, error) {
	spec.Signers = SortParties(spec.Signers)
	return e.readyIDs(ctx, spec.poolKey(epoch), false)
}
