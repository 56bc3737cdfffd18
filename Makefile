# The two commands of this project:
#   make run    fetch the default model (first time) and serve it on 127.0.0.1:8080
#   make test   install the test tools (OpenAI SDK venv), fetch the models, run every test, then
#               the reliability suite's bounded form (its own venv with schemathesis), then the
#               console's browser test (chromium + Selenium)
# Everything builds into one target dir outside the clone, with one optimised dependency profile.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/ptr-server/target
VENV ?= $(HOME)/.cache/ptr-server/venv
OPENAI_SDK ?= openai==3.57.0
ARGS ?=

.PHONY: run test build deps fetch openapi bench eval cuda-build docker-base docker-test

# mistralrs-core with this project's patches (README "Patched dependencies"); quick once done.
deps:
	@bash scripts/patch-deps.sh

run: deps
	cargo run -- serve --fetch $(ARGS)

build: deps
	cargo build

fetch: deps
	cargo run -- fetch-model

$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(OPENAI_SDK)"
	touch $@

# The console's browser test (tests/browser/run.py): Debian's chromium and chromedriver, and
# Selenium in its own venv.
BROWSER_VENV ?= $(HOME)/.cache/ptr-server/venv-browser
$(BROWSER_VENV)/.installed: tests/browser/requirements.txt
	python3 -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
	touch $@

.PHONY: browser-deps
browser-deps: $(BROWSER_VENV)/.installed
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

test: deps $(VENV)/.installed browser-deps
	cargo run --quiet -- fetch-model smollm2-135m-instruct all-minilm-l6-v2
	PTR_TEST_PYTHON=$(VENV)/bin/python cargo test -- --test-threads=2
	python3 tests/reliability/run.py --mode quick
	$(BROWSER_VENV)/bin/python tests/browser/run.py --bin $(CARGO_TARGET_DIR)/debug/ptr-server

# The reliability suite (tests/reliability/README.md) on a live server with the real default model:
# schemathesis, load at 4x --max-concurrent, client disconnects, SIGTERM. RELIABILITY=quick is the
# bounded form for CI; PTR_BIN=<binary> tests that binary instead of the debug build.
.PHONY: reliability
reliability: deps
	test -n "$(PTR_BIN)" || cargo build --quiet
	python3 tests/reliability/run.py --mode $(or $(RELIABILITY),full)

openapi: deps
	cargo run --quiet -- openapi > openapi/openapi.json

bench: deps
	cargo run --quiet -- bench $(ARGS)

# Training tokens/s of `ptr-server train` beside PyTorch + PEFT on the same GGUF and records (a
# benchmark, not a test dependency: its venv pulls torch from PyPI, about 3 GB with CUDA wheels).
PEFT_VENV ?= $(HOME)/.cache/ptr-server/venv-peft
$(PEFT_VENV)/.installed:
	python3 -m venv $(PEFT_VENV)
	$(PEFT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.9.1 "transformers<5" peft gguf
	touch $@

.PHONY: bench-train
bench-train: deps $(PEFT_VENV)/.installed
	cargo build --quiet
	cargo run --quiet -- fetch-model smollm2-135m-instruct
	python3 bench/train_compare.py --bin $(CARGO_TARGET_DIR)/debug/ptr-server --peft-python $(PEFT_VENV)/bin/python \
	  --gguf $(HOME)/.cache/ptr-server/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf $(ARGS)

eval: deps
	cargo run --quiet -- eval $(ARGS)

# A PTR model from the pinned inputs: the authors' sample imported, the thought-mask fine-tune and
# the paper's two ablations, all evaluated against the base model (README "Making a PTR model").
# Resumable: the same command continues where a stopped run left off. The tuned models land in
# runs/<spec>/<base>-<variant>.gguf, which models.toml names (`make run ARGS="--load
# smollm2-135m-instruct-ptr"`). PTR_MODEL_SPEC picks another request
# (bench/ptr-model/qwen-gpu.json with ARGS="--device cuda" on a GPU).
PTR_MODEL_SPEC ?= bench/ptr-model/smollm2.json
PTR_MODEL_OUT ?= runs/$(basename $(notdir $(PTR_MODEL_SPEC)))
.PHONY: ptr-model
ptr-model: deps
	cargo run --quiet -- ptr-model --spec $(PTR_MODEL_SPEC) --out $(PTR_MODEL_OUT) $(ARGS)

# The Q8_0 prefill kernel (patches/candle-core/0002) against the loop it replaces: its bit-identity
# test, then a table of matmul times on SmolLM2's shapes (old ÷ new, interleaved in one process).
.PHONY: bench-qmatmul
bench-qmatmul: deps
	cd bench/qmatmul && CARGO_TARGET_DIR=$(HOME)/.cache/ptr-server/target-qmatmul RUSTFLAGS="-C target-cpu=native" cargo test --release
	cd bench/qmatmul && CARGO_TARGET_DIR=$(HOME)/.cache/ptr-server/target-qmatmul RUSTFLAGS="-C target-cpu=native" cargo run --release --quiet --bin bench $(ARGS)

# --features cuda, for compute capability $(CUDA_COMPUTE_CAP) (90 = H100/H200), in its own target
# dir; CUDA 13.0 from PyPI wheels, no GPU needed to build. Output: .dist/ptr-server-cuda.xz
CUDA_COMPUTE_CAP ?= 90
cuda-build: deps
	CUDA_COMPUTE_CAP=$(CUDA_COMPUTE_CAP) bash scripts/cuda-build.sh

# Local stand-ins for the Dockerfiles' base images (debootstrap + docker import), for machines
# that reach Debian's mirror but no image registry.
docker-base:
	bash docker/base-images.sh

# Builds the CPU image and checks it end to end (chat, refinement stream, Prometheus, docker stop).
docker-test:
	bash docker/test.sh

# ptr-server beside llama.cpp's server (llama-cpp-python, compiled from source into its own venv on
# first use) on the same GGUF, one server at a time: single stream, 4 concurrent, fresh-prompt TTFT;
# one table with the ratio. GGUF=<file> benchmarks any file (default: the default model's cached
# file, per models.toml); ARGS="--model-id qwen2.5-coder-0.5b-instruct" another model of
# models.toml; PTR_BIN=<binary> that binary instead of the debug build.
GGUF ?=
.PHONY: bench-peer
bench-peer: deps
	test -n "$(PTR_BIN)" || cargo build --quiet
	python3 bench/peer.py --bin $(or $(PTR_BIN),$(CARGO_TARGET_DIR)/debug/ptr-server) $(if $(GGUF),--gguf $(GGUF)) $(ARGS)
