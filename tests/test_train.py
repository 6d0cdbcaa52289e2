"""The Hydra entry end to end: every experiment, the records, W&B offline, real exits."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.config.resolvers import compose_config
from src.tracking.run_format import read_metrics
from tests.conftest import EXPERIMENTS, ROOT, write_image_folder
from tests.helpers.runs import train


def test_experiments_exist():
    assert {"exp_lr", "step_decay", "texp", "toy_wd_bn"} <= set(EXPERIMENTS)


# how to make each kind of experiment take two steps
TWO_STEPS = {"toy_wd_bn": ["toy.steps=2", "toy.log_every=1"]}


# The fig_* grids run as grids in tests/test_figures.py, the imagenet ones end to end below.
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS
                                        if not e.startswith(("fig_", "imagenet_"))])
def test_every_experiment_runs_two_steps(experiment, tiny_cfg, tmp_path):
    two_steps = TWO_STEPS.get(experiment, ["trainer.max_steps=2", "trainer.log_every_n_steps=1"])
    cfg = tiny_cfg(f"+experiment={experiment}", *two_steps)
    assert cfg.dataset.name == "synthetic"  # command-line groups win over the experiment's
    summary = train(cfg, tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert len(read_metrics(tmp_path)) >= 2


@pytest.mark.parametrize("experiment", ["imagenet_step_decay", "imagenet_texp"])
def test_imagenet_experiments_end_to_end(experiment, tmp_path):
    """timm ResNet-50 on a tiny ImageFolder, across an LR milestone (epoch 1 of 2)."""
    root = write_image_folder(tmp_path / "imagenet", per_class=4)
    cfg = compose_config([f"+experiment={experiment}", "logger=none", "trainer.device=cpu",
                          f"dataset.root={root}", "dataset.image_size=32",
                          "dataset.num_workers=0", "trainer.batch_size=4", "trainer.epochs=2",
                          "schedule.milestones=[1]", "trainer.log_every_n_steps=1"])
    assert cfg.model.name == "resnet50" and cfg.optimizer.weight_decay == 1e-4
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 4
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run") if "lr" in r]
    if experiment == "imagenet_step_decay":
        assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01], rel=1e-12)
    else:  # grows inside each phase, divided by about 10 at the milestone
        assert lrs[1] > lrs[0] and lrs[3] > lrs[2] and 0.05 < lrs[2] / lrs[1] < 0.2


def test_records(tiny_cfg, tmp_path):
    summary = train(tiny_cfg("trainer.epochs=2", "trainer.log_every_n_steps=4"), tmp_path)
    records = read_metrics(tmp_path)
    assert all("step" in r and "epoch" in r for r in records)
    train_records = [r for r in records if "train/loss" in r]
    evals = [r for r in records if "test/acc" in r]
    assert [r["step"] for r in train_records] == [0, 4, 8, 12, 16, 20, 24, 28]  # 16 steps/epoch
    for r in train_records:
        assert {"train/acc", "lr", "si/weight_norm", "si/effective_lr"} <= set(r)
        assert r["si/effective_lr"] == pytest.approx(r["lr"] / r["si/weight_norm"] ** 2, rel=1e-12)
        assert 0 <= r["train/acc"] <= 1
    assert [(r["step"], r["epoch"]) for r in evals] == [(16, 1.0), (32, 2.0)]
    assert all(0 <= r["test/acc"] <= 1 and 0 <= r["train/epoch_acc"] <= 1 for r in evals)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == pytest.approx(summary) and on_disk["status"] == "completed"
    assert on_disk["test/acc"] == evals[-1]["test/acc"]


def test_evaluation_every_n_epochs_and_at_the_last(tiny_cfg, tmp_path):
    """16 updates of 16 images an epoch; the run stops inside epoch 5, its last."""
    summary = train(tiny_cfg("trainer.epochs=9", "trainer.eval_every_n_epochs=2",
                             "trainer.max_steps=70"), tmp_path)
    records = [r for r in read_metrics(tmp_path) if "train/epoch_loss" in r]
    assert [r["step"] for r in records] == [16, 32, 48, 64, 70]
    assert [r["step"] for r in records if "test/acc" in r] == [32, 64, 70]
    assert summary["test/acc"] == records[-1]["test/acc"] and summary["steps"] == 70


def test_exp_lr_logs_the_theorem_lr_at_every_step(tiny_cfg, tmp_path):
    train(tiny_cfg("+experiment=exp_lr", "trainer.epochs=3", "trainer.max_steps=40",
                   "trainer.log_every_n_steps=1"),
          tmp_path)
    # alpha from numpy's polynomial roots, independently of src.theory
    alpha = max(np.roots([1.0, -(1 + 0.9 - 0.1 * 5e-4), 0.9]).real)
    logged = [(r["step"], r["lr"]) for r in read_metrics(tmp_path) if "lr" in r]
    assert [t for t, _ in logged] == list(range(40))
    for t, lr in logged:
        assert lr == pytest.approx(0.1 * alpha ** (-2 * t - 1), rel=1e-9)


def test_bf16_autocast_runs(tiny_cfg, tmp_path):
    summary = train(tiny_cfg("trainer.precision=bf16", "trainer.max_steps=2"), tmp_path)
    assert summary["status"] == "completed"


def test_wandb_offline_run_is_written(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    train(tiny_cfg("logger=wandb", "trainer.max_steps=3", "trainer.log_every_n_steps=1"), tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_wandb_failure_never_stops_training(tiny_cfg, tmp_path, monkeypatch):
    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("no W&B today")

    monkeypatch.setattr(wandb, "init", broken)
    summary = train(tiny_cfg("logger=wandb", "trainer.max_steps=3"), tmp_path)
    assert summary["status"] == "completed" and read_metrics(tmp_path)


def run_cli(*args, run_dir):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "src.train", "logger=none", f"hydra.run.dir={run_dir}", *args],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


# The full table of bad input runs in-process (tests/test_bad_input.py); these two run as real
# processes: one refused by Hydra, one by our checks.
@pytest.mark.parametrize("args, words", [
    (["no_such_option=1"], "no_such_option"),
    (["+experiment=exp_lr", "dataset=digits", "optimizer.weight_decay=0.05"],
     "(1 - sqrt(momentum))^2"),
])
def test_cli_errors_are_one_clear_message(args, words, tmp_path):
    result = run_cli(*args, run_dir=tmp_path / "run")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert words in output
    assert "Traceback" not in output
    assert not (tmp_path / "run" / "summary.json").exists()


README_MAIN_JOB = "python -m src.train +experiment=exp_lr dataset=digits budget=mini"
GROWTH = 1e10   # the bar for the main job: LR and ||w||^2 of the tracked layer


@pytest.mark.slow
def test_main_job_on_digits(tmp_path):
    """The README's main job, word for word: Figure 1 in miniature on the digits."""
    assert f"\n{README_MAIN_JOB}\n" in (ROOT / "README.md").read_text()
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    _, *args = README_MAIN_JOB.split()
    result = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "exp_lr").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    # at this intrinsic LR the test accuracy swings by up to 0.07 between epochs (0.89-0.96)
    assert summary["status"] == "completed" and summary["test/acc"] >= 0.85
    assert list((run_dir / "wandb").glob("offline-run-*"))
    command = json.loads((run_dir / "metadata.json").read_text())["command"]
    assert command.endswith(README_MAIN_JOB.removeprefix("python"))
    records = read_metrics(run_dir)
    for key in ("lr", "si/stages.0.1.conv1.weight/weight_norm_sq"):
        values = [r[key] for r in records if key in r]
        assert values[-1] / values[0] >= GROWTH, key


def test_fast_mode_switches_run(tiny_cfg, tmp_path):
    """channels_last and a compiled forward (aot_eager: the graph capture of torch.compile,
    without inductor's slow CPU code generation) with bf16 autocast."""
    cfg = tiny_cfg("model=preresnet20", "trainer.max_steps=2", "trainer.precision=bf16",
                   "trainer.channels_last=true", "trainer.compile=aot_eager")
    summary = train(cfg, tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 2


# 4 updates an epoch of a small net on 8x8 images: seconds
SMALL = ["model=preresnet20", "dataset.image_size=8", "dataset.crop_padding=1",
         "trainer.batch_size=64"]


def test_one_log_line_per_epoch_without_a_terminal(tiny_cfg, tmp_path, caplog):
    """Under SLURM, Docker or joblib there is no terminal and no bar: the log says how far."""
    caplog.set_level("INFO", logger="src.engine.loop")
    train(tiny_cfg(*SMALL, "trainer.epochs=2", "trainer.log_every_n_steps=2"), tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "src.engine.loop"]
    assert len(lines) == 2, lines
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/2, step {4 * epoch}/8, loss "), line
        for words in ("test/acc 0.", ", lr 0.1, effective lr ", " images/s, ETA 0:00:"):
            assert words in line, line


@pytest.mark.parametrize("environment, command_line, written", [
    ("disabled", [], False),                        # WANDB_MODE: the default
    ("disabled", ["logger.mode=offline"], True),    # the command line wins
    ("offline", ["logger.mode=disabled"], False),
])
def test_logger_mode_beats_wandb_mode(environment, command_line, written, tiny_cfg, tmp_path,
                                      monkeypatch):
    monkeypatch.setenv("WANDB_MODE", environment)
    cfg = tiny_cfg(*SMALL, "logger=wandb", "trainer.max_steps=1", *command_line)
    train(cfg, tmp_path)
    assert bool(list((tmp_path / "wandb").glob("offline-run-*"))) == written
    assert OmegaConf.load(tmp_path / "config.yaml").logger.mode == (
        command_line[0].split("=")[1] if command_line else environment)


def test_help_lists_the_experiments_and_answers_fast(tmp_path):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "src.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode == 0 and "Traceback" not in result.stderr
    for name in EXPERIMENTS:
        assert f"\n  {name} " in result.stdout
    assert "recipe:" not in result.stdout and "auto_rate:" not in result.stdout  # internal
    assert seconds < 10, seconds  # 2.5 s on 2 cores; a module importing torch first takes 14
    modules = subprocess.run([sys.executable, "-c", "import sys, src.train; print("
                              "sorted({'torch', 'timm', 'torchvision'} & set(sys.modules)))"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert modules.stdout.strip() == "[]", modules.stderr
