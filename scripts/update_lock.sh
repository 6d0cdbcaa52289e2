#!/usr/bin/env bash
# Re-make requirements.lock from pyproject.toml's ranges: a fresh Python 3.11 venv, the project
# installed with its dev extras, then pip freeze. Review the diff and commit it; README, CI and
# every run's metadata.json (lockfile_sha256) follow the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
python3.11 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -e ".[dev]"
{
  echo "# Exact versions for the README set-up and CI (Python 3.11, Linux x86_64)."
  echo "# Made by scripts/update_lock.sh: pip install -e '.[dev]' in a fresh venv, then pip freeze."
  echo "# torch is PyPI's default Linux build (CUDA); it runs on CPU-only machines too."
  "$venv/bin/pip" freeze --exclude-editable
} > requirements.lock
rm -rf "$(dirname "$venv")"
echo "requirements.lock updated; review with: git diff requirements.lock"
