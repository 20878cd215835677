#!/usr/bin/env bash
# Learned-prior FWI posteriors at full size on a GPU machine (issues #16, #17): the FWI part of
# `geomem validate-samplers` with the shipped N = 50 and N = 1000 priors on the held-out truth (64², 5 shots,
# 5.5 % noise, 16 chains), split Gibbs with 40 annealing levels of MALA likelihood steps, the networks on the GPU and
# the chains' Devito solves on a Dask LocalCluster of (cores − 1) workers; the exact memorized posterior is the
# reference. Usage (repository root): scripts/gpu/validate_fwi.sh OUT_DIR [WHEELHOUSE=.whl] [MALA_STEPS=20]
set -uo pipefail
OUT=$1
WH=${2:-.whl}
MALA=${3:-20}
mkdir -p "$OUT"
exec > >(tee "$OUT/validate_fwi.log") 2>&1
export PYTHONUNBUFFERED=1
scripts/gpu/install.sh "$WH" /tmp/geomem-site || exit 1
source /tmp/geomem-site/env.sh
nvidia-smi --query-gpu=name --format=csv,noheader
W=$(( $(nproc) - 1 ))
time python3 -m geomem.cli validate-samplers -c data/configs/validate_samplers.toml --out "$OUT/run" \
  'toys.problems=[]' fwi.memorized=false 'fwi.truths=["heldout:0"]' 'fwi.methods=["split_gibbs"]' \
  'fwi.learned=["n50","n1000"]' "fwi.workers=$W" fwi.device=cuda fwi.split_gibbs.levels=40 \
  "fwi.split_gibbs.mala_steps=$MALA"
