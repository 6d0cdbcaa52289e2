"""optimizer=adamw and optimizer=lion through the real training path: every schedule trains,
the exact twins get their per-update betas from the table, the overflow guard is exact in
float64 with their scalings, budget=mini maps them, and what they cannot do is refused."""

import logging
import re

import numpy as np
import pytest
import torch

from src.config.prepare import prepare
from src.engine.build import build
from src.engine.step import TrainStep
from src.errors import UserError
from src.theory.adaptive import adamw_twin, lion_twin
from src.theory.equilibrium import predicted_angle
from src.tracking.run_format import read_metrics
from tests.helpers.runs import train

SMALL = ["model=preresnet20", "dataset.num_train=64", "trainer.log_every_n_steps=1",
         "trainer.renormalize_every_n_steps=1"]


@pytest.mark.parametrize("optimizer, schedule", [("adamw", "constant"), ("adamw", "texp"),
                                                 ("lion", "exp"), ("lion", "equivalent")])
def test_every_schedule_trains(tiny_cfg, tmp_path, optimizer, schedule):
    summary = train(tiny_cfg(*SMALL, f"optimizer={optimizer}", f"schedule={schedule}",
                             "schedule.milestones=[0.5]" if schedule == "texp" else "seed=0",
                             "trainer.max_steps=3"), tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 3
    records = [r for r in read_metrics(tmp_path) if "train/loss" in r]
    assert len(records) == 3 and all(np.isfinite(r["si/angular_update"]) for r in records)


@pytest.mark.parametrize("optimizer, twin", [("adamw", adamw_twin), ("lion", lion_twin)])
def test_the_exact_twin_sets_the_theorys_values_every_update(tiny_cfg, optimizer, twin):
    cfg = prepare(tiny_cfg(*SMALL, f"optimizer={optimizer}", "schedule=exp",
                           "trainer.precision=fp64", "trainer.max_steps=4"))
    data, model, opt, scheduler = build(cfg, torch.device("cpu"))
    step = TrainStep(model.train(), opt, scheduler, cfg.trainer, torch.device("cpu"))
    o = cfg.optimizer
    args = [np.full(4, o.lr), np.full(4, o.weight_decay), *o.betas]
    theory = twin(*args, o.eps) if optimizer == "adamw" else twin(*args)
    seen = []
    for t, (x, y) in enumerate(list(data.train.epoch(0))[:4]):
        group = opt.param_groups[0]
        seen.append((group["lr"], *group["betas"], group["weight_decay"]))
        record = step(x, y, t, 0.0)
        assert record["si/angular_update_predicted"] == predicted_angle(
            optimizer, o.lr * o.weight_decay, 1.0, tuple(o.betas), refined=True)
    step.close()
    lr, b1, b2, wd = np.array(seen).T
    np.testing.assert_allclose(lr, theory.lr, rtol=1e-15)
    np.testing.assert_allclose(b1, theory.beta1, rtol=1e-15)
    np.testing.assert_allclose(b2, theory.beta2, rtol=1e-15)
    assert not wd.any() and b2[0] < o.betas[1]  # no weight decay; the betas are not the source's


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
def test_renormalisation_changes_no_function_in_float64(tiny_cfg, tmp_path, optimizer):
    """The guard's scaling for AdamW (lr c, wd / c, eps / c, exp_avg / c, exp_avg_sq / c^2) and
    Lion (lr c, wd / c, exp_avg / c), applied after every update: the same losses and angles."""
    common = [*SMALL, f"optimizer={optimizer}", "schedule=exp", "trainer.precision=fp64",
              "trainer.max_steps=5", "model.norm_eps=1e-30"]
    train(tiny_cfg(*common, "trainer.renormalize_above=null"), tmp_path / "plain")
    train(tiny_cfg(*common, "trainer.renormalize_above=1.0"), tmp_path / "guarded")
    plain, guarded = read_metrics(tmp_path / "plain"), read_metrics(tmp_path / "guarded")
    assert guarded[-2]["si/renorm_scale"] != 1.0 and plain[-2]["si/renorm_scale"] == 1.0
    for a, b in zip(plain, guarded, strict=True):
        for key in ("train/loss", "lr", "si/weight_norm", "si/angular_update", "test/loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-10), key


def test_budget_mini_maps_adamw_and_refuses_a_decay_past_zero(tiny_cfg):
    cfg = prepare(tiny_cfg("+experiment=exp_lr", "dataset=digits", "budget=mini",
                           "optimizer=adamw"))
    assert cfg.optimizer.weight_decay == 0.05 * cfg.budget.k and cfg.optimizer.lr == 1e-3
    with pytest.raises(UserError, match="must be below 1"):
        prepare(tiny_cfg("+experiment=exp_lr", "dataset=digits", "budget=mini",
                         "optimizer=adamw", "budget.k=20000"))


@pytest.mark.parametrize("overrides, words", [
    (["optimizer=adamw", "schedule=instant_decay"], "schedule=instant_decay is SGD's"),
    (["optimizer=lion", "+optimizer.projected=true"], "projected is SGD's"),
    (["optimizer=adamw", "optimizer.betas=[0.9,1.0]"], "optimizer.betas=[0.9, 1.0] is not "
     "allowed: use a list of 2 numbers in [0, 1)"),
    (["optimizer=adamw", "optimizer.eps=-1"], "optimizer.eps=-1 is not allowed"),
    (["optimizer=lion", "schedule=exp", "optimizer.weight_decay=2e4"], "must be below 1 for "
     "the twin to exist"),
])
def test_what_an_optimizer_cannot_do_is_refused(tiny_cfg, overrides, words):
    with pytest.raises(UserError, match=re.escape(words)):
        prepare(tiny_cfg(*overrides))


def test_an_sgd_recipe_run_with_adamw_says_what_it_does_not_use(tiny_cfg, caplog):
    with caplog.at_level(logging.WARNING):
        prepare(tiny_cfg("+experiment=fig_auto_rate", "optimizer=adamw",
                         "auto_rate=no_norm"))
    assert "optimizer=adamw does not use optimizer.momentum=0.0" in caplog.text


# What only SGD has, refused in one line: paper A's ablation of ExpLR; paper C's experiment,
# whose LR division ends at SGD's LR 0.4 (a factor above 1 from AdamW's LR).
SGD_ONLY = {"fig_instant_decay": "is SGD's", "fig_equilibrium": "schedule.factor="}


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
def test_every_experiment_prepares_with_adamw_and_lion(optimizer):
    """Every experiment composes, maps and passes the checks with the other optimizers but
    for what only SGD has (SGD_ONLY), which is refused in one line."""
    from src.config.resolvers import compose_config
    from tests.conftest import EXPERIMENTS

    for experiment in EXPERIMENTS:
        for budget in ("paper", "mini"):
            cfg = compose_config([f"+experiment={experiment}", f"optimizer={optimizer}",
                                  "dataset=digits", f"budget={budget}", "logger=none"])
            if experiment in SGD_ONLY:
                with pytest.raises(UserError, match=SGD_ONLY[experiment]):
                    prepare(cfg)
                continue
            prepare(cfg)
            assert cfg.task != "train" or cfg.optimizer.name == optimizer or (
                experiment.startswith(("fig_rotation_optimizers", "fig_adamw_twin")))
