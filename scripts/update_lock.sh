#!/usr/bin/env bash
# Re-make uv.lock from pyproject.toml: one resolution for every platform and Python the project
# supports, with the hashes of every file. Without arguments, versions the ranges still allow
# stay as they are and only what pyproject.toml's changes need moves; `--upgrade` moves every
# package to its newest allowed version, `--upgrade-package torch` one package. Review the diff
# (git diff uv.lock), run scripts/setup.sh, commit both files.
set -euo pipefail
exec "$(dirname "$0")/uv" lock "$@"
