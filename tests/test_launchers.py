"""Grids through Hydra's launchers on this machine: submitit_local and joblib run the jobs as
processes of their own, each with its own folder."""

import json
import subprocess
import sys

from src.config.resolvers import compose_config
from tests.conftest import ROOT, tiny


def test_submitit_local_multirun(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", "hydra/launcher=submitit_local",
         *tiny("trainer.max_steps=2", "seed=0,1", f"hydra.sweep.dir={tmp_path}")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = sorted(tmp_path.glob("*/summary.json"))
    # one folder a job, named by its overrides
    assert [p.parent.name.split(",seed=")[1].split(",")[0] for p in summaries] == ["0", "1"]
    for path in summaries:
        summary = json.loads(path.read_text())
        assert summary["status"] == "completed" and summary["steps"] == 2
        assert (path.parent / "metadata.json").exists()


def test_joblib_runs_a_grid_concurrently(tmp_path):
    """Small runs do not fill a GPU: hydra/launcher=joblib runs n_jobs of them at once."""
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2",
         *tiny("trainer.max_steps=2", "seed=0,1", f"hydra.sweep.dir={tmp_path}")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"grid {tmp_path}: 2 completed" in result.stdout
    pids = {json.loads(p.read_text())["pid"] for p in tmp_path.glob("*/metadata.json")}
    assert len(pids) == 2  # one job in each of the two worker processes


def test_submitit_job_of_two_tasks_trains_as_one_ddp_run(tmp_path):
    """tasks_per_node=2: submitit's environment (ranks, master address) makes one run of two
    processes; rank 0 writes the folder, which the other would have been refused."""
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "-m", "hydra/launcher=submitit_local",
         "hydra.launcher.tasks_per_node=2", "logger=none", "dataset=synthetic",
         "trainer.device=cpu", "model=preresnet20", "dataset.image_size=8",
         "dataset.crop_padding=1", "trainer.batch_size=64", "trainer.max_steps=2", "seed=0",
         f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (folder,) = (p.parent for p in tmp_path.glob("*/summary.json"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert "2 processes" in (folder / "train.log").read_text()


def test_slurm_launcher_presets_compose():
    for preset, gpus in (("slurm_1gpu", 1), ("slurm_8gpus", 8)):
        launcher = compose_config([f"hydra/launcher={preset}"], hydra=True).hydra.launcher
        assert launcher._target_.endswith("SlurmLauncher")
        assert launcher.gpus_per_node == launcher.tasks_per_node == gpus
