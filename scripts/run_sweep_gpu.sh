#!/usr/bin/env bash
# The GPU half of the sweep (docs/results.md): train the six priors of data/configs/sweep_default.toml as six
# parallel processes on one GPU, then draw and score unconditional samples of every checkpoint (same process,
# right after its training). Then pack what the CPU half needs: every checkpoint folder keeps only complete.json
# except the last, whose EMA weights are recast to fp16 (no optimizer state); prior/ folders are dropped (they
# duplicate the last checkpoint's EMA). The packed run folder is split into <= 15 MiB pieces in PACK_DIR.
#
# Usage (repository root): scripts/run_sweep_gpu.sh RUN_DIR PACK_DIR [TRAIN_LIMIT_S] [CONFIG]
#   TRAIN_LIMIT_S > 0 sends SIGTERM to a training still running after that many seconds: it saves a checkpoint at
#   its current step and stops (the step reached is recorded in the run folder and the tables).
# The CPU half, afterwards:  cat PACK_DIR/sweep.tgz.* | tar xz -C RUN_DIR/..;
#   geomem sweep -c CONFIG --out RUN_DIR --stage posteriors --stage report
set -uo pipefail
OUT=${1:-runs/sweep}
PACK=${2:-runs/sweep_pack}
LIMIT=${3:-0}
CFG=${4:-data/configs/sweep_default.toml}
mkdir -p "$OUT" "$PACK"
RUNS=$(python3 - "$CFG" <<'PY'
import sys
from geomem.config import load_config
from geomem.experiments.sweep import SweepConfig, grid, run_name
print(" ".join(run_name(n, w) for n, w in grid(load_config(SweepConfig, sys.argv[1]))))
PY
)
t0=$(date +%s)
for r in $RUNS; do
  (
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
python3 - "$OUT" <<'PY'
import sys
from pathlib import Path
import shutil
from safetensors.torch import load_file, save_file
from geomem.experiments.sweep import checkpoints
for run in sorted(p for p in (Path(sys.argv[1]) / "train").iterdir() if p.is_dir()):
    ckpts = checkpoints(run)
    for step, ck in ckpts:
        for f in ck.iterdir():
            if f.name == "complete.json" or (step == ckpts[-1][0] and f.name == "ema.safetensors"):
                continue
            f.unlink()
    if ckpts:
        ema = ckpts[-1][1] / "ema.safetensors"
        save_file({k: v.half() for k, v in load_file(str(ema)).items()}, str(ema))
    shutil.rmtree(run / "prior", ignore_errors=True)
PY
tar czf - -C "$(dirname "$OUT")" "$(basename "$OUT")" | split -b 15M - "$PACK/sweep.tgz."
ls -la "$PACK"
