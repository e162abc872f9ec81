# ddpm-avatars — the two commands a newcomer needs:
#   make serve   run the demo page with the bundled weights
#   make test    run every test (installs what is missing first)

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown

RUN ?= runs/avatars
WASM_BINDGEN_VERSION := 0.2.130
WASM_FILE := target/$(WASM_TARGET)/wasm-release/ddpm_avatars.wasm
PKG := www/pkg
PORT ?= 8000
# binaryen from npm (pinned in tests/e2e/package.json): Debian's wasm-opt 108 breaks
# wasm-bindgen's reference-types table ("WebAssembly.Table.set(): Argument 1 is invalid").
WASM_OPT := tests/e2e/node_modules/.bin/wasm-opt
TRAINER := $(CARGO) run --release -p trainer --

.PHONY: libtorch trainer-tch weights-continue weights-stop test serve setup fmt-check clippy rust-test lint-test wasm pkg page-tools browser native-tools e2e data train resume weights bench gpu-rehearsal cuda cuda-check gpu-pack page-bench

## Every test of the project: formatting, lints, Rust tests, the page built and tested in chromium.
## Clippy runs inside the test build (lint-test), so burn is compiled once, not again in check mode.
## chromium comes first: its SwiftShader Vulkan driver runs the trainer's GPU test
## (trainer/tests/vulkan.rs) as well as the browser tests.
test: setup browser fmt-check lint-test e2e
	@echo "make test: all checks passed"

## Install what a fresh machine lacks (and nothing else).
setup:
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@command -v node >/dev/null && command -v npm >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends nodejs npm)

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

## The Rust tests, with clippy's lints (-D warnings) applied while they compile: clippy-driver
## wraps rustc for this workspace's crates only (what `cargo clippy` itself does), so the
## dependencies are built once, for the tests, instead of a second time in check mode
## (~10 minutes of a clean CI run). It covers what `clippy --all-targets` covers here: lib,
## binaries, tests and examples. `CLIPPY_ARGS` is how cargo-clippy hands flags to the driver.
CLIPPY_IN_BUILD := RUSTC_WORKSPACE_WRAPPER="$$(rustup which clippy-driver)" \
	CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
lint-test:
	$(CLIPPY_IN_BUILD) $(CARGO) test --workspace

## The root crate for the browser (WebGPU + CPU fallback).
wasm: setup
	$(CARGO) build --lib -p ddpm-avatars --target $(WASM_TARGET) --profile wasm-release

## The page: wasm-bindgen output (+ wasm-opt) in www/pkg, rebuilt when the wasm changed.
pkg: wasm page-tools
	@if [ $(PKG)/ddpm_avatars_bg.wasm -nt $(WASM_FILE) ]; then echo "$(PKG) is up to date"; else \
		wasm-bindgen --target web --no-typescript --out-dir $(PKG) $(WASM_FILE) && \
		$(WASM_OPT) -O1 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
			--enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
			$(PKG)/ddpm_avatars_bg.wasm -o $(PKG)/ddpm_avatars_bg.wasm && \
		echo "wasm: $$(stat -c %s $(PKG)/ddpm_avatars_bg.wasm) bytes, $$(gzip -9 -c $(PKG)/ddpm_avatars_bg.wasm | wc -c) gzipped"; \
	fi

## Tools that build the page: the pinned wasm-bindgen-cli, tests/e2e's npm packages
## (binaryen's wasm-opt; playwright-core for the browser tests) and the page's own (KaTeX).
page-tools: setup
	@wasm-bindgen --version 2>/dev/null | grep -q ' $(WASM_BINDGEN_VERSION)$$' || \
		$(CARGO) install wasm-bindgen-cli --version =$(WASM_BINDGEN_VERSION)
	@cd tests/e2e && (test -x node_modules/.bin/wasm-opt -a -d node_modules/playwright-core || npm ci --no-audit --no-fund)
	@cd www && (test -f node_modules/katex/dist/katex.mjs || npm ci --no-audit --no-fund)

## The browser the tests drive: Debian's chromium (never a downloaded one).
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

## The native programs the browser tests need, exactly as `cargo test --workspace` builds them:
## a `cargo run` of one package would resolve other burn features and compile burn again
## (~10 minutes on 2 cores). After rust-test this finds everything fresh.
NATIVE_DIR := target/debug
native-tools:
	$(CLIPPY_IN_BUILD) $(CARGO) build --workspace --all-targets --quiet

## Real-browser tests against the built page, with tiny weights made by the project's code.
e2e: pkg browser native-tools
	$(NATIVE_DIR)/examples/tiny_weights target/e2e/tiny.safetensors
	$(NATIVE_DIR)/examples/tiny_weights target/e2e/default-random.safetensors 7 --default
	$(NATIVE_DIR)/trainer sample --weights target/e2e/tiny.safetensors \
		--out target/e2e/native.png --seed 5 --count 1 --sampler ddim --steps 4 --scale 1 --device cpu
	cd tests/e2e && node --test --test-concurrency=1

## The demo with the bundled weights on http://localhost:$(PORT)/
serve: pkg
	@test -f $(SMALL_WEIGHTS) -o -f www/weights/avatars-64.safetensors || \
		echo "note: no bundled weights yet ($(SMALL_WEIGHTS)); make weights-continue trains them"
	@echo "serving http://localhost:$(PORT)/ (Ctrl-C to stop)"
	python3 -m http.server $(PORT) --bind 127.0.0.1

## Train your own (see README): dataset -> training -> published weights.
data:
	$(TRAINER) data avatars --count 20000 --out data/avatars

train:
	$(TRAINER) train --data data/avatars --run $(RUN)

resume:
	$(TRAINER) train --data data/avatars --run $(RUN) --resume

weights:
	$(TRAINER) export --run $(RUN) --out www/weights/avatars-64.safetensors

## The CPU-sized default model (`--config small`), improved session after session on the CPU
## (README, "The committed weights"): `make weights-continue MINUTES=150` trains in the
## background at low priority from the committed file, then exports, compares the new file
## and the committed one on the same held-out images, and replaces the committed file (and
## the README's grid) only if held-out eps-MSE improved. Log: $(CONTINUE_RUN).log.
SMALL_WEIGHTS := www/weights/avatars-64-small.safetensors
SMALL_GRID := www/weights/avatars-64-small-grid.png
CONTINUE_RUN ?= runs/continue-small
MINUTES ?= 120
# OpenMP threads of the background run, and how they wait: 2 passive threads kept the most
# throughput while another process used a core (README, "The committed weights"). Low
# priority is nice 19 *and* the autogroup's nice: setsid gives the run its own scheduling
# group, and with autogroups (Linux's default) plain nice only ranks processes within one.
TRAIN_THREADS ?= 2
CONTINUE_ARGS := --weights $(SMALL_WEIGHTS) --grid $(SMALL_GRID) --data data/avatars \
	--run $(CONTINUE_RUN) --config small --device libtorch --batch-size 32 --lr 5e-4 \
	--warmup 200 --precision bf16 --checkpoint-every 200 --log-every 50 --max-minutes $(MINUTES)
weights-continue: trainer-tch
	test -d data/avatars || $(TCH_TRAINER) data avatars --count 20000 --out data/avatars
	mkdir -p runs
	OMP_NUM_THREADS=$(TRAIN_THREADS) OMP_WAIT_POLICY=PASSIVE setsid nohup sh -c \
		'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$$0" "$$@"' $(TCH_TRAINER) continue \
		$(CONTINUE_ARGS) > $(CONTINUE_RUN).log 2>&1 < /dev/null &
	@echo "training in the background for $(MINUTES) min; follow it with: tail -f $(CONTINUE_RUN).log"
## Ends the background run now: it stops after the current step, checkpoints, exports and
## compares (as at the end of MINUTES).
weights-stop:
	pkill -INT -f '[t]rainer continue' || echo "no background run"

## burn's LibTorch backend (`--device libtorch`, trainer feature `tch`): the pinned PyPI torch
## in .libtorch/ (README, "LibTorch"), and the trainer built against it.
LIBTORCH_VENV := .libtorch
TORCH_VERSION := 2.9.0
TCH_TRAINER := target/release/trainer
libtorch:
	@test -x $(LIBTORCH_VENV)/bin/python || python3 -m venv $(LIBTORCH_VENV)
	@$(LIBTORCH_VENV)/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null || \
		$(LIBTORCH_VENV)/bin/pip install --quiet torch==$(TORCH_VERSION)
trainer-tch: libtorch
	LIBTORCH_USE_PYTORCH=1 PATH=$(CURDIR)/$(LIBTORCH_VENV)/bin:$$PATH \
		$(CARGO) build --release -p trainer --no-default-features --features tch

## One table: training img/s and sampling ms/step of the default model on every backend this
## build has (the CPU, and the GPU where a Vulkan driver is found).
bench:
	$(TRAINER) bench --all

## The trainer's GPU path without a GPU, on the SwiftShader Vulkan driver in Debian's chromium:
## whether its kernels agree with the CPU, and the tiny model's figures on both.
SWIFTSHADER := LD_LIBRARY_PATH=/usr/lib/chromium XDG_RUNTIME_DIR=$(CURDIR)/target/xdg \
	VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
gpu-rehearsal: browser
	mkdir -p -m 700 target/xdg
	$(SWIFTSHADER) $(TRAINER) bench --all --config tiny --batch 8 --steps 3 --sample-steps 3 --warmup 1

## The trainer with burn's CUDA backend (`--device cuda`), built offline for an NVIDIA machine
## (README, "Training on an NVIDIA GPU"). cudarc's build reads the CUDA version from here, not
## from a toolkit; burn is compiled again for this feature set (~15 min on 2 cores).
CUDA_BUILD := CUDARC_CUDA_VERSION=13000 $(CARGO)
cuda:
	$(CUDA_BUILD) build --release -p trainer --features cuda
## Whether the CUDA build compiles, without a GPU (type-checks every trainer target).
cuda-check:
	$(CUDA_BUILD) check -p trainer --features cuda --all-targets

## What a GPU session carries to the lent machine (no Rust, no network there; 64 MiB at most):
## .run/ = the CUDA + Vulkan trainer and the avatar set as one dataset file (the PNGs are 53 MB
## under xz, the decoded bytes 22 MB), xz-packed; CUDA 13.0 headers (PyPI wheels,
## used when the machine's venv lacks them); .gl/ = the Vulkan loader (Debian). There,
## trainer/gpu/session.sh start MINUTES | watch SECONDS | finish (see its header).
gpu-pack: cuda
	mkdir -p .run/wheels .gl
	xz -T2 -6 -c target/release/trainer > .run/trainer.xz.partial && mv .run/trainer.xz.partial .run/trainer.xz
	test -d data/avatars || target/release/trainer data avatars --count 20000 --out data/avatars
	target/release/trainer data pack --data data/avatars --size 64 --out .run/avatars-64.dataset
	xz -T2 -6 -c .run/avatars-64.dataset > .run/avatars-64.dataset.xz && rm .run/avatars-64.dataset
	cp data/avatars/LICENSE.md .run/avatars-LICENSE.md
	pip download --quiet --no-deps -d .run/wheels nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
	cd .gl && apt-get download libvulkan1
	du -ch .run/trainer.xz .run/avatars-64.dataset.xz .run/avatars-LICENSE.md .run/wheels .gl | tail -1

## Page speed in headless chromium: ms/step of the tiny and a default-sized model, CPU
## fallback and WebGPU (SwiftShader), as a Markdown table.
page-bench: pkg browser native-tools
	$(NATIVE_DIR)/examples/tiny_weights target/e2e/tiny.safetensors
	$(NATIVE_DIR)/examples/tiny_weights target/e2e/default-random.safetensors 7 --default
	cd tests/e2e && node bench.mjs
