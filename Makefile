# keyquorum build and test entry points. `make test` is what CI runs.

GO       ?= go
APT_PKGS := softhsm2 opensc iproute2 openssh-client
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_TIMEOUT ?= 45m

.PHONY: all deps build kqnode demo vet fmt-check test test-short clean

all: build

# deps installs the system packages the tests need (SoftHSM2, pkcs11-tool,
# ip/tc, ssh-keygen) when any of them is missing. Only apt-based systems are
# handled here.
deps:
	@if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v pkcs11-tool >/dev/null 2>&1 \
	    || ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1 \
	    || ! command -v ssh-keygen >/dev/null 2>&1; then \
		echo "installing $(APT_PKGS)"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(APT_PKGS); \
	fi

# build compiles every package and the kqnode binary (bin/kqnode).
build: kqnode
	$(GO) build ./...

# kqnode is the example site daemon and CLI (examples/node).
kqnode:
	$(GO) build -o bin/kqnode ./examples/node

# demo runs three sites on this machine, each with its own SoftHSM2 token:
# 2-of-3 keygen, digest, PSBT and Ethereum signing checked by independent
# code, GG20, then sites stopped one by one. Everything it creates lives in
# a temporary directory that is removed at the end.
demo: deps kqnode
	$(GO) run ./examples/demo -kqnode bin/kqnode

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# test runs the whole suite with the race detector against real SoftHSM2
# tokens, real libp2p hosts on 127.0.0.1 and separate OS processes.
test: deps vet fmt-check
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

# test-short skips the multi-process and network-namespace tests.
test-short: deps
	$(GO) test -short -timeout $(TEST_TIMEOUT) ./...

clean:
	$(GO) clean -testcache

.PHONY: bench bench-quick

# bench runs the benchmark suite (bench/suite, hsmshare, tss/gg20) and writes
# docs/benchmarks.md, the raw `go test -bench` output and plot in docs/bench/,
# and the README's benchmark table. About half an hour on two idle cores; run
# it on an otherwise quiet machine. Not part of `make test`.
bench: deps
	$(GO) run ./bench

# bench-quick is a smoke run of the same pipeline (a subset, one or few
# iterations, under two minutes with a warm build cache). It writes into
# BENCH_QUICK_OUT and leaves docs/ and the README alone.
BENCH_QUICK_OUT ?= $(or $(TMPDIR),/tmp)/keyquorum-bench-quick
bench-quick: deps
	$(GO) run ./bench -quick -out $(BENCH_QUICK_OUT)
