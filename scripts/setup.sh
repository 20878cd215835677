#!/usr/bin/env bash
# Create .venv (if missing) and install geomem with its test tools. Idempotent.
# torch is installed first and pinned (torch==2.13.0): on the development machines that is a local CPU
# wheel; installing anything that depends on torch before it would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
