"""Paper A's toy example: the math in float64, and the claim itself."""

import math

import numpy as np
import pytest

from src.theory.toy import gd_step, loss_gradient, quadrature, zero_one_error
from tests.helpers.runs import train

QUAD = quadrature(80)


def test_quadrature_moments():
    s, z, weight = QUAD
    assert (weight * s).sum() == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)  # E|x|
    assert (weight * z**2).sum() == pytest.approx(1.0, rel=1e-12)
    assert (weight * s**2 * z**2).sum() == pytest.approx(1.0, rel=1e-12)


def test_gradient_matches_finite_differences():
    s, z, weight = QUAD

    def loss(a, b):
        return float((weight * np.logaddexp(0, -(a * s + b * z))).sum())

    a, b, h = 0.7, -1.3, 1e-6
    ga, gb = loss_gradient(a, b, QUAD)
    assert ga == pytest.approx((loss(a + h, b) - loss(a - h, b)) / (2 * h), rel=1e-8)
    assert gb == pytest.approx((loss(a, b + h) - loss(a, b - h)) / (2 * h), rel=1e-8)


def test_bn_step_without_weight_decay_only_grows_the_norm():
    """Paper B's identity ||w'||^2 = ||w||^2 + lr^2 ||grad||^2 (the gradient is orthogonal)."""
    a, b, lr = 0.4, 0.9, 0.5
    a2, b2 = gd_step(a, b, "bn_only", lr, 0.0, QUAD)
    ga, gb = (a - a2) / lr, (b - b2) / lr
    assert a * ga + b * gb == pytest.approx(0.0, abs=1e-15)
    assert a2**2 + b2**2 == pytest.approx(a**2 + b**2 + lr**2 * (ga**2 + gb**2), rel=1e-14)


def test_zero_one_error():
    assert zero_one_error(1.0, 0.0) == 0.0
    assert zero_one_error(1.0, 1.0) == pytest.approx(0.25, rel=1e-14)
    assert zero_one_error(-1.0, 0.0) == 1.0


def test_weight_decay_or_bn_alone_settle_both_together_do_not(tiny_cfg, tmp_path):
    summary = train(tiny_cfg("+experiment=toy_wd_bn", "toy.steps=40000", "toy.log_every=1000"),
                    tmp_path)
    for case in ("wd_only", "bn_only"):
        assert summary[f"{case}/error"] < 1e-3
        assert summary[f"{case}/settled_at"] is not None
        assert summary[f"{case}/max_error_after_settling"] < 1e-3
    # BN + WD reaches a small error too, then is kicked away from it again.
    assert summary["bn_wd/settled_at"] is not None
    assert summary["bn_wd/max_error_after_settling"] > 1e-3
