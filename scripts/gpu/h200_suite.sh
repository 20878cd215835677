#!/usr/bin/env bash
# The GPU-machine measurements of docs/gpu.md and docs/benchmarks.md ("H200" section), from a clean checkout with
# the wheelhouse of scripts/gpu/prepare_wheelhouse.sh at WHEELHOUSE. Two parts, each well under 10 minutes:
#   part1: install (timed), the CLI and GPU/Devito tests, training throughput (fp32 vs the fast path), the memorized
#          denoiser against its floor, Dask efficiency of the physics from 1 to 16 cores
#   part2: bf16-vs-fp32 training equivalence (loss curves, memorization rates, resume on the GPU)
# Usage (repository root): scripts/gpu/h200_suite.sh part1|part2 OUT_DIR [WHEELHOUSE=.whl]
set -uo pipefail
PART=$1
OUT=$2
WH=${3:-.whl}
mkdir -p "$OUT"
exec > >(tee "$OUT/$PART.log") 2>&1
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/geomem-inductor
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cores: $(nproc); python: $(python3 --version); gcc: $(gcc --version | head -1)"
step "install"
scripts/gpu/install.sh "$WH" /tmp/geomem-site || exit 1
source /tmp/geomem-site/env.sh
if [ "$PART" = part1 ]; then
  step "geomem CLI"
  timeout 60 python3 -m geomem.cli --help | head -30
  step "tests on the GPU machine: memorized prior (CUDA test included), Devito adjoint/Taylor"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/priors/test_memorized.py tests/physics/test_acoustic_adjoint.py
  step "Devito with the image's own numpy (no pins): dot and Taylor tests"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-nopin "$WH"/wheels/*.whl
  PYTHONPATH=$PWD:/tmp/site-nopin timeout 90 python3 -c "import numpy; print('numpy', numpy.__version__)" &&
    PYTHONPATH=$PWD:/tmp/site-nopin timeout 90 python3 -m pytest -q -p no:cacheprovider tests/physics/test_acoustic_adjoint.py
  step "training throughput (one process: safe variants)"
  timeout 200 python3 -m benchmarks.gpu_training throughput fp32:0:0:off:128 fp32:0:0:off:512 bf16_cl:1:1:off:128 \
    bf16_cl:1:1:off:512 fast:1:0:default:128 fast:1:0:default:512 --out "$OUT/train_a.json"
  step "training throughput (own process: CUDA graphs, channels-last + compile)"
  timeout 150 python3 -m benchmarks.gpu_training throughput graphs:1:0:reduce-overhead:128 \
    graphs:1:0:reduce-overhead:512 fast_cl:1:1:default:512 --out "$OUT/train_b.json"
  step "memorized denoiser"
  timeout 150 python3 -m benchmarks.gpu_memorized --out "$OUT/memorized.json"
  step "Dask efficiency"
  timeout 150 python3 -m benchmarks.gpu_dask --chains 32 --workers 1 2 4 8 16 --out "$OUT/dask.json"
else
  step "bf16 vs fp32 equivalence"
  timeout 400 python3 -m benchmarks.gpu_training equivalence --steps 1500 --out "$OUT/equivalence.json"
  step "training throughput: batch 1024"
  timeout 100 python3 -m benchmarks.gpu_training throughput fast:1:0:default:1024 --out "$OUT/train_c.json"
fi
step "done"
