"""Paper A's growth constant and exponential LR, in float64 against independent computations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from src.theory.explr import (
    NoRealAlpha,
    alpha_condition,
    alpha_roots,
    alpha_star,
    exp_lr,
    exp_lr_growth,
)


def test_paper_constants():
    # Paper A's setting: eta=0.1, lambda=5e-4, gamma=0.9, 391 iterations per CIFAR-10 epoch.
    alpha = alpha_star(0.1, 5e-4, 0.9)
    assert alpha == pytest.approx(0.9994977284, abs=1e-10)
    assert exp_lr_growth(alpha, 1) == pytest.approx(1.0010053006, abs=1e-10)
    assert exp_lr_growth(alpha, 391) == pytest.approx(1.481233, abs=1e-6)  # paper: 1.481
    assert exp_lr_growth(alpha, 390) == pytest.approx(1.4797, abs=1e-4)
    assert alpha_star(0.01, 5e-4, 0.9) == pytest.approx(0.9999499775, abs=1e-10)
    assert alpha_star(0.001, 5e-4, 0.9) == pytest.approx(0.9999949998, abs=1e-10)


def test_no_momentum_is_one_minus_lr_wd():
    larger, smaller = alpha_roots(0.1, 5e-4, 0.0)
    assert larger == 1 - 0.1 * 5e-4
    assert smaller == 0.0
    assert exp_lr(3, 0.1, larger) == pytest.approx(0.1 * (1 - 5e-5) ** -7, rel=1e-14)


def test_condition_for_real_roots():
    assert alpha_condition(0.1, 5e-4, 0.9) == pytest.approx(0.0026334, abs=1e-7)
    lr = 1.0
    boundary = (1 - math.sqrt(0.9)) ** 2
    larger, smaller = alpha_roots(lr, boundary, 0.9)  # a double root at sqrt(gamma)
    assert larger == pytest.approx(math.sqrt(0.9), rel=1e-7)
    assert smaller == pytest.approx(math.sqrt(0.9), rel=1e-7)
    with pytest.raises(NoRealAlpha, match="at most"):
        alpha_roots(lr, boundary * (1 + 1e-9), 0.9)
    with pytest.raises(NoRealAlpha):
        alpha_roots(1.0, 1.0, 0.0)  # alpha = 0: the LR would be infinite


@given(
    lr=st.floats(1e-4, 10.0),
    momentum=st.floats(0.0, 0.99),
    fraction=st.floats(0.0, 0.999),
)
def test_roots_solve_the_quadratic(lr, momentum, fraction):
    wd = fraction * alpha_condition(lr, 0.0, momentum) / lr
    larger, smaller = alpha_roots(lr, wd, momentum)
    b = 1 + momentum - lr * wd
    for root in (larger, smaller):
        assert root * root - b * root + momentum == pytest.approx(0.0, abs=1e-12)
    assert 0 <= smaller <= math.sqrt(momentum) * (1 + 1e-12)
    # alpha = 1 exactly when wd = 0; the square root can round it up by one ulp.
    assert math.sqrt(momentum) * (1 - 1e-12) <= larger <= 1.0 + 1e-15
    reference = sorted(np.roots([1.0, -b, momentum]).real)
    assert larger == pytest.approx(reference[1], rel=1e-9)
    assert smaller == pytest.approx(reference[0], abs=1e-9)

