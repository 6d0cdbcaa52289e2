import math

import pytest
from omegaconf import OmegaConf

from src.optim.schedules import build_schedule, cosine_factor, step_decay_factor
from src.theory.explr import alpha_star

OPT = OmegaConf.create(dict(lr=0.1, momentum=0.9, weight_decay=5e-4, rest_lr=0.05,
                            rest_weight_decay=1e-4))


def test_step_decay_factor():
    milestones = [10, 20]
    assert [step_decay_factor(s, milestones, 0.1) for s in (0, 9, 10, 19, 20, 500)] == [
        1.0, 1.0, 0.1, 0.1, pytest.approx(0.01, rel=1e-15), pytest.approx(0.01, rel=1e-15)]


def test_cosine_factor():
    assert cosine_factor(0, 100) == 1.0
    assert cosine_factor(50, 100) == pytest.approx(0.5, rel=1e-15)
    assert cosine_factor(100, 100) == pytest.approx(0.0, abs=1e-16)
    assert cosine_factor(100, 100, 0.1) == pytest.approx(0.1, rel=1e-15)
    assert cosine_factor(25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)), rel=1e-15)


def test_step_schedule_milestones_are_epochs():
    cfg = OmegaConf.create(dict(name="step", milestones=[2, 3], factor=0.1))
    schedule = build_schedule(cfg, OPT, steps_per_epoch=5, total_steps=20)
    si, rest = schedule.groups["scale_invariant"], schedule.groups["rest"]
    assert [si.lr(s) for s in (0, 9, 10, 14, 15)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001], rel=1e-15)
    assert rest.lr(10) == pytest.approx(0.005, rel=1e-15)
    assert (si.weight_decay, rest.weight_decay) == (5e-4, 1e-4)
    assert schedule.initial_buffer_scale is None


def test_exp_schedule_replaces_weight_decay_on_scale_invariant_group_only():
    cfg = OmegaConf.create(dict(name="exp", momentum_correction=True))
    schedule = build_schedule(cfg, OPT, steps_per_epoch=5, total_steps=20)
    si, rest = schedule.groups["scale_invariant"], schedule.groups["rest"]
    alpha = alpha_star(0.1, 5e-4, 0.9)
    for t in (0, 1, 7, 10_000):
        assert si.lr(t) == pytest.approx(0.1 * alpha ** (-2 * t - 1), rel=1e-12)
        assert rest.lr(t) == 0.05
    assert (si.weight_decay, rest.weight_decay) == (0.0, 1e-4)
    assert schedule.initial_buffer_scale == pytest.approx((1 - 1 / alpha) / 0.1, rel=1e-14)
    uncorrected = build_schedule(OmegaConf.create(dict(name="exp", momentum_correction=False)),
                                 OPT, steps_per_epoch=5, total_steps=20)
    assert uncorrected.initial_buffer_scale is None
