#!/usr/bin/env bash
# The GPU half of the sweep (docs/results.md): train the priors of CONFIG as parallel processes spread over the
# visible GPUs (largest UNets first, each to the least-loaded GPU), then draw and score unconditional samples of
# every checkpoint (same process, right after its training). CUDA MPS is started when GEOMEM_MPS=1 and it works
# (kernels of the processes then share the GPU instead of time-slicing it); the log says whether it ran.
# Then pack what the CPU half needs (scripts/gpu/pack_sweep.sh: final and posterior_steps EMA weights in fp16, the
# rest of each checkpoint dropped), split into <= 15 MiB pieces.
#
# Usage (repository root): scripts/run_sweep_gpu.sh RUN_DIR PACK_DIR [TRAIN_LIMIT_S] [CONFIG]
#   TRAIN_LIMIT_S > 0 sends SIGTERM to a training still running after that many seconds: it saves a checkpoint at
#   its current step and stops (the step reached is recorded in the run folder and the tables; the checkpoints
#   every run reached are the equal-budget comparison).
# The CPU half, afterwards:  cat PACK_DIR/sweep.tgz.* | tar xz -C RUN_DIR/..;
#   geomem sweep -c CONFIG --out RUN_DIR --stage posteriors --stage report
set -uo pipefail
OUT=${1:-runs/sweep}
PACK=${2:-runs/sweep_pack}
LIMIT=${3:-0}
CFG=${4:-data/configs/sweep_default.toml}
mkdir -p "$OUT" "$PACK"
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "$NGPU" -gt 0 ] || NGPU=1
source "$(dirname "$0")/gpu_mps.sh"
start_mps "$OUT/mps.txt"
# "run:gpu" pairs: widest UNets first, each to the GPU with the least summed width^2 so far
PLAN=$(python3 - "$CFG" "$NGPU" <<'PY'
import sys
from geomem.config import load_config
from geomem.experiments.sweep import SweepConfig, grid, run_name
jobs = sorted(grid(load_config(SweepConfig, sys.argv[1])), key=lambda nw: -nw[1])
load = [0] * int(sys.argv[2])
plan = []
for n, w in jobs:
    g = load.index(min(load))
    load[g] += w * w
    plan.append(f"{run_name(n, w)}:{g}")
print(" ".join(plan))
PY
)
echo "plan (run:gpu): $PLAN" | tee "$OUT/plan.txt"
t0=$(date +%s)
for job in $PLAN; do
  r=${job%%:*}
  g=${job##*:}
  (
    export CUDA_VISIBLE_DEVICES=$g
    if [ "$LIMIT" -gt 0 ]; then
      timeout --signal=TERM "$LIMIT" python3 -m geomem.cli sweep -c "$CFG" --out "$OUT" --stage train --run "$r" --no-progress
    else
      python3 -m geomem.cli sweep -c "$CFG" --out "$OUT" --stage train --run "$r" --no-progress
    fi
    python3 -m geomem.cli sweep -c "$CFG" --out "$OUT" --stage samples --run "$r" --no-progress
  ) >"$OUT/$r.log" 2>&1 &
done
wait
echo "train + samples wall time: $(( $(date +%s) - t0 )) s" | tee "$OUT/gpu_wall.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >>"$OUT/gpu_wall.txt" 2>/dev/null || true
stop_mps
"$(dirname "$0")/gpu/pack_sweep.sh" "$OUT" "$CFG" "$PACK"
