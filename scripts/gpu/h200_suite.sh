#!/usr/bin/env bash
# The GPU-machine measurements of docs/gpu.md and docs/benchmarks.md ("H200" section), from a clean checkout with
# the wheelhouse of scripts/gpu/prepare_wheelhouse.sh at WHEELHOUSE. Four parts, each under 10 minutes:
#   part1: install (timed), the CLI and GPU/Devito tests, training throughput (fp32 vs the fast path), the memorized
#          denoiser against its floor, Dask efficiency of the physics from 1 to 16 cores
#   part2: bf16-vs-fp32 training equivalence (loss curves, memorization rates, resume on the GPU)
#   part3 (under 8 minutes: every step's time limit is cut to what is left of a 470 s budget): DPS step split on
#          the GPU after the device-side noise change, Dask efficiency beside a plain process pool from 1 to
#          16 workers, the Devito gradient/forward ratio on one host core, training throughput at batch 128
#          (CUDA graphs with and without cuDNN benchmark mode, then max-autotune while time is left)
#   part4 (under 8 minutes, limits cut to a budget of PART4_BUDGET (default 480) s like part3): the four rows
#          issue #17 asks for from one run — Dask beside a process pool at 1, 8 and 16 workers, the DPS step's
#          overhead (eager and CUDA-graph update), the memorized denoiser against its floor at N = 10⁶ (every
#          layout and the shipped tuned Triton pair H200_TF32X3 at B = 16 and 64; the tuning sweep itself is
#          --grid tune, not run here), training fp32 vs the fast path (bf16 + CUDA graphs) at batch 128 and 512.
#          Session 15: 268 s on a host whose Triton/Inductor caches were warm, ~390 s estimated on a fresh one
# Usage (repository root): scripts/gpu/h200_suite.sh part1|part2|part3|part4 OUT_DIR [WHEELHOUSE=.whl]
set -uo pipefail
PART=$1
OUT=$2
WH=${3:-.whl}
case "$PART" in part1|part2|part3|part4) ;; *) echo "usage: $0 part1|part2|part3|part4 OUT_DIR [WHEELHOUSE]" >&2
  exit 2;; esac
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
BUDGET=470  # part3/part4: seconds for the whole part, install included
[ "$PART" = part4 ] && BUDGET=${PART4_BUDGET:-480}
# bounded CAP COMMAND...: run COMMAND with a limit of CAP seconds or what is left of BUDGET, whichever is less
bounded() {
  local cap=$1 left=$(( BUDGET - ($(date +%s) - t0) )); shift
  if [ "$left" -lt 20 ]; then echo "skipped (only ${left} s of the budget left): $*"; return 0; fi
  [ "$left" -lt "$cap" ] && cap=$left
  echo "time limit ${cap} s"
  timeout "$cap" "$@" || echo "exit status $? (124: stopped at the time limit): $*"
}
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
elif [ "$PART" = part4 ]; then
  step "Dask beside a process pool, 64 chains of 64² 5-shot gradients, 1, 8 and 16 workers (first: idle host)"
  bounded 100 python3 -m benchmarks.gpu_dask --workers 1 8 16 --min-seconds 1 --out "$OUT/dask.json"
  step "DPS step overhead, memorized prior, eager and CUDA-graph update"
  bounded 60 python3 -m benchmarks --device cuda --cases dps --dps-physics placeholder --dps-priors memorized \
    --dps-steps eager,graph --out "$OUT/dps_overhead_gpu.json"
  step "memorized denoiser against its floor, N = 10⁶, B = 16 and 64: every layout and the shipped tuned Triton pair"
  bounded 120 python3 -m benchmarks.gpu_memorized --sizes 1000000 --batches 16 64 --sigmas 1 --grid shipped \
    --repeats 7 --out "$OUT/memorized.json"
  step "training throughput, fp32 eager at batch 128 and 512"
  bounded 100 python3 -m benchmarks.gpu_training throughput fp32:0:0:off:128 fp32:0:0:off:512 --out "$OUT/train_fp32.json"
  step "training throughput, bf16 + CUDA graphs at batch 128 and 512 (own process)"
  bounded 200 python3 -m benchmarks.gpu_training throughput graphs:1:0:reduce-overhead:128 \
    graphs:1:0:reduce-overhead:512 --out "$OUT/train_fast.json"
elif [ "$PART" = part3 ]; then
  step "tests: per-chain noise on the device, DPS on CUDA (reproducible chains, divergence flagged)"
  bounded 60 python3 -m pytest -q -p no:cacheprovider tests/posterior_samplers/test_chain_noise.py
  step "DPS step split on the GPU, learned and memorized priors (placeholder physics: networks and sampler)"
  bounded 90 python3 -m benchmarks --device cuda --cases dps --dps-physics placeholder --out "$OUT/dps_gpu.json"
  step "Dask efficiency beside a plain process pool, 64 chains, 1 to 16 workers"
  bounded 170 python3 -m benchmarks.gpu_dask --workers 1 2 4 8 12 15 16 --out "$OUT/dask_scaling.json"
  step "Devito gradient / forward on one host core (64², 128², 256²)"
  bounded 180 python3 -m benchmarks --cases gradient --out "$OUT/gradient.json"
  step "training throughput at batch 128: CUDA graphs with and without cuDNN benchmark mode"
  bounded 200 python3 -m benchmarks.gpu_training throughput graphs:1:0:reduce-overhead:128 \
    graphs_nobench:1:0:reduce-overhead:128:nobench --out "$OUT/train_d.json"
  step "training throughput at batch 128: max-autotune (CUDA graphs), own process, while time is left"
  bounded 150 python3 -m benchmarks.gpu_training throughput autotune:1:0:max-autotune:128 --out "$OUT/train_e.json"
  step "training throughput at batch 128: max-autotune-no-cudagraphs, own process, while time is left"
  bounded 150 python3 -m benchmarks.gpu_training throughput autotune_nographs:1:0:max-autotune-no-cudagraphs:128 \
    --out "$OUT/train_f.json"
else
  step "bf16 vs fp32 equivalence"
  timeout 400 python3 -m benchmarks.gpu_training equivalence --steps 1500 --out "$OUT/equivalence.json"
  step "training throughput: batch 1024"
  timeout 100 python3 -m benchmarks.gpu_training throughput fast:1:0:default:1024 --out "$OUT/train_c.json"
fi
step "done"
