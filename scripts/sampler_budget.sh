#!/usr/bin/env bash
# Learned-prior FWI samplers at equal likelihood-gradient budgets (issue #16 item 4; docs/posterior.md, "Which
# sampler when"): the FWI part of `geomem validate-samplers` (64², 5 shots, 5.5 % noise, held-out truth #1000),
# one shipped learned prior, 8 chains, serial PDE solves, one variant per run folder OUT/PRIOR_VARIANT (cached:
# rerun to resume). Variants (gradients per sample):
#   b40       annealed 8 levels × 4 MALA (40) and split Gibbs 8 levels × 4 MALA + 2 sweeps (41): the CPU defaults
#   b110      annealed 10 × 10 (110) and split Gibbs 9 levels × 10 MALA + 2 sweeps (111)
#   start40   annealed 8 × 4 started from P unconditional prior draws (P = $DRAWS, default 256; $DRAW_STEPS Heun
#             steps each, default 32; start_sigma = 2); folder OUT/PRIOR_start40_P<P>_D<steps> unless the defaults
#   start110  annealed 10 × 10 with the same start
# Usage (repository root): scripts/sampler_budget.sh OUT PRIOR VARIANT [key=value ...]   (e.g. --device cuda)
#   PY: the interpreter (default .venv/bin/python, else python3); DRAWS, DRAW_STEPS: the start's prior draws.
set -euo pipefail
OUT=$1; PRIOR=$2; VARIANT=$3; shift 3
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DRAWS=${DRAWS:-256}
DRAW_STEPS=${DRAW_STEPS:-32}
NAME=${PRIOR}_$VARIANT
[[ $VARIANT == start* && ( $DRAWS != 256 || $DRAW_STEPS != 32 ) ]] && NAME=${NAME}_P${DRAWS}_D$DRAW_STEPS
export OMP_NUM_THREADS=1 DEVITO_LANGUAGE=C DEVITO_LOGGING=WARNING MPLBACKEND=Agg PYTHONUNBUFFERED=1
START=(fwi.annealed.prior_draws="$DRAWS" fwi.annealed.draw_steps="$DRAW_STEPS" fwi.annealed.start_sigma=2.0)
case $VARIANT in
  b40)      ARGS=('fwi.methods=["annealed","split_gibbs"]') ;;
  b110)     ARGS=('fwi.methods=["annealed","split_gibbs"]' fwi.annealed.steps=10 fwi.annealed.mala_steps=10
                  fwi.split_gibbs.levels=9 fwi.split_gibbs.mala_steps=10) ;;
  start40)  ARGS=('fwi.methods=["annealed"]' "${START[@]}") ;;
  start110) ARGS=('fwi.methods=["annealed"]' "${START[@]}" fwi.annealed.steps=10 fwi.annealed.mala_steps=10) ;;
  *) echo "unknown variant $VARIANT (b40, b110, start40, start110)" >&2; exit 2 ;;
esac
echo "=== $NAME $(date -u +%H:%M:%S) on $(nproc --all) cores"
start=$(date +%s)
"$PY" -m geomem.cli validate-samplers -c data/configs/validate_samplers.toml 'toys.problems=[]' fwi.memorized=false \
  'fwi.truths=["heldout:0"]' "fwi.learned=[\"$PRIOR\"]" fwi.chains=8 fwi.workers=0 "${ARGS[@]}" "$@" \
  --out "$OUT/$NAME"
echo "=== $NAME done in $(( $(date +%s) - start )) s"
