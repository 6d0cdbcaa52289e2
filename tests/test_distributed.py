"""DDP through torchrun on CPU (gloo): the global batch is split between the processes, and
only rank 0 writes records."""

import json
import os
import subprocess
import sys

import pytest

from src.tracking.records import read_metrics
from tests.conftest import ROOT

# GroupNorm: no batch statistics, so 2 processes of 16 images compute the same update as 1 of 32.
RUN = ["logger=none", "dataset=synthetic", "trainer.device=cpu", "trainer.epochs=2",
       "trainer.batch_size=32", "trainer.max_steps=12", "trainer.log_every_n_steps=1",
       "model=preresnet20", "model.norm=gn", "trainer.precision=fp64"]


def run(command, run_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *command, *RUN, f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_metrics(run_dir)


def test_torchrun_two_processes_match_one_and_log_once(tmp_path):
    two = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "src.train"], tmp_path / "two")
    one = run(["-m", "src.train"], tmp_path / "one")
    steps = [r["step"] for r in two if "train/loss" in r]
    assert steps == list(range(12))  # written once, by rank 0
    assert len([r for r in two if "test/acc" in r]) == 2
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 12
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys()
        for key in ("train/loss", "train/epoch_loss", "test/loss", "si/weight_norm"):
            if key in a:
                # Same math, another order of summation (gradients averaged over processes):
                # round-off, amplified over 12 updates, stays far below this.
                assert b[key] == pytest.approx(a[key], rel=1e-9), (a["step"], key)
