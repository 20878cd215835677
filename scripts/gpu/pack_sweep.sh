#!/usr/bin/env bash
# Pack a sweep's run folder for the CPU half (after its train and samples stages; DESTRUCTIVE: run it last): every
# checkpoint folder keeps only complete.json except the final one and those in the config's posterior_steps, whose
# EMA weights are recast to fp16 (no optimizer state); prior/ folders are dropped (they duplicate the final
# checkpoint's EMA). The folder is then tarred and split into <= 15 MiB pieces PACK_DIR/<name>.tgz.*
# Usage (repository root): scripts/gpu/pack_sweep.sh RUN_DIR CONFIG PACK_DIR [NAME=sweep]
set -euo pipefail
OUT=$1
CFG=$2
PACK=$3
NAME=${4:-sweep}
mkdir -p "$PACK"
python3 - "$OUT" "$CFG" <<'PY'
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from geomem.config import load_config
from geomem.experiments.sweep import SweepConfig
from geomem.workflow.priors import checkpoints

keep_steps = set(load_config(SweepConfig, sys.argv[2]).posterior_steps)
for run in sorted(p for p in (Path(sys.argv[1]) / "train").iterdir() if p.is_dir()):
    ckpts = checkpoints(run)
    keep = keep_steps | ({ckpts[-1][0]} if ckpts else set())
    for step, ck in ckpts:
        for f in ck.iterdir():
            if f.name == "complete.json" or (step in keep and f.name == "ema.safetensors"):
                continue
            f.unlink()
        if step in keep:
            ema = ck / "ema.safetensors"
            save_file({k: v.half() for k, v in load_file(str(ema)).items()}, str(ema))
    shutil.rmtree(run / "prior", ignore_errors=True)
PY
tar czf - -C "$(dirname "$OUT")" "$(basename "$OUT")" | split -b 15M - "$PACK/$NAME.tgz."
ls -la "$PACK"
