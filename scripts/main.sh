#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the embedded default: `geomem compare`, which writes
# runs/compare/report.html. Extra arguments go to `geomem compare` (e.g. workers=2 chains=4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OMP_NUM_THREADS=1 .venv/bin/geomem compare --out runs/compare "$@"
