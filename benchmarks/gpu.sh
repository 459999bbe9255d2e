#!/usr/bin/env bash
# GPU benchmarks of the reference pipeline's fast serving path, end to end, on a bare CUDA
# machine with PyTorch. No network is needed: it uses the python3 that holds torch, with
# numpy, pytest, pytest-benchmark, hypothesis, scikit-learn, scipy and safetensors (the
# lent GPU machines' image has them all; shap is not needed). Nothing is installed.
#
#   bash benchmarks/gpu.sh [OUT_DIR]      # default: $OUT if set, else .benchmarks/gpu
#
# 1. checks CUDA, prints the card;
# 2. the fast path's correctness on the GPU first: tests/test_fast_predict.py and
#    tests/test_bench.py, CUDA tests included (same predictions as the plain fp32 path);
# 3. the GPU benchmarks (benchmarks/test_bench_fast_predict.py -m gpu): device-resident
#    inference per variant at batch 1 .. 65536, the whole call from host memory, and one
#    deliberately unsynchronized timing -> OUT_DIR/gpu.json;
# 4. the summary against the goals (3x eager fp32, 10 M images/s, batch 1 under 50 us)
#    -> OUT_DIR/gpu-summary.txt.
#
# MLPROP_BENCH_COMPILE=1 adds the torch.compile variants (about 40 s of compilation per
# shape). The trained reference model is cached in $MLPROP_CACHE_DIR (default
# .benchmarks/mlprop-cache); copy ~/.cache/mlprop/digits-* there (and carry that folder)
# to skip training it on the GPU machine's CPU. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-.benchmarks/gpu}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MLPROP_CACHE_DIR=${MLPROP_CACHE_DIR:-$PWD/.benchmarks/mlprop-cache}
export PYTHONUNBUFFERED=1 CI=true
start=$(date +%s)

"$PY" - <<'EOF' | tee "$OUT_DIR/device.txt"
import sys
try:
    import torch
except ImportError:
    sys.exit(f"gpu.sh: {sys.executable} has no torch; set PYTHON to one that does")
if not torch.cuda.is_available():
    sys.exit("gpu.sh: CUDA is not available to this torch; nothing to measure")
props = torch.cuda.get_device_properties(0)
print(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
      f"{props.multi_processor_count} SMs; torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
EOF
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv || true

# The mlprop pytest plugin, unless an installed mlprop already registers it.
PLUGIN=(-p mlprop.plugin)
if "$PY" -c "import importlib.metadata as m, sys; sys.exit(not any(e.value == 'mlprop.plugin' for e in m.entry_points(group='pytest11')))"; then
  PLUGIN=()
fi

echo "== correctness of the fast path on the GPU"
"$PY" -m pytest "${PLUGIN[@]}" -p no:cacheprovider -q -rs tests/test_fast_predict.py \
  tests/test_bench.py 2>&1 | tee "$OUT_DIR/tests.log"

echo "== GPU benchmarks"
"$PY" -m pytest "${PLUGIN[@]}" -p no:cacheprovider -q benchmarks/test_bench_fast_predict.py \
  -m gpu --benchmark-only --benchmark-max-time=0.5 --benchmark-json="$OUT_DIR/gpu.json" \
  --benchmark-columns=median,min,rounds --benchmark-sort=name 2>&1 | tee "$OUT_DIR/bench.log"

echo "== summary"
"$PY" benchmarks/gpu_summary.py "$OUT_DIR/gpu.json" | tee "$OUT_DIR/gpu-summary.txt"
echo "gpu.sh: done in $(( $(date +%s) - start )) s; results in $OUT_DIR"
