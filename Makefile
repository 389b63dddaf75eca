# keyquorum build and test entry points. `make test` is what CI runs.

GO       ?= go
APT_PKGS := softhsm2 opensc libnss3-tools iproute2 openssh-client jq
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_TIMEOUT ?= 45m

.PHONY: all deps build kqnode demo demo-cold vet fmt-check test test-short clean

all: build

# deps installs the system packages the tests need when any of them is
# missing: SoftHSM2, pkcs11-tool, NSS's softoken with certutil (the second
# PKCS#11 implementation every hsmshare test runs on; libnss3-tools pulls in
# libnss3), ip/tc, ssh-keygen (approvals are signed with it in tests) and
# jq (the README's by-hand steps, which a test runs, read JSON with it).
# Only apt-based systems are handled here. Nothing is configured
# system-wide: tests create their own token directories.
deps:
	@if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v pkcs11-tool >/dev/null 2>&1 \
	    || ! command -v certutil >/dev/null 2>&1 \
	    || ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1 \
	    || ! command -v ssh-keygen >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then \
		echo "installing $(APT_PKGS)"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(APT_PKGS); \
	fi

# build compiles every package and the kqnode binary (bin/kqnode).
build: kqnode
	$(GO) build ./...

# kqnode is the example site daemon and CLI (examples/kqnode).
kqnode:
	$(GO) build -o bin/kqnode ./examples/kqnode

# demo runs three sites on this machine, each with its own SoftHSM2 token:
# 2-of-3 keygen, digest, PSBT and Ethereum signing checked by independent
# code, GG20, then sites stopped one by one. Everything it creates lives in
# a temporary directory that is removed at the end.
demo: deps kqnode
	$(GO) run ./examples/demo -kqnode bin/kqnode

# demo-cold runs a 2-of-3 committee whose site c has no network: keygen, a
# GG20 presign batch and three signatures with c, then a 2-of-2 key of a
# and c, every message to or from c carried in a bundle file (kqnode
# offline export/import).
demo-cold: deps kqnode
	$(GO) run ./examples/demo -kqnode bin/kqnode -cold

# PLOT_MOD is the benchmark figure's renderer, a module of its own (see
# bench below): ./... in this module does not reach it.
PLOT_MOD := internal/bench/plot

vet:
	$(GO) vet ./...
	cd $(PLOT_MOD) && $(GO) vet ./...

# fmt-check fails when gofmt would change a file or `go mod tidy` would
# change go.mod or go.sum of this module or of $(PLOT_MOD).
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@cd $(PLOT_MOD) && $(GO) mod tidy -diff || { echo "$(PLOT_MOD): go.mod/go.sum are not tidy: run go mod tidy there"; exit 1; }

# test runs the whole suite with the race detector against real SoftHSM2
# tokens, real libp2p hosts on 127.0.0.1 and separate OS processes.
test: deps vet fmt-check
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	cd $(PLOT_MOD) && $(GO) test -race ./...

# test-short skips the multi-process and network-namespace tests.
test-short: deps
	$(GO) test -short -timeout $(TEST_TIMEOUT) ./...

clean:
	$(GO) clean -testcache

.PHONY: bench bench-quick

# bench runs the benchmark suite (internal/bench/suite, hsmshare, tss/gg20)
# and writes docs/benchmarks.md, the raw `go test -bench` output and the
# separated-sites figure's data in docs/bench/, and the README's benchmark
# table; then internal/bench/plot (a module of its own, so that the library
# does not depend on the plotting library) draws docs/bench/separated.png
# from that data. The figure is drawn even when a step of the suite failed,
# as the page is; the target fails afterwards. About half an hour on two
# idle cores; run it on an otherwise quiet machine. Not part of `make test`.
bench: deps
	status=0; $(GO) run ./internal/bench || status=$$?; \
	$(call bench_plot,$(CURDIR)/docs) || status=1; \
	exit $$status

# bench-quick is a smoke run of the same pipeline (a subset, one or few
# iterations, under two minutes with a warm build cache). It writes into
# BENCH_QUICK_OUT and leaves docs/ and the README alone.
BENCH_QUICK_OUT ?= $(or $(TMPDIR),/tmp)/keyquorum-bench-quick
bench-quick: deps
	status=0; $(GO) run ./internal/bench -quick -out $(BENCH_QUICK_OUT) || status=$$?; \
	$(call bench_plot,$(abspath $(BENCH_QUICK_OUT))) || status=1; \
	exit $$status

# bench_plot draws OUT/bench/separated.png from OUT/bench/separated.json
# when the suite wrote the latter (it does not when the run measured no
# separated sites).
bench_plot = if [ -f $(1)/bench/separated.json ]; then \
	(cd $(PLOT_MOD) && $(GO) run . -data $(1)/bench/separated.json); fi
