import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.optim.schedules import build_schedule, cosine_factor, step_decay_factor
from src.theory.explr import alpha_star

OPT = OmegaConf.create(dict(lr=0.1, momentum=0.9, weight_decay=5e-4, rest_lr=0.05,
                            rest_weight_decay=1e-4))
ALPHA = alpha_star(0.1, 5e-4, 0.9)


def schedule(**cfg):
    return build_schedule(OmegaConf.create(cfg), OPT, steps_per_epoch=5, total_steps=20)


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
    groups = schedule(name="step", milestones=[2, 3], factor=0.1).groups
    si, rest = groups["scale_invariant"], groups["rest"]
    np.testing.assert_allclose(si.lr[[0, 9, 10, 14, 15]], [0.1, 0.1, 0.01, 0.01, 0.001],
                               rtol=1e-15)
    assert rest.lr[10] == pytest.approx(0.005, rel=1e-15)
    assert set(si.weight_decay) == {5e-4} and set(rest.weight_decay) == {1e-4}


@pytest.mark.parametrize("correction", [True, False])
def test_exp_replaces_weight_decay_on_the_scale_invariant_group_only(correction):
    groups = schedule(name="exp", momentum_correction=correction).groups
    si, rest = groups["scale_invariant"], groups["rest"]
    t = np.arange(20)
    np.testing.assert_allclose(si.lr, 0.1 * ALPHA ** (-2 * t - 1), rtol=1e-13)
    kappa_1 = 0.9 * (1 - 1 / ALPHA) / 0.1 if correction else 0.0
    assert si.weight_decay[0] == pytest.approx(kappa_1, rel=1e-12)
    assert np.all(np.abs(si.weight_decay[1:]) < 1e-15)
    assert set(rest.lr) == {0.05} and set(rest.weight_decay) == {1e-4}


def test_texp_phases():
    si = schedule(name="texp", milestones=[2, 3], factor=0.1, momentum_correction=True
                  ).groups["scale_invariant"]
    a1, a2 = alpha_star(0.01, 5e-4, 0.9), alpha_star(0.001, 5e-4, 0.9)
    assert si.lr[5] / si.lr[4] == pytest.approx(ALPHA ** -2, rel=1e-12)
    assert si.lr[10] / si.lr[9] == pytest.approx(0.1 / (ALPHA * a1), rel=1e-12)
    assert si.lr[15] / si.lr[14] == pytest.approx(0.1 / (a1 * a2), rel=1e-12)
    # Inside a phase kappa is zero up to rounding (~1e-15); it acts only at phase starts.
    assert np.flatnonzero(np.abs(si.weight_decay) > 1e-12).tolist() == [0, 10, 15]


def test_equivalent_has_no_weight_decay_and_instant_decay_keeps_the_exponent():
    si = schedule(name="equivalent", base="cosine", final_ratio=0.0, momentum_correction=True
                  ).groups["scale_invariant"]
    assert not np.any(si.weight_decay) and np.all(si.lr > 0)
    si = schedule(name="instant_decay", milestones=[2], factor=0.1).groups["scale_invariant"]
    t = np.arange(20)
    np.testing.assert_allclose(si.lr, 0.1 * ALPHA ** (-2 * t - 1) * np.where(t >= 10, 0.1, 1),
                               rtol=1e-13)
    assert not np.any(si.weight_decay)
