"""Grids through Hydra's launchers on this machine: submitit_local and joblib run the jobs as
processes of their own, each with its own folder."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_submitit_local_multirun(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", "hydra/launcher=submitit_local", "logger=none",
         "dataset=synthetic", "trainer.max_steps=2", "seed=0,1", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = sorted(tmp_path.glob("*/summary.json"))
    assert [p.parent.name for p in summaries] == [
        "dataset=synthetic,seed=0,trainer.max_steps=2",
        "dataset=synthetic,seed=1,trainer.max_steps=2"]
    for path in summaries:
        summary = json.loads(path.read_text())
        assert summary["status"] == "completed" and summary["steps"] == 2
        assert (path.parent / "metadata.json").exists()


def test_joblib_runs_a_grid_concurrently(tmp_path):
    """Small runs do not fill a GPU: hydra/launcher=joblib runs n_jobs of them at once."""
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "logger=none", "dataset=synthetic", "trainer.max_steps=2",
         "seed=0,1", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"grid {tmp_path}: 2 completed" in result.stdout
    pids = {json.loads(p.read_text())["pid"] for p in tmp_path.glob("*/metadata.json")}
    assert len(pids) == 2  # one job in each of the two worker processes
