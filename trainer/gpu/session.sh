#!/usr/bin/env bash
# One GPU session's training, on a machine lent for minutes (no Rust, no network): run from
# the repository root, with what `make gpu-pack` put in .run/ (and .gl/) carried there.
#
#   trainer/gpu/session.sh start MINUTES [DEVICE]   unpack, set up CUDA/Vulkan, bench each
#                                                   GPU backend, train in the background
#   trainer/gpu/session.sh watch SECONDS            wait (keeps the machine), print progress
#   trainer/gpu/session.sh finish                   export, eval, 64-avatar grid -> $OUT
#
# DEVICE is cuda (default), vulkan or cpu. Training continues the published weights when
# they exist (--init-from), so GPU sessions add up; `finish` evaluates the new file and its
# parent on the held-out split: commit the new one only if its eps-MSE is lower.
#
# TRAIN adds flags to `trainer train`; GRID replaces the grid's sampling flags. A rehearsal
# of the whole script on any machine, with a small 64-px model (measured: 1 minute of
# training, 24 s to finish, on 2 cores):
#   make gpu-pack
#   TRAIN="--config trainer/gpu/rehearsal-64.json --batch-size 4" trainer/gpu/session.sh start 1 cpu
#   GRID="--count 4 --sampler ddim --steps 4" trainer/gpu/session.sh finish
set -euo pipefail

PACK=.run
RUN=$PACK/run
TRAINER=$PACK/trainer
PUBLISHED=www/weights/avatars-64.safetensors
# The avatar set as one dataset file (`trainer data pack`), and its licence for the metadata.
DATA=$PACK/avatars-64.dataset
DATASET=(--dataset-name avatars --licence "$(grep -m1 -E '^(Licence|License):' "$PACK/avatars-LICENSE.md" 2>/dev/null || echo unknown)")
OUT=${OUT:-$PACK/out}

say() { printf '[session %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { say "error: $*" >&2; exit 1; }

unpack() {
    [ -f "$PACK/trainer.xz" ] || die "$PACK/trainer.xz is missing: run 'make gpu-pack' and carry $PACK"
    [ -x "$TRAINER" ] || { xz -dc "$PACK/trainer.xz" > "$TRAINER.partial" && chmod +x "$TRAINER.partial" && mv "$TRAINER.partial" "$TRAINER"; }
    [ -f "$DATA" ] || { xz -dc "$DATA.xz" > "$DATA.partial" && mv "$DATA.partial" "$DATA"; }
    if [ ! -d "$PACK/cuda" ]; then
        local python
        python=$(command -v python3 || echo /opt/torch/.venv/bin/python)
        mkdir -p "$PACK/cuda.partial"
        for wheel in "$PACK"/wheels/*.whl; do "$python" -m zipfile -e "$wheel" "$PACK/cuda.partial"; done
        mv "$PACK/cuda.partial" "$PACK/cuda"
    fi
    # The Vulkan loader (Debian packages) for --device vulkan; the driver brings its ICD.
    if ls .gl/*.deb >/dev/null 2>&1; then
        for deb in .gl/*.deb; do dpkg -x "$deb" /; done
        ldconfig
    fi
}

# NVRTC compiles burn's CUDA kernels at run time: it needs libnvrtc.so.13 (the machine's
# Python venv has it) and the CUDA headers under $CUDA_PATH/include, with CCCL under
# include/cccl. The venv's own nvidia/cu13 is used when it has them all (same version as its
# NVRTC); otherwise the carried nvidia-cuda-runtime and nvidia-cuda-cccl wheels (13.0).
cuda_environment() {
    local nvrtc root
    nvrtc=$(find /opt/torch/.venv -name 'libnvrtc.so.13' 2>/dev/null | head -1)
    [ -n "$nvrtc" ] || die "no libnvrtc.so.13 under /opt/torch/.venv"
    export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export CUDA_PATH=
    for root in "$(dirname "$(dirname "$nvrtc")")" "$PWD/$PACK/cuda/nvidia/cu13"; do
        if [ -e "$root/include/cuda_fp16.h" ] && [ -e "$root/include/cuda_bf16.h" ] &&
            [ -e "$root/include/mma.h" ] && [ -e "$root/include/cccl/cuda/barrier" ]; then
            CUDA_PATH=$root
            break
        fi
    done
    [ -n "$CUDA_PATH" ] || die "no CUDA headers (cuda_fp16.h, cuda_bf16.h, mma.h, cccl/cuda/barrier) next to $nvrtc or in $PACK/cuda"
    say "CUDA_PATH=$CUDA_PATH; NVRTC $nvrtc"
}

start() {
    local minutes=${1:?start MINUTES [DEVICE]} device=${2:-cuda}
    unpack
    [ "$device" = cpu ] || cuda_environment
    mkdir -p "$RUN" && echo "$device" > "$RUN/device"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    mkdir -p "$RUN"
    # One backend at a time: `bench --all` would also time the CPU at batch 128 (minutes).
    local backends=(cuda vulkan)
    [ "$device" = cpu ] && backends=()
    for backend in "${backends[@]}"; do
        say "bench --device $backend (default model; the first steps include tuning)"
        timeout 240 "$TRAINER" bench --device "$backend" --batch 128 --steps 10 --warmup 3 \
            --sample-steps 10 2>&1 | tee -a "$RUN/bench.md" || say "bench $backend did not finish"
    done
    local parent=()
    [ -f "$PUBLISHED" ] && parent=(--init-from "$PUBLISHED")
    say "training on --device $device for $minutes minutes ${parent[*]}"
    # shellcheck disable=SC2086
    setsid nohup "$TRAINER" train --device "$device" --data "$DATA" "${DATASET[@]}" --run "$RUN" \
        --max-minutes "$minutes" --checkpoint-every 2000 "${parent[@]}" ${TRAIN:-} \
        > "$RUN/train.out" 2>&1 < /dev/null &
    sleep 60
    tail -5 "$RUN/train.out"
}

watch() {
    sleep "${1:?watch SECONDS}"
    tail -3 "$RUN/train.log" 2>/dev/null || tail -5 "$RUN/train.out"
}

finish() {
    while pgrep -f "$TRAINER train" >/dev/null; do say "training still running"; sleep 10; done
    tail -3 "$RUN/train.out"
    local device
    device=$(cat "$RUN/device")
    [ "$device" = cpu ] || cuda_environment
    mkdir -p "$OUT"
    local weights=$OUT/avatars-64.safetensors
    "$TRAINER" export --run "$RUN" --out "$weights"
    {
        echo "new:"; "$TRAINER" eval --device "$device" --weights "$weights" --data "$DATA"
        if [ -f "$PUBLISHED" ]; then
            echo "parent:"; "$TRAINER" eval --device "$device" --weights "$PUBLISHED" --data "$DATA"
        fi
    } 2>&1 | tee "$OUT/eval.txt"
    # The README's grid: 64 avatars, DDPM 1000 steps, seeds 0..63 (GRID overrides, e.g. for
    # a CPU rehearsal).
    # shellcheck disable=SC2086
    "$TRAINER" sample --device "$device" --weights "$weights" --out "$OUT/grid.png" --seed 0 \
        ${GRID:---count 64 --sampler ddpm} 2>&1 | tail -2
    cp "$RUN/bench.md" "$RUN/train.log" "$RUN/loss.png" "$RUN/metrics.csv" "$OUT/" 2>/dev/null || true
    ls -la "$OUT"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    watch) shift; watch "$@" ;;
    finish) finish ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
