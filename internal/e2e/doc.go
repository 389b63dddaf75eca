// Package e2e holds keyquorum's multi-process integration tests. They build
// the kqnode binary (examples/kqnode) and run every site as its own OS
// process with its own token (a SoftHSM2 token directory, or for one site
// of TestMixedTokens an NSS softoken database), home and sealed store,
// talking libp2p over 127.0.0.1 or, when the test runs as root, between
// network namespaces. The tests drive the sites only through kqnode's
// command line and check every signature with independent code.
//
// What the tests prove, and what they leave to in-process tests, is listed
// in the README section "Integration tests". The package has no API; it
// is skipped under `go test -short`.
package e2e
