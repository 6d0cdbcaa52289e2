"""A non-editable install (the image's) carries conf/: the wheel, built as an installer builds
it, holds every config file, and `python -m src.train` composes from it away from the clone."""

import os
import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_wheel_carries_conf_and_trains_from_site_packages(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project)
    for name in ("src", "conf"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    # setuptools' own build hook in this environment (the lock holds setuptools: torch needs
    # it), so nothing is downloaded
    build = "import setuptools.build_meta as b, sys; b.build_wheel(sys.argv[1])"
    subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=project,
                   check=True, capture_output=True)
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("normlr-*.whl")))
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert configs and configs <= set(wheel.namelist())

    site, cwd = tmp_path / "site", tmp_path / "elsewhere"
    wheel.extractall(site)
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the clone's editable install
    where = subprocess.run([sys.executable, "-c", "import src; print(src.__file__)"], cwd=cwd,
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    job = subprocess.run([sys.executable, "-m", "src.train", "+experiment=exp_lr", "--cfg", "job"],
                         cwd=cwd, env=env, capture_output=True, text=True)
    assert job.returncode == 0, job.stderr
    assert "name: exp_lr" in job.stdout
