"""The overflow guard: exact in float64, and what keeps float32 ExpLR finite."""

import math

import pytest

from src.tracking.run_format import read_metrics
from tests.helpers.runs import train

SMALL = ["model=preresnet20", "dataset.num_train=64", "trainer.log_every_n_steps=1",
         "trainer.renormalize_every_n_steps=1"]


def test_renormalisation_changes_no_function_in_float64(tiny_cfg, tmp_path):
    common = [*SMALL, "schedule=exp", "trainer.precision=fp64", "trainer.max_steps=6",
              "optimizer.lr=0.02", "model.norm_eps=1e-30"]
    train(tiny_cfg(*common, "trainer.renormalize_above=null"), tmp_path / "plain")
    # Below the initial norm: the guard rescales after every update.
    train(tiny_cfg(*common, "trainer.renormalize_above=1.0"), tmp_path / "guarded")
    plain, guarded = read_metrics(tmp_path / "plain"), read_metrics(tmp_path / "guarded")
    assert guarded[-2]["si/renorm_scale"] != 1.0 and plain[-2]["si/renorm_scale"] == 1.0
    assert len(plain) == len(guarded)
    for a, b in zip(plain, guarded, strict=True):
        for key in ("train/loss", "lr", "si/weight_norm", "si/grad_norm", "si/effective_lr",
                    "si/angular_update", "test/loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-10), key


@pytest.mark.parametrize("guard", ["1.0e12", "null"])
def test_float32_explr_stays_finite_with_the_guard(tiny_cfg, tmp_path, guard):
    """lr 1, weight decay 0.5, no momentum: alpha = 0.5, so the twin's weights double and its
    LR quadruples every update; 120 updates take the LR past 1e69 and the weights' norm past
    1e35, beyond float32's 3e38 for LR and squared norm alike, as 300 CIFAR epochs of the
    paper's ExpLR would (LR 1e51)."""
    cfg = tiny_cfg(*SMALL, "schedule=exp", "optimizer.lr=1.0", "optimizer.weight_decay=0.5",
                   "optimizer.momentum=0.0", "trainer.epochs=60", "trainer.max_steps=120",
                   "trainer.log_every_n_steps=5", f"trainer.renormalize_above={guard}")
    summary = train(cfg, tmp_path)
    records = [r for r in read_metrics(tmp_path) if "train/loss" in r]
    if guard == "null":
        assert summary["status"] == "diverged"
    else:
        assert summary["status"] == "completed" and summary["steps"] == 120
        assert records[-1]["lr"] > 1e69 and records[-1]["si/weight_norm"] > 1e35
        assert all(math.isfinite(r["train/loss"]) for r in records)


def test_projected_sgd_keeps_the_norm_of_every_invariant_set(tiny_cfg):
    """Paper B's projected SGD: each set of weights the loss is scale invariant to keeps its
    norm (to rounding, float64), where plain SGD without weight decay grows every norm
    (||w_t+1||^2 = ||w_t||^2 + lr^2 ||grad||^2 when <w, grad> = 0)."""
    import torch
    import torch.nn.functional as F

    from src.config.prepare import prepare
    from src.engine.build import build
    from src.optim.groups import split_parameters

    ratios = {}
    for projected in (False, True):
        cfg = tiny_cfg(*SMALL, "trainer.precision=fp64", "optimizer.momentum=0",
                       "optimizer.weight_decay=0", "optimizer.lr=1.0",
                       "model.norm_eps=1e-30", f"optimizer.projected={projected}")
        data, model, optimizer, _ = build(prepare(cfg), torch.device("cpu"))
        named = dict(model.named_parameters())
        sets = [[named[n] for n in names] for names in
                split_parameters(model, data.input_shape).sets]
        before = [torch.linalg.vector_norm(torch.cat([p.flatten() for p in s])) for s in sets]
        for x, y in list(data.train.epoch(0))[:3]:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        ratios[projected] = torch.stack([
            torch.linalg.vector_norm(torch.cat([p.flatten() for p in s])) / b
            for s, b in zip(sets, before, strict=True)]).detach()
        if projected:  # the sets the optimizer projects
            assert [list(map(id, s)) for s in optimizer.projected] == [
                list(map(id, s)) for s in sets]
    # PreResNet20: each block's first conv alone, then the residual stream's convs jointly
    assert [len(s) for s in sets] == [1] * 9 + [12]
    torch.testing.assert_close(ratios[True], torch.ones_like(ratios[True]), rtol=1e-13, atol=0)
    assert ratios[False].min() > 1 and ratios[False].max() > 1.01


def test_the_guard_acts_on_its_own_interval_not_the_logging_one(tiny_cfg):
    """trainer.renormalize_every_n_steps alone sets when the guard looks: with logging off
    (one record in 1000 updates) and a bound below the initial norm, it rescales after
    updates 0 and 2 and leaves updates 1 and 3 alone."""
    import torch

    from src.config.prepare import prepare
    from src.engine.build import build
    from src.engine.step import TrainStep

    cfg = tiny_cfg("model=preresnet20", "dataset.num_train=64", "trainer.precision=fp64",
                   "trainer.log_every_n_steps=1000", "trainer.renormalize_every_n_steps=2",
                   "trainer.renormalize_above=1.0", "schedule=exp")
    data, model, optimizer, schedule = build(prepare(cfg), torch.device("cpu"))
    train_step = TrainStep(model.train(), optimizer, schedule, cfg.trainer, torch.device("cpu"))
    scales = []
    for t, (x, y) in enumerate(list(data.train.epoch(0))[:4]):
        train_step(x, y, t, 0.0)
        scales.append(train_step.guard.scale)
    assert scales[0] != 1.0 and scales[1] == scales[0]
    assert scales[2] != scales[1] and scales[3] == scales[2]
