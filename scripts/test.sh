#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite with serial Devito and one thread per process.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 DEVITO_LANGUAGE=C DEVITO_LOGGING=WARNING MPLBACKEND=Agg
set +e
.venv/bin/python -m pytest -q -m "not slow" "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is not a pass
if [ "$rc" -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$rc"
