# xtrader workflow. `make help` lists the targets; CI runs `make lint` and `make test`.
.DEFAULT_GOAL := help
SHELL := bash

PYTHON ?= python3
CARGO ?= cargo
PY_SOURCES := python/xtrader tests examples benches

.PHONY: help
help:  ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install:  ## Install the package (release build of the core) with the test and bench extras
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install '.[test,bench]'

.PHONY: build
build:  ## Build the core in debug mode into the source tree (maturin develop)
	$(PYTHON) -m maturin develop

.PHONY: build-release
build-release:  ## Build an optimised wheel into target/wheels
	$(PYTHON) -m maturin build --release

.PHONY: fmt
fmt:  ## Format Rust and Python sources
	$(CARGO) fmt
	$(PYTHON) -m ruff format $(PY_SOURCES)
	$(PYTHON) -m ruff check --fix $(PY_SOURCES)

.PHONY: lint
lint: lint-static typecheck stubtest  ## Every static check: formatting, clippy, ruff, PyO3 rule, mypy, stubtest

.PHONY: lint-static
lint-static:  ## Check formatting, clippy, ruff and the PyO3 confinement rule
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --features python --all-targets -- -D warnings
	$(PYTHON) -m ruff check $(PY_SOURCES)
	$(PYTHON) -m ruff format --check $(PY_SOURCES)
	@# STYLE.md 1: only rust/lib.rs and rust/py/ may use pyo3
	@bad="$$(grep -rlE 'use pyo3|pyo3::' rust/ | grep -vE '^rust/(lib\.rs|py/)' || true)"; \
	if [ -n "$$bad" ]; then echo "pyo3 used outside rust/lib.rs and rust/py/:"; \
		echo "$$bad"; exit 1; fi

.PHONY: typecheck
typecheck:  ## mypy --strict over the package, the tests, the examples and the benches
	$(PYTHON) -m mypy --strict $(PY_SOURCES)

.PHONY: stubtest
stubtest:  ## Check _core.pyi against the compiled module (STYLE.md 2.5; needs the installed package)
	$(PYTHON) -m mypy.stubtest xtrader._core --allowlist .mypy-stubtest-allowlist

.PHONY: test
test: test-rust test-python  ## Run every test (Rust, then Python)

.PHONY: test-rust
test-rust:  ## cargo test (pure-Rust core)
	$(CARGO) test

.PHONY: test-python
test-python:  ## pytest (needs the installed package)
	$(PYTHON) -m pytest

BENCH_SECONDS ?= 6
CRITERION_ARGS ?= --warm-up-time 1 --measurement-time 3
BENCH_OUT ?= target/bench
CRITERION_BENCHES := binance_depth binance_futures_depth binance_trades_bbo okx_books \
	okx_trades_tickers book_levels

.PHONY: bench
bench:  ## Every benchmark (criterion, Python, end-to-end, peer; needs '.[bench]'); see benches/RESULTS.md
	@# one bench target at a time: the lib's own test harness would reject criterion's flags
	set -e; for b in $(CRITERION_BENCHES); do $(CARGO) bench --bench $$b -- $(CRITERION_ARGS); done
	@if ls benches/test_*.py >/dev/null 2>&1; then $(PYTHON) -m pytest benches -p no:cacheprovider; fi
	@mkdir -p $(BENCH_OUT)
	$(PYTHON) benches/e2e_load.py --seconds $(BENCH_SECONDS) --rates 10000 100000 0 \
		--json $(BENCH_OUT)/e2e.json --png benches/latency_vs_rate.png
	$(PYTHON) benches/e2e_load.py --seconds $(BENCH_SECONDS) --rates 10000 100000 0 \
		--delivery batch --json $(BENCH_OUT)/e2e-batch.json
	$(PYTHON) benches/e2e_load.py --seconds $(BENCH_SECONDS) --rates 10000 100000 0 \
		--worker-threads 0 --busy-poll-us 2000 --paced --json $(BENCH_OUT)/e2e-inline.json
	$(PYTHON) benches/peer_cryptofeed.py --repeat 5 --seconds $(BENCH_SECONDS) --rates 10000 0 \
		--json $(BENCH_OUT)/peer.json
	$(PYTHON) benches/sim_throughput.py --seconds $(BENCH_SECONDS) --rates 10000 0
	$(PYTHON) benches/dispatch_bench.py --events 200000 --seconds $(BENCH_SECONDS)
	$(PYTHON) benches/sink_throughput.py --seconds $(BENCH_SECONDS)
	$(PYTHON) benches/jetstream_bus.py --nodes 3 --seconds $(BENCH_SECONDS) --rates 2000 10000 \
		--json $(BENCH_OUT)/jetstream_3n.json
	$(PYTHON) benches/jetstream_bus.py --nodes 1 --seconds $(BENCH_SECONDS) --rates 2000 10000 \
		--json $(BENCH_OUT)/jetstream_1n.json
