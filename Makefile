# ddpm-avatars — the two commands a newcomer needs:
#   make serve   run the demo page with the bundled weights
#   make test    run every test (installs what is missing first)

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown

RUN ?= runs/avatars
TRAINER := $(CARGO) run --release -p trainer --

.PHONY: test serve setup fmt-check clippy rust-test wasm data train resume weights bench

## Every test of the project: formatting, lints, Rust tests, the browser build.
test: setup fmt-check clippy rust-test wasm
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

## The root crate for the browser (WebGPU + CPU fallback).
wasm: setup
	$(CARGO) build --lib -p ddpm-avatars --target $(WASM_TARGET) --profile wasm-release

serve:
	@echo "page not built yet: the web page lands with issue 5 (see README)"

## Train your own (see README): dataset -> training -> published weights.
data:
	$(TRAINER) data avatars --count 20000 --out data/avatars

train:
	$(TRAINER) train --data data/avatars --run $(RUN)

resume:
	$(TRAINER) train --data data/avatars --run $(RUN) --resume

weights:
	$(TRAINER) export --run $(RUN) --out www/weights/avatars-64.safetensors

bench:
	$(TRAINER) bench
