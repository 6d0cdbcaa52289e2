"""The exact twin of any schedule, checked on a stochastic scale-invariant loss in float64.

L_t(theta) = 0.5 ||A_t u - b_t||^2 with u = theta / ||theta||: every batch's loss is scale
invariant, as a normalised network's is. Both processes are simulated independently of the
conversion code: P by its own update rule (PyTorch form or heavy ball), P~ by PyTorch's rule
with the converted LR and weight decay.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from src.optim.schedules import cosine_factor, step_decay_factor
from src.theory.equivalence import (
    exact_ratios,
    initial_scale_tradeoff,
    momenta,
    quasi_static_ratios,
    twin,
)
from src.theory.explr import alpha_condition, alpha_star

DIM, STEPS, GAMMA, WD = 20, 3000, 0.9, 5e-4


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, DIM)), rng.standard_normal(8)) for _ in range(STEPS)]
    return rng.standard_normal(DIM) * 3, batches


def grad(theta, a, b):
    norm = np.linalg.norm(theta)
    u = theta / norm
    g = a.T @ (a @ u - b)
    return (g - u * (u @ g)) / norm  # d/dtheta of L(theta / ||theta||)


def pytorch_sgd(theta0, batches, lrs, wds, m):
    theta, v, out = theta0.copy(), np.zeros_like(theta0), []
    for i, (a, b) in enumerate(batches):
        v = m[i] * v + grad(theta, a, b) + wds[i] * theta
        theta = theta - lrs[i] * v
        out.append(theta)
    return np.array(out)


def heavy_ball_sgd(theta0, batches, lrs, wd, gamma):
    previous, theta, out = theta0.copy(), theta0.copy(), []
    for i, (a, b) in enumerate(batches):
        step = gamma * (theta - previous) - lrs[i] * (grad(theta, a, b) + wd * theta)
        previous, theta = theta, theta + step
        out.append(theta)
    return np.array(out)


def max_relative_deviation(thetas, twins, c):
    scaled = thetas * c[:, None]
    return np.max(np.linalg.norm(twins - scaled, axis=1) / np.linalg.norm(scaled, axis=1))


def step_lrs(lr=0.1):
    return np.array([lr * step_decay_factor(t, [1000, 2000], 0.1) for t in range(STEPS)])


def cosine_lrs(lr=0.1):
    return np.array([lr * cosine_factor(t, STEPS, 0.01) for t in range(STEPS)])


@pytest.mark.parametrize("convention", ["pytorch", "heavy_ball"])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine"])
@pytest.mark.parametrize("ratios", ["quasi_static", "exact"])
def test_twin_tracks_weight_decay_run(problem, convention, schedule, ratios):
    theta0, batches = problem
    lrs = {"constant": np.full(STEPS, 0.1), "step": step_lrs(), "cosine": cosine_lrs()}[schedule]
    wds = np.full(STEPS, WD)
    m = momenta(lrs, GAMMA, convention)
    if convention == "pytorch":
        reference = pytorch_sgd(theta0, batches, lrs, wds, m)
    else:
        reference = heavy_ball_sgd(theta0, batches, lrs, WD, GAMMA)
    if ratios == "quasi_static":
        r = quasi_static_ratios(lrs, wds, GAMMA)
    else:
        r = exact_ratios(lrs, wds, m)
    lr_twin, kappa, c = twin(lrs, wds, m, r)
    if ratios == "exact":
        assert np.max(np.abs(kappa * c ** 2)) < 1e-12  # no weight decay at all
    # 3000 steps of an SGD whose weights grow by up to 1e2: round-off alone reaches ~1e-12.
    twin_run = pytorch_sgd(theta0, batches, lr_twin, kappa, m)
    assert max_relative_deviation(reference, twin_run, c) < 1e-9


@settings(max_examples=25, deadline=None)
# wd_fraction: lr * wd as a fraction of its largest value (1 - sqrt(gamma))^2. Up to 0.5, so
# that alpha >= 0.5 and the twin's weights, c_t = alpha^-t up to 2^200, stay inside float64.
@given(lr=st.floats(1e-3, 0.5), wd_fraction=st.floats(0.0, 0.5), gamma=st.floats(0.0, 0.95),
       factor=st.floats(0.05, 1.0), convention=st.sampled_from(["pytorch", "heavy_ball"]),
       exact=st.booleans(), seed=st.integers(0, 2**16))
def test_twin_property(lr, wd_fraction, gamma, factor, convention, exact, seed):
    """Any LR, weight decay with a real alpha, momentum and one LR drop, both conventions."""
    rng = np.random.default_rng(seed)
    steps = 200
    batches = [(rng.standard_normal((4, 5)), rng.standard_normal(4)) for _ in range(steps)]
    theta0 = rng.standard_normal(5)
    lrs = np.where(np.arange(steps) < 100, lr, lr * factor)
    wds = np.full(steps, wd_fraction * alpha_condition(lr, 0.0, gamma) / lr)
    m = momenta(lrs, gamma, convention)
    if exact:
        try:
            r = exact_ratios(lrs, wds, m)
        except ValueError:
            assume(False)
    else:
        r = quasi_static_ratios(lrs, wds, gamma)
    lr_twin, kappa, c = twin(lrs, wds, m, r)
    if convention == "pytorch":
        reference = pytorch_sgd(theta0, batches, lrs, wds, m)
    else:
        reference = heavy_ball_sgd(theta0, batches, lrs, wds[0], gamma)
    twin_run = pytorch_sgd(theta0, batches, lr_twin, kappa, m)
    assert max_relative_deviation(reference, twin_run, c) < 1e-9


def test_without_corrections_texp_drifts(problem):
    """TEXP as an LR alone (no kappa) is close but not exact: the size of the corrections."""
    theta0, batches = problem
    lrs, wds = step_lrs(), np.full(STEPS, WD)
    m = momenta(lrs, GAMMA)
    lr_twin, kappa, c = twin(lrs, wds, m, quasi_static_ratios(lrs, wds, GAMMA))
    nonzero = np.flatnonzero(np.abs(kappa * c**2) > 1e-12)
    assert list(nonzero) == [0, 1000, 2000]  # t = 1 and the first update of each phase
    drift = max_relative_deviation(pytorch_sgd(theta0, batches, lrs, wds, m),
                                   pytorch_sgd(theta0, batches, lr_twin, 0 * kappa, m), c)
    assert 1e-6 < drift < 1e-1


def test_explr_closed_form():
    lrs, wds = np.full(500, 0.1), np.full(500, WD)
    lr_twin, kappa, c = twin(lrs, wds, momenta(lrs, GAMMA), quasi_static_ratios(lrs, wds, GAMMA))
    alpha = alpha_star(0.1, WD, GAMMA)
    t = np.arange(500)
    np.testing.assert_allclose(lr_twin, 0.1 * alpha ** (-2 * t - 1), rtol=1e-12)
    np.testing.assert_allclose(c, alpha ** -(t + 1), rtol=1e-12)
    assert kappa[0] == pytest.approx(GAMMA * (1 - 1 / alpha) / 0.1, rel=1e-12)
    assert np.all(kappa[1:] == pytest.approx(0, abs=1e-15))


def test_texp_boundary_factor():
    """TEXP: at a phase start lr~ jumps by (lr_I / lr_{I-1}) / (alpha_{I-1} alpha_I)."""
    lrs, wds = step_lrs(), np.full(STEPS, WD)
    lr_twin, _, _ = twin(lrs, wds, momenta(lrs, GAMMA), quasi_static_ratios(lrs, wds, GAMMA))
    a0, a1 = alpha_star(0.1, WD, GAMMA), alpha_star(0.01, WD, GAMMA)
    assert lr_twin[0] == pytest.approx(0.1 / a0, rel=1e-14)
    assert lr_twin[999] / lr_twin[998] == pytest.approx(a0 ** -2, rel=1e-12)
    assert lr_twin[1000] / lr_twin[999] == pytest.approx(0.1 / (a0 * a1), rel=1e-12)
    assert lr_twin[1001] / lr_twin[1000] == pytest.approx(a1 ** -2, rel=1e-12)


def test_initial_scale_tradeoff(problem):
    theta0, batches = problem
    c = 7.0
    theta_c, lr_c, wd_c = initial_scale_tradeoff(theta0, 0.1, WD, c)
    m = momenta(np.full(STEPS, 0.1), GAMMA)
    base = pytorch_sgd(theta0, batches, np.full(STEPS, 0.1), np.full(STEPS, WD), m)
    scaled = pytorch_sgd(theta_c, batches, np.full(STEPS, lr_c), np.full(STEPS, wd_c), m)
    assert max_relative_deviation(base, scaled, np.full(STEPS, c)) < 1e-10
