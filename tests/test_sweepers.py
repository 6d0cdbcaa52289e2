"""The value a job hands to Hydra's sweeper: a float for every job, NaN for the failed and the
diverged, so that an Optuna (Nevergrad, Ax) search goes on and never picks a diverged run."""

import math
import runpy
import sys

import pytest
from omegaconf import OmegaConf

from src.tracking.run_format import read_summary
from src.train import objective
from tests.conftest import TINY


@pytest.mark.parametrize("summary, value", [
    ({"status": "completed", "test/acc": 0.75}, 0.75),
    ({"status": "diverged", "test/acc": 0.9}, math.nan),  # its accuracy is from before
    ({"status": "failed", "error": "x"}, math.nan),
    ({"status": "completed", "steps": 0}, math.nan),  # no evaluation (toy example)
])
def test_every_job_returns_a_float(summary, value):
    assert objective(summary) == pytest.approx(value, nan_ok=True)


@pytest.mark.filterwarnings("ignore:'src.train' found in sys.modules")
def test_optuna_lr_search_goes_on_past_a_diverged_trial(monkeypatch, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    monkeypatch.setattr(sys, "argv", [
        "src/train.py", "-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler.seed=0", f"hydra.sweep.dir={tmp_path}",
        *TINY, "+auto_rate=no_norm", "model=preresnet20", "dataset.image_size=8",
        "dataset.crop_padding=1", "trainer.batch_size=64", "trainer.max_steps=2",
        "optimizer.lr=choice(0.01, 1e6)"])  # without normalisation 1e6 diverges at once
    runpy.run_module("src.train", run_name="__main__")
    statuses = {}
    for folder in tmp_path.glob("*lr=*"):
        summary = read_summary(folder)
        statuses.setdefault(summary["status"], []).append(summary)
    assert len(statuses.get("diverged", [])) >= 1 and len(statuses.get("completed", [])) >= 1
    result = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert result.best_params["optimizer.lr"] == 0.01
    assert result.best_value == statuses["completed"][0]["test/acc"]
