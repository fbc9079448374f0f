#!/usr/bin/env bash
# The prepared GPU check: on a machine with an NVIDIA GPU, from the repository root,
#
#     benchmarks/gpu_check.sh OUT_DIR            # the real GPU, with the real CuPy
#     benchmarks/gpu_check.sh --emulate OUT_DIR  # a rehearsal on the emulated device (no GPU)
#
# runs, within 8 minutes in all (each stage has its share of a 450 s deadline):
#   1. what is here: nvidia-smi, Python, and whether NumPy, SciPy, numba, pytest, hypothesis
#      and CuPy import (and whether PyTorch sees the GPU, for the comparison);
#   2. what is missing, installed from the project's own files: `pip install -e ".[dev]"` for
#      the test dependencies and `pip install -e ".[gpu]"` (cupy-cuda12x) for CuPy, only if
#      they do not import already. That needs a package index; with none reachable the missing
#      names go into summary.txt and the stages that need them are skipped. PyTorch with CUDA
#      is optional (the step benchmark's comparison); this script never installs it.
#   3. every `gpu`-marked test with the real CuPy (the reference ops on the device, GPT/BERT
#      steps, checkpoints, the CLI, and the CUDA kernels' parity tests, which opt in to
#      fast/cuda/ themselves), then tests/test_device.py again with every CUDA kernel on
#      (MINITRANSFORMER_CUDA_KERNELS=1);
#   4. the GPU benchmarks (python -m benchmarks.gpu: step at nanoGPT's shakespeare-char config
#      vs PyTorch, and the ops);
# and writes everything under OUT_DIR: summary.txt (one line per stage: passed / failed /
# skipped, with counts), environment.txt, install.txt, tests_gpu.txt and .xml,
# tests_kernels_on.txt and .xml, benchmarks.txt, benchmarks/gpu_step.json and gpu_ops.json
# (and, rehearsing, emulated_cupy_calls.json: every CuPy function the tests called, with counts).
# Exit status 0 when every stage that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."

EMULATE=0
if [[ "${1:-}" == "--emulate" ]]; then EMULATE=1; shift; fi
OUT="${1:?usage: benchmarks/gpu_check.sh [--emulate] OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
START=$SECONDS
DEADLINE=450  # seconds: the 8 minutes, less a margin for writing the summary
SUMMARY="$OUT/summary.txt"
STATUS=0
: > "$SUMMARY"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the checkout itself, installed or not
export PYTHONDONTWRITEBYTECODE=1
unset MINITRANSFORMER_CUDA_KERNELS
if [[ $EMULATE == 1 ]]; then export MINITRANSFORMER_EMULATE_CUDA=1; else unset MINITRANSFORMER_EMULATE_CUDA; fi

note() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $(( DEADLINE - (SECONDS - START) )); }
budget() {  # the smaller of a stage's cap and what is left before the deadline
    local cap=$1 remaining
    remaining=$(left)
    (( remaining < cap )) && cap=$remaining
    echo $(( cap > 0 ? cap : 1 ))
}
imports() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

note "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([[ $EMULATE == 1 ]] && echo ', REHEARSAL on the emulated device')"

# --- 1. the environment -------------------------------------------------------------------------
{
    echo "## nvidia-smi"; (nvidia-smi 2>&1 || echo "nvidia-smi: not available")
    echo; echo "## python"; "$PYTHON" --version 2>&1; which "$PYTHON"
    echo; echo "## packages"
    for module in numpy scipy numba threadpoolctl matplotlib pytest hypothesis cupy torch; do
        "$PYTHON" -c "import $module; print('$module', getattr($module, '__version__', '?'))" 2>&1 | tail -1
    done
    "$PYTHON" -c "import torch; print('torch.cuda.is_available():', torch.cuda.is_available())" 2>&1 | tail -1
} > "$OUT/environment.txt" 2>&1

# --- 2. install what is missing, from the project's files -----------------------------------------
MISSING_TEST=""
for module in numpy scipy numba threadpoolctl matplotlib pytest hypothesis; do
    imports "$module" || MISSING_TEST="$MISSING_TEST $module"
done
: > "$OUT/install.txt"
if [[ -n "$MISSING_TEST" ]]; then
    echo "missing:$MISSING_TEST -> pip install -e .[dev]" >> "$OUT/install.txt"
    timeout "$(budget 120)" "$PYTHON" -m pip install -q -e ".[dev]" >> "$OUT/install.txt" 2>&1
fi
if [[ $EMULATE == 0 ]] && ! imports cupy; then
    echo "missing: cupy -> pip install -e .[gpu]" >> "$OUT/install.txt"
    timeout "$(budget 150)" "$PYTHON" -m pip install -q -e ".[gpu]" >> "$OUT/install.txt" 2>&1
fi
STILL_MISSING=""
for module in numpy scipy numba threadpoolctl matplotlib pytest hypothesis; do
    imports "$module" || STILL_MISSING="$STILL_MISSING $module"
done
if [[ $EMULATE == 0 ]] && ! "$PYTHON" -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" >> "$OUT/install.txt" 2>&1; then
    STILL_MISSING="$STILL_MISSING cupy(with-a-visible-GPU)"
fi
if [[ -n "$STILL_MISSING" ]]; then
    note "install: FAILED, still missing:$STILL_MISSING (see install.txt); the tests and benchmarks need them"
    exit 1
fi
if [[ -n "$MISSING_TEST" ]]; then note "install: ok (installed:$MISSING_TEST)"; else note "install: ok (nothing was missing)"; fi
"$PYTHON" -c "import cupy; print('cupy', cupy.__version__, 'emulated' if getattr(cupy, 'EMULATED', False) else 'real')" >> "$OUT/environment.txt" 2>&1

# --- 3. the gpu tests, with the real CuPy -----------------------------------------------------------
counts() {  # "N passed, M failed..." from pytest's last line
    tail -n 3 "$1" | grep -Eo '[0-9]+ (passed|failed|skipped|error|errors|deselected)' | paste -sd, - | sed 's/,/, /g'
}
run_tests() {  # name, cap in seconds, pytest arguments...
    local name=$1 cap=$2; shift 2
    local limit rc
    limit=$(budget "$cap")
    timeout "$limit" "$PYTHON" -m pytest -q -p no:cacheprovider --junitxml="$OUT/$name.xml" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    if (( rc == 124 )); then note "$name: FAILED, timed out after ${limit}s ($(counts "$OUT/$name.txt"))"; STATUS=1
    elif (( rc == 0 )); then note "$name: passed ($(counts "$OUT/$name.txt"))"
    else note "$name: FAILED, pytest exit $rc ($(counts "$OUT/$name.txt")); see $name.txt"; STATUS=1; fi
}
if [[ $EMULATE == 1 ]]; then  # the rehearsal also records which CuPy functions the tests called
    MINITRANSFORMER_EMULATE_CUDA_LOG="$OUT/emulated_cupy_calls.json" run_tests tests_gpu 240 -m gpu
else
    run_tests tests_gpu 240 -m gpu
fi
MINITRANSFORMER_CUDA_KERNELS=1 run_tests tests_kernels_on 60 tests/test_device.py

# --- 4. the GPU benchmarks ------------------------------------------------------------------------
if (( $(left) < 30 )); then
    note "benchmarks: skipped, $(left)s left of the 8 minutes"
    STATUS=1
else
    QUICK=""
    [[ $EMULATE == 1 ]] && QUICK="--quick"  # the emulated device's numbers mean nothing: just the path
    limit=$(budget 150)
    timeout "$limit" "$PYTHON" -m benchmarks.gpu $QUICK --out "$OUT/benchmarks" > "$OUT/benchmarks.txt" 2>&1
    rc=$?
    if (( rc == 0 )); then note "benchmarks: passed (benchmarks/gpu_step.json, gpu_ops.json)"
    elif (( rc == 124 )); then note "benchmarks: FAILED, timed out after ${limit}s (what finished is in benchmarks/)"; STATUS=1
    else note "benchmarks: FAILED, exit $rc; see benchmarks.txt"; STATUS=1; fi
fi

note "gpu_check: $([[ $STATUS == 0 ]] && echo passed || echo FAILED) in $(( SECONDS - START ))s; results in $OUT"
exit $STATUS
