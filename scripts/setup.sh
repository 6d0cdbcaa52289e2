#!/usr/bin/env bash
# The one set-up (README, CI): .venv holds exactly uv.lock's packages (runtime, the dev group,
# every optional extra) and the package itself, editable. `--locked` refuses a uv.lock that no
# longer matches pyproject.toml, before anything is downloaded. --compile-bytecode: uv does not
# compile the packages' .pyc files as pip does, and without them (or where
# PYTHONDONTWRITEBYTECODE is set) every process compiles torch's sources again, ~17 s a start.
set -euo pipefail
exec "$(dirname "$0")/uv" sync --locked --all-extras --compile-bytecode
