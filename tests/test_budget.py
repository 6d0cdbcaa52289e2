"""Budgets by intrinsic time: the arithmetic (exact, in fractions), and budget=mini applied to
the experiments' configs."""

import itertools
import math
from fractions import Fraction as F

import pytest
from omegaconf import OmegaConf

from src.config.budget import apply_budget
from src.config.prepare import prepare
from src.config.resolvers import compose_config
from src.errors import UserError
from src.theory.budget import (
    intrinsic_time,
    largest_factor,
    mapped_lengths,
    phases_kept,
    to_updates,
)
from src.theory.explr import NoRealAlpha, alpha_star
from tests.conftest import EXPERIMENTS

LR, WD, MOMENTUM = F(1, 10), F(5, 10_000), 0.9   # paper A's setting
PAPER_STEPS = 391                                 # CIFAR-10's 50,000 images at batch 128


# --- the arithmetic -------------------------------------------------------------------------

def test_to_updates_rounds_to_the_nearest_whole_update():
    assert to_updates(62_560, 25) == 2502          # 2502.4
    assert to_updates(F(18_768, 10), 1) == 1877    # 1876.8
    assert to_updates(5, 2) == 3 and to_updates(7, 2) == 4   # halves up, never to even
    assert to_updates(62_560, 1) == 62_560


@pytest.mark.parametrize("k", [1, 2, 8, 10, 17, 25, 40, 52, F(51, 2)])
def test_intrinsic_time_and_phases_are_the_papers(k):
    """ηλT of the run and of each phase: the paper's, to within the rounding of each length to
    a whole update (half an update of the mapped run, ηkλ/2, at each end)."""
    epochs, milestones = 300, [80, 120]
    total, mapped = mapped_lengths(epochs, milestones, PAPER_STEPS, k)
    assert phases_kept(epochs, milestones, total, mapped)
    bounds = [0, *mapped, total]
    paper = [0, *(m * PAPER_STEPS for m in milestones), epochs * PAPER_STEPS]
    half = intrinsic_time(LR, WD * k, F(1, 2))
    for end, paper_end in zip(bounds, paper, strict=True):
        assert abs(intrinsic_time(LR, WD * k, end) - intrinsic_time(LR, WD, paper_end)) <= half
    for i in range(1, len(bounds)):  # each phase: two ends rounded
        mini = intrinsic_time(LR, WD * k, bounds[i] - bounds[i - 1])
        assert abs(mini - intrinsic_time(LR, WD, paper[i] - paper[i - 1])) <= 2 * half


def test_lengths_that_k_divides_keep_intrinsic_time_exactly():
    total, mapped = mapped_lengths(300, [80, 120], PAPER_STEPS, 20)   # 117300 / 20 = 5865
    assert (total, mapped) == (5865, [1564, 2346])
    assert intrinsic_time(LR, WD * 20, total) == intrinsic_time(LR, WD, 300 * PAPER_STEPS)
    assert intrinsic_time(LR, WD * 20, total) == F(117_300, 20_000)   # 5.865 exactly
    # in float64 too, up to the rounding of the products
    assert intrinsic_time(0.1, 5e-4 * 20, total) == pytest.approx(5.865, rel=1e-15)


def test_existence_bound_is_the_alpha_condition():
    k = largest_factor(0.1, 5e-4, MOMENTUM)
    assert k == pytest.approx((1 - math.sqrt(0.9)) ** 2 / 5e-5, rel=1e-15)
    assert math.floor(k) == 52   # the k <= 52
    alpha_star(0.1, 5e-4 * k * (1 - 1e-12), MOMENTUM)   # exists just below the bound
    with pytest.raises(NoRealAlpha):
        alpha_star(0.1, 5e-4 * k * (1 + 1e-12), MOMENTUM)
    assert largest_factor(0.1, 0.0, MOMENTUM) == math.inf
    assert largest_factor(1.6, 5e-4, 0.0) == pytest.approx(1 / 8e-4, rel=1e-15)


def test_a_phase_lost_to_rounding_is_seen():
    assert phases_kept(100, [30, 70], 10, [3, 7]) and phases_kept(100, [], 1, [])
    assert not phases_kept(100, [50, 51], 10, [5, 5])      # two milestones on one update
    assert not phases_kept(100, [1, 50], 10, [0, 5])       # the first phase gone
    assert not phases_kept(100, [30, 99], 10, [3, 10])     # the last phase gone
    assert not phases_kept(100, [], 0, [])
    # milestones after the run's end stay after it, as in a paper config that has them
    assert phases_kept(1, [80, 120], 16, [1251, 1877])
    assert not phases_kept(100, [30, 101], 10, [3, 9])     # a phase gained
    assert mapped_lengths(2, [1], PAPER_STEPS, 1000) == (1, [0])


# --- budget=mini on the configs ----------------------------------------------------------

def mini(*overrides):
    """budget=mini's config as a run gets it: checked, mapped, resolved."""
    return prepare(compose_config(["logger=none", *overrides, "budget=mini"]))


def digits_steps(batch_size: int) -> int:
    return math.ceil(1437 / batch_size)   # tests/test_data.py: 1437 training digits


def check_mapped(cfg, paper_wd, paper_epochs, milestones, images):
    b = cfg.budget
    k, per_epoch = b.k, math.ceil(images / cfg.trainer.batch_size)
    assert cfg.optimizer.weight_decay == paper_wd * k
    assert cfg.optimizer.rest_weight_decay == cfg.optimizer.weight_decay
    horizon = min(paper_epochs, b.paper_epochs or math.inf)
    assert cfg.trainer.max_steps == to_updates(horizon * PAPER_STEPS, k)
    assert cfg.trainer.epochs == math.ceil(cfg.trainer.max_steps / per_epoch)
    if milestones:
        # src/optim/schedules.py rounds epoch x steps per epoch: the mapped updates exactly
        assert [round(m * per_epoch) for m in cfg.schedule.milestones] == [
            to_updates(m * PAPER_STEPS, k) for m in milestones]
    prepare(cfg)


def test_exp_lr_on_digits():
    cfg = mini("+experiment=exp_lr", "dataset=digits")
    assert cfg.budget.paper == {"weight_decay": 5e-4, "epochs": 160, "max_steps": None,
                                "batch_size": 128}
    assert cfg.trainer.batch_size == cfg.budget.batch_size
    check_mapped(cfg, 5e-4, 160, [], 1437)
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9   # η and γ stay


@pytest.mark.parametrize("experiment", ["texp", "step_decay", "fig_texp_vs_step"])
def test_step_and_texp_milestones(experiment):
    cfg = mini(f"+experiment={experiment}", "dataset=digits")
    assert cfg.budget.paper.milestones == [80, 120]
    check_mapped(cfg, 5e-4, 300, [80, 120], 1437)


def test_fig_auto_rate_has_no_weight_decay_to_map():
    """SGD runs 400 of the paper's epochs (conf/auto_rate/sgd.yaml), 4x the other curves."""
    cfg = mini("+experiment=fig_auto_rate", "dataset=digits")
    assert cfg.optimizer.weight_decay == 0.0
    check_mapped(cfg, 0.0, 400, [], 1437)
    for other in ("projected", "no_norm"):
        check_mapped(mini("+experiment=fig_auto_rate", f"auto_rate={other}", "dataset=digits"),
                     0.0, 100, [], 1437)


def test_cifar10_mini_is_a_short_cifar_run():
    cfg = mini("+experiment=texp", "dataset=cifar10")
    check_mapped(cfg, 5e-4, 300, [80, 120], 50_000)
    assert cfg.dataset.name == "cifar10" and cfg.model.name == "preresnet32"


def test_applying_again_or_relaunching_maps_the_same():
    cfg = mini("+experiment=fig_texp_vs_step", "dataset=digits")
    once = OmegaConf.to_container(cfg)
    prepare(cfg)
    assert OmegaConf.to_container(cfg) == once
    again = mini("+experiment=fig_texp_vs_step", "dataset=digits")
    assert OmegaConf.to_container(again) == once


@pytest.mark.parametrize("norm, size", [("bn", 8), ("ln", 8), ("gn", 8), ("in", 16)])
def test_fig_norms_runs_in_on_the_digits_at_16x16(norm, size):
    """budget.digits_size (conf/normalisation/): the digits' side and their crop padding (one
    pixel of the 8x8 digit) in the mini run, the same when applied again; other datasets and
    budget=paper keep their images."""
    cfg = mini("+experiment=fig_norms", f"normalisation={norm}", "dataset=digits")
    assert cfg.model.norm == norm
    assert (cfg.dataset.image_size, cfg.dataset.crop_padding) == (size, size // 8)
    once = OmegaConf.to_container(cfg)
    prepare(cfg)
    assert OmegaConf.to_container(cfg) == once
    other = mini("+experiment=fig_norms", f"normalisation={norm}", "dataset=synthetic")
    assert other.dataset.image_size == 32
    paper = prepare(compose_config(["+experiment=fig_norms", f"normalisation={norm}",
                                    "dataset=digits"]))
    assert (paper.dataset.image_size, paper.dataset.crop_padding) == (8, 1)


def test_the_command_lines_max_steps_still_stops_the_run():
    cfg = mini("+experiment=exp_lr", "dataset=digits", "trainer.max_steps=2")
    assert cfg.trainer.max_steps == 2 and cfg.trainer.epochs == 1
    assert cfg.budget.paper.max_steps == 2


def test_paper_budget_and_the_toy_are_left_as_they_are():
    for overrides in (["+experiment=texp"], ["+experiment=fig_toy"]):
        cfg = compose_config(["logger=none", *overrides])
        before = OmegaConf.to_container(cfg)
        apply_budget(cfg)
        assert cfg.budget.name == "paper" and OmegaConf.to_container(cfg) == before
    toy = mini("+experiment=toy_wd_bn")
    assert "paper" not in toy.budget and toy.toy.steps == 200_000


@pytest.mark.parametrize("overrides, words", [
    (["budget.k=60"], "budget.k=60: optimizer.lr x budget.k x optimizer.weight_decay = 0.1 x 60 "
                      "x 0.0005 = 0.003 must be at most (1 - sqrt(optimizer.momentum))^2 = "
                      "0.0026334 for the exponential LR to exist: use budget.k <= 52.66"),
    (["budget.k=0.5"], "budget.k=0.5 is not allowed: use a number >= 1"),
    (["budget.batch_size=0"], "budget.batch_size=0 is not allowed: use null or an integer >= 1"),
    (["budget.paper_epochs=-1"], "budget.paper_epochs=-1 is not allowed"),
    (["budget.steps_per_epoch=0"], "budget.steps_per_epoch=0 is not allowed"),
    (["dataset=imagenet"], "budget=mini with dataset=imagenet: the number of training images"),
])
def test_bad_budgets_are_one_clear_error(overrides, words):
    with pytest.raises(UserError) as error:
        mini("+experiment=exp_lr", *overrides)
    assert words in str(error.value)


def test_a_phase_lost_to_rounding_is_refused():
    with pytest.raises(UserError, match=r"budget.k=1000: .* a phase of less than one update"):
        mini("+experiment=fig_equilibrium", "optimizer.lr=0.4", "dataset=digits",
             "trainer.epochs=2", "schedule.milestones=[1]", "budget.k=1000")


@pytest.mark.parametrize("overrides, launcher, n_jobs", [
    (["budget=mini"], "JoblibLauncher", 2),
    (["budget=mini", "hydra.launcher.n_jobs=4"], "JoblibLauncher", 4),
    (["budget=mini", "hydra/launcher=basic"], "BasicLauncher", None),
    (["budget=paper"], "BasicLauncher", None),
])
def test_mini_grids_run_two_jobs_at_once(overrides, launcher, n_jobs):
    cfg = compose_config(["+experiment=fig_cosine", "dataset=digits", *overrides],
                         hydra=True).hydra
    assert cfg.launcher._target_.endswith(launcher)
    assert cfg.launcher.get("n_jobs") == n_jobs


def sweep(overrides) -> list[list[str]]:
    """Each job's overrides of a figure grid: its sweeper's values, one seed."""
    params = OmegaConf.to_container(compose_config(overrides, hydra=True).hydra.sweeper.params,
                                    resolve=True)
    params["seed"] = str(params.get("seed", 0)).split(",")[0]
    values = [[f"{key}={v}" for v in str(choices).split(",")] for key, choices in params.items()]
    return [list(job) for job in itertools.product(*values)]


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.startswith("fig_")])
def test_every_figure_grid_composes_and_maps_with_mini(experiment):
    """Every job of every grid: budget=mini composes, maps and passes the checks."""
    overrides = ["logger=none", f"+experiment={experiment}", "dataset=digits", "budget=mini"]
    for job in sweep(overrides):
        cfg = compose_config([*overrides, *job])
        apply_budget(cfg)
        prepare(cfg)
        if cfg.task == "train":
            assert cfg.trainer.max_steps < cfg.budget.paper.epochs * PAPER_STEPS
            assert cfg.optimizer.weight_decay == cfg.budget.paper.weight_decay * cfg.budget.k


def test_cifar10_mini_runs_on_files_in_the_real_format(tmp_path, monkeypatch):
    """budget=mini on CIFAR-10 (our stand-in files): the mapped run starts and steps."""
    from tests.helpers.data import write_cifar10
    from tests.helpers.runs import train

    write_cifar10(tmp_path / "data", n_train=40, n_test=10)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    cfg = compose_config(["logger=none", "trainer.device=cpu", "+experiment=texp",
                          "dataset=cifar10", f"dataset.root={tmp_path / 'data'}",
                          "dataset.download=false", "budget=mini", "trainer.max_steps=2"])
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 2
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.optimizer.weight_decay == 5e-4 * saved.budget.k
    assert saved.budget.paper.weight_decay == 5e-4 and saved.trainer.max_steps == 2
