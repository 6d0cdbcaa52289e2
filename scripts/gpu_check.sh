#!/usr/bin/env bash
# The GPU acceptance check (src/bench/gpu.py): one JSON file, under 8 minutes on one GPU.
#   scripts/gpu_check.sh [--device cuda|cpu] [--out FILE] [--parts bench,verify,...]
# --device cpu runs what a CPU can and says what it skipped. Exit status 0: every part passed.
set -euo pipefail
cd "$(dirname "$0")/.."
# cuBLAS reads this when it starts; deterministic runs need it.
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
exec "$PYTHON" -m src.bench --suite gpu "$@"
