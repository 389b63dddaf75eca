package keyquorum

import "errors"

// Errors returned by [Node]. Errors of the packages underneath pass through
// wrapped, so callers also test for their sentinels with errors.Is:
// [hsmshare.ErrWrongPIN], [hsmshare.ErrWeakKey], [tss.ErrUnknownKey],
// [tss.ErrBadRequest], [tss.ErrNoPresignature], [tss.ErrNoPreParams],
// [wallet.ErrInvalidPSBT], ... and for typed errors with errors.As:
// *tss.RoundTimeoutError (names the parties that did not answer),
// *tss.RefusedError, *tss.CulpritError, *tss.UnreachableError.
var (
	// ErrInvalidConfig means Config is incomplete or contradictory; the
	// message names the field.
	ErrInvalidConfig = errors.New("keyquorum: invalid configuration")
	// ErrClosed means the Node was used after Close.
	ErrClosed = errors.New("keyquorum: node is closed")
	// ErrOffline means a protocol operation was asked of a Node opened with
	// Config.Offline, which has no network and no engine.
	ErrOffline = errors.New("keyquorum: node is offline (opened with Config.Offline)")
)
