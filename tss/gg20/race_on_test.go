//go:build race

package gg20

// raceEnabled reports whether the tests run under the race detector, which
// makes the Paillier arithmetic several times slower.
const raceEnabled = true
