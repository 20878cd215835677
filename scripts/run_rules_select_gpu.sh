#!/usr/bin/env bash
# The GPU half of `geomem rules` and `geomem select` at the default size (docs/rules.md): both commands run at once,
# their training processes spread over the visible GPUs, with CUDA MPS when GEOMEM_MPS=1 and it starts (see
# scripts/run_sweep_gpu.sh). Posteriors need Devito and run on the CPU afterwards: rerunning either command with
# posterior.enabled=true on the unpacked folder reuses the trained priors, the drawn samples and the selection scores.
# Packing drops the training checkpoints and the model sets (both commands rebuild the sets from their seeds), and
# recasts the prior weights to fp16; the tarball is split into <= 15 MiB pieces.
#
# Usage (repository root): scripts/run_rules_select_gpu.sh RULES_OUT SELECT_OUT PACK_DIR [RULES_CONFIG SELECT_CONFIG]
# CPU half:  cat PACK_DIR/rs.tgz.* | tar xz;  geomem rules -c "$RCFG" -o RULES_OUT \
#            posterior.enabled=true   (and likewise geomem select)
set -uo pipefail
RULES=${1:-runs/rules_default}
SELECT=${2:-runs/select_default}
PACK=${3:-runs/rs_pack}
RCFG=${4:-data/configs/rules_default.toml}
SCFG=${5:-data/configs/select_default.toml}
mkdir -p "$RULES" "$SELECT" "$PACK"
source "$(dirname "$0")/gpu_mps.sh"
start_mps "$RULES/mps.txt"
t0=$(date +%s)
python3 -m geomem.cli rules -c "$RCFG" -o "$RULES" >"$RULES/gpu.log" 2>&1 &
python3 -m geomem.cli select -c "$SCFG" -o "$SELECT" >"$SELECT/gpu.log" 2>&1 &
wait
echo "rules + select wall time: $(( $(date +%s) - t0 )) s" | tee "$RULES/gpu_wall.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >>"$RULES/gpu_wall.txt" 2>/dev/null || true
stop_mps
python3 - "$RULES" "$SELECT" <<'PY'
import shutil
import sys
from pathlib import Path
import torch
from geomem.priors.learned import resave_prior
for root in map(Path, sys.argv[1:]):
    for prior in (root / "priors").glob("*/"):
        shutil.rmtree(prior / "checkpoints", ignore_errors=True)
        resave_prior(prior / "prior", torch.float16)
    for f in [*(root / "sets").glob("*.npz"), root / "full.npz", root / "selected.npz"]:
        f.unlink(missing_ok=True)
PY
tar czf - "$RULES" "$SELECT" | split -b 15M - "$PACK/rs.tgz."
ls -la "$PACK"
