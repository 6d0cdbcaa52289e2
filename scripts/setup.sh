#!/usr/bin/env bash
# The one set-up (README, CI): .venv holds exactly uv.lock's packages (runtime, the dev group,
# every optional extra) and the package itself, editable. `--locked` refuses a uv.lock that no
# longer matches pyproject.toml, before anything is downloaded.
set -euo pipefail
exec "$(dirname "$0")/uv" sync --locked --all-extras
