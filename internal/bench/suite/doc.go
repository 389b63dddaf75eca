// Package suite holds keyquorum's reproducible benchmarks: the same
// operations run by raw tss-lib in one process, by keyquorum with every
// party in one process (memnet), and by keyquorum with each party in its
// own process over libp2p on loopback, plus GG20 and separated-site
// latency and concurrent requests from one or two initiators
// (BenchmarkLoad). The benchmarks are run by `make bench` (go run ./internal/bench), which
// writes docs/benchmarks.md; they can also be run by hand:
//
//	KQBENCH_DIR=/tmp/kqbench go test -run '^$' -bench 'Sign$' -benchtime 3x ./internal/bench/suite/
//
// KQBENCH_DIR keeps the sites (SoftHSM2 tokens, stores, keys and
// presignatures) between runs; without it every run starts from scratch.
// The package has no tests: its TestMain does nothing unless benchmarks
// are asked for.
package suite
