#!/usr/bin/env bash
# FWI posteriors at full size on a GPU machine (issues #16, #17): the FWI part of `geomem validate-samplers`
# (64², 5 shots, 5.5 % noise, 16 chains) with the DAPS-style `annealed` sampler started by importance resampling
# of 256 prior draws (docs/posterior.md), the networks on the GPU and the chains' Devito solves on a Dask
# LocalCluster of min(cores, 16) workers (one per chain); the exact memorized posterior is the reference in every run.
#   memorized: the memorized prior N = 50, training and held-out truth, 10 levels × 10 MALA steps (110 gradients),
#              sigma_min = 1e-4 and step_reset as data/configs/validate_samplers_annealed_fwi.toml (docs/posterior.md)
#   n1000, n50: the shipped learned prior, held-out truth, 40 levels × 40 MALA steps (1,640 gradients per sample)
# Each stage's run folder is runs/gpu_validate_<stage> (resumable: rerun the same stage to continue); its tables
# are copied to OUT_DIR. Usage (repository root): scripts/gpu/validate_fwi.sh OUT_DIR STAGE... [WHEELHOUSE=.whl]
set -uo pipefail
OUT=$1
shift
WH=${WHEELHOUSE:-.whl}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/validate_fwi.log") 2>&1
export PYTHONUNBUFFERED=1
scripts/gpu/install.sh "$WH" /tmp/geomem-site > "$OUT/install.log" 2>&1 || { tail -20 "$OUT/install.log"; exit 1; }
source /tmp/geomem-site/env.sh
nvidia-smi --query-gpu=name --format=csv,noheader
echo "cores: $(nproc --all) (nproc honours OMP_NUM_THREADS=1 of env.sh)"
# one worker per chain where the cores allow (16 chains on 15 workers would take two rounds of tasks per sampler
# call); the main process only runs the networks on the GPU between calls
W=$(( $(nproc --all) < 16 ? $(nproc --all) : 16 ))
COMMON=(-c data/configs/validate_samplers.toml 'toys.problems=[]' 'fwi.methods=["annealed"]' "fwi.workers=$W"
        fwi.device=cuda fwi.annealed.prior_draws=256 fwi.annealed.start_sigma=2.0)
for STAGE in "$@"; do
  RUN=runs/gpu_validate_$STAGE
  echo "=== $STAGE ($(date -u +%H:%M:%S))"
  case $STAGE in
    memorized) ARGS=(fwi.annealed.steps=10 fwi.annealed.mala_steps=10 fwi.annealed.sigma_min=1e-4
                     fwi.annealed.step_reset=true) ;;
    n1000|n50) ARGS=(fwi.memorized=false 'fwi.truths=["heldout:0"]' "fwi.learned=[\"$STAGE\"]"
                     fwi.annealed.steps=40 fwi.annealed.mala_steps=40) ;;
    *) echo "unknown stage $STAGE (memorized, n1000, n50)"; exit 2 ;;
  esac
  time python3 -m geomem.cli validate-samplers "${COMMON[@]}" "${ARGS[@]}" --out "$RUN"
  echo "exit $? ($(date -u +%H:%M:%S))"
  mkdir -p "$OUT/$STAGE" && find "$RUN" -maxdepth 1 -type f \( -name '*.json' -o -name '*.md' \) -exec cp {} "$OUT/$STAGE/" \;
done
