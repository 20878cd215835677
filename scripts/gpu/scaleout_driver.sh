#!/usr/bin/env bash
# The work of scripts/gpu/scaleout.sh, started by it in its own process session (it outlives the 10-minute calls
# while the machine stays warm). Stages, in order, each with a time limit, each writing under RUN_DIR:
#   host        the same Devito work (stencil alone, gradient, PML gradient) and a memory copy in 1..min(16, cores)
#               processes at once, no scheduler (benchmarks/host_scaling.py; first, on an idle host)
#   tests       the CUDA tests: memorized denoiser (cuBLAS layouts, compiled Triton kernels), DPS step (eager,
#               compiled and CUDA graph) and per-chain noise on the GPU
#   dps         DPS's own overhead per step with the memorized prior on the GPU, eager, compiled and graph step
#               (python -m benchmarks --cases dps; on an otherwise idle host)
#   dask        Dask efficiency of the physics from 1 to min(16, cores) workers beside a process pool
#               (benchmarks/gpu_dask.py; run first, on an otherwise idle host)
#   memorized   the memorized denoiser against its floor at N = 10⁶, B = 16 and 64, every layout including the
#               Triton kernels (benchmarks/gpu_memorized.py; alone on the GPU)
#   sweep       N = 50 of data/configs/sweep_50k.toml (50,000 steps) in the background on GPU 0
#               (scripts/gpu/sweep_50k_driver.sh, run folder runs/sweep50k)
#   compare     `geomem compare -c data/configs/compare_gpu.toml` for each prior in PRIORS (default: the shipped
#               n1000 and n50), one after another with min(16, cores) Dask workers — on 2 GPUs with >= 32 cores two
#               at a time, on the second GPU — into RUN_DIR/compare_<name>
# Writes RUN_DIR/driver.log (stage stamps) and, once every stage but the background sweep is over, RUN_DIR/driver.done.
# Usage (repository root, environment of scripts/gpu/install.sh): scripts/gpu/scaleout_driver.sh RUN_DIR [PRIOR ...]
# Environment: STAGES (default "host tests dps dask memorized sweep compare": the stages to run, in the order above);
# COMPARE_SET (space-separated `key=value` overrides appended to every compare command, e.g.
# "sampler.annealed.select_levels=3"); COMPARE_CONCURRENT=1 runs every prior's compare at once, each with its own
# min(16, cores) workers (the learned sampler's step on 16 workers is ~half Devito, ~half waiting: session 7 spent
# 783 s on 1,640 steps of which ~0.23 s each was physics). The compare logs carry one line per annealed level.
set -uo pipefail
RUN=$1
shift
PRIORS=("${@:-n1000 n50}")
read -r -a PRIORS <<< "${PRIORS[*]}"
read -r -a STAGES <<< "${STAGES:-host tests dps dask memorized sweep compare}"
read -r -a COMPARE_SET <<< "${COMPARE_SET:-}"
wants() { [[ " ${STAGES[*]} " == *" $1 "* ]]; }
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/geomem-inductor
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
CORES=$(nproc --all)  # not plain nproc: it honours OMP_NUM_THREADS=1
W=$(( CORES < 16 ? CORES : 16 ))
t0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - t0 )) s, $(date -u +%H:%M:%S)] $*"; }
limited() {  # limited SECONDS LOG COMMAND...: run COMMAND with a time limit, output to LOG
  local cap=$1 log=$2; shift 2
  timeout "$cap" "$@" > "$log" 2>&1; local rc=$?
  echo "exit $rc (124: stopped at the ${cap} s limit): $*"; tail -n 3 "$log"
}
stamp "scaleout driver: $NGPU GPU(s), $CORES cores, $W workers per Dask cluster, priors ${PRIORS[*]}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
uptime
if wants host; then
  stamp "host scaling: the same work in 1..$W processes (stencil, gradient, PML gradient, memory copy)"
  limited 300 "$RUN/host.log" python3 -m benchmarks.host_scaling --procs 1 2 4 8 "$W" --out "$RUN/host_scaling.json"
fi
if wants tests; then
  stamp "CUDA tests: memorized denoiser (cuBLAS layouts, compiled Triton kernels), DPS step, chain noise"
  limited 240 "$RUN/tests.log" python3 -m pytest -q -p no:cacheprovider tests/priors/test_memorized.py \
    tests/priors/test_memorized_triton.py tests/posterior_samplers/test_dps_step.py \
    tests/posterior_samplers/test_chain_noise.py
fi
if wants dps; then
  stamp "dps overhead (memorized prior, GPU, eager, compiled and graph step)"
  limited 180 "$RUN/dps.log" python3 -m benchmarks --device cuda --cases dps --dps-physics placeholder \
    --dps-priors memorized --dps-steps eager,compiled,graph --out "$RUN/dps_overhead_gpu.json"
fi
if wants dask; then
  stamp dask
  limited 240 "$RUN/dask.log" python3 -m benchmarks.gpu_dask --workers 1 2 4 8 "$W" --repeats 2 --out "$RUN/dask.json"
fi
if wants memorized; then
  stamp memorized
  limited 300 "$RUN/memorized.log" python3 -m benchmarks.gpu_memorized --sizes 1000000 --out "$RUN/memorized.json"
fi
if wants sweep; then
  stamp "sweep n50_w32 (background, GPU 0)"
  CUDA_VISIBLE_DEVICES=0 setsid nohup bash scripts/gpu/sweep_50k_driver.sh runs/sweep50k data/configs/sweep_50k.toml \
    n50_w32 > runs/sweep50k.driver.log 2>&1 < /dev/null &
fi
COMPARE_GPU=$(( NGPU > 1 ? 1 : 0 ))
compare_one() {  # compare_one PRIOR: one learned prior against its memorized twin
  local name
  name=$(basename "$1")
  stamp "compare $1"
  export CUDA_VISIBLE_DEVICES=$COMPARE_GPU
  limited 1800 "$RUN/compare_$name.log" python3 -m geomem.cli --verbose compare \
    -c data/configs/compare_gpu.toml "priors=[\"$1\"]" "workers=$W" "${COMPARE_SET[@]}" --out "$RUN/compare_$name"
  stamp "compare $1 done"
}
if ! wants compare; then
  :
elif [ "${COMPARE_CONCURRENT:-0}" = 1 ]; then
  for p in "${PRIORS[@]}"; do compare_one "$p" & done
  wait
elif [ "$NGPU" -gt 1 ] && [ "$CORES" -ge 32 ]; then
  for (( i = 0; i < ${#PRIORS[@]}; i += 2 )); do
    compare_one "${PRIORS[$i]}" &
    [ $(( i + 1 )) -lt ${#PRIORS[@]} ] && compare_one "${PRIORS[$(( i + 1 ))]}" &
    wait
  done
else
  for p in "${PRIORS[@]}"; do compare_one "$p"; done
fi
stamp "driver done (the sweep may still run: runs/sweep50k.driver.log)"
touch "$RUN/driver.done"
