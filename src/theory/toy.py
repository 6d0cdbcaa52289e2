"""Paper A's toy example: weight decay alone or BN alone converge, both together do not.

Logistic regression on the population: x ~ N(0, I_m), label y = sign(x_1), output <w, x> (no
bias), loss E ln(1 + exp(-y <w, x>)), full-batch GD with constant LR. With BN on the
output, u = <w, x> / ||w|| (the batch statistics are the population's), a scale-invariant loss.

Only a = w_1 and b = ||w_{2:m}|| matter: y <w, x> = a s + b z with s = |x_1| half-normal
and z standard normal, independent, and the gradient stays in that plane. Expectations over
(s, z) are quadrature sums, so everything is deterministic.
"""

import math

import numpy as np
from scipy.special import expit

CASES = ("wd_only", "bn_only", "bn_wd")


def quadrature(points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, z, weight) grids with E f(s, z) = sum(weight * f(s, z)).

    z: Gauss-Hermite (probabilists'). s: Gauss-Legendre on [0, 12] against the half-normal
    density 2 phi(s); Hermite nodes folded by |x| would converge slowly at the kink at 0.
    """
    z, wz = np.polynomial.hermite_e.hermegauss(points)
    wz = wz / math.sqrt(2 * math.pi)
    x, wx = np.polynomial.legendre.leggauss(points)
    s = 6.0 * (x + 1.0)
    ws = 6.0 * wx * 2.0 * np.exp(-s * s / 2) / math.sqrt(2 * math.pi)
    return s[:, None], z[None, :], ws[:, None] * wz[None, :]


def loss_gradient(a: float, b: float, quad) -> tuple[float, float]:
    """Gradient of E ln(1 + exp(-(a s + b z))) in (a, b)."""
    s, z, weight = quad
    sigma = weight * expit(-(a * s + b * z))
    return -float((s * sigma).sum()), -float((z * sigma).sum())


def gd_step(a: float, b: float, case: str, lr: float, weight_decay: float, quad):
    """One full-batch GD step of the case's objective; returns the new (a, b)."""
    if case == "wd_only":
        ga, gb = loss_gradient(a, b, quad)
    else:  # the loss of w / ||w||: its gradient is the projected one, divided by ||w||
        norm = math.hypot(a, b)
        ua, ub = a / norm, b / norm
        ga, gb = loss_gradient(ua, ub, quad)
        radial = ua * ga + ub * gb
        ga, gb = (ga - ua * radial) / norm, (gb - ub * radial) / norm
    if case != "bn_only":
        ga, gb = ga + weight_decay * a, gb + weight_decay * b
    return a - lr * ga, b - lr * gb


def zero_one_error(a: float, b: float) -> float:
    """Pr[y <w, x> <= 0] = angle(w, e_1) / pi."""
    return math.acos(max(-1.0, min(1.0, a / math.hypot(a, b)))) / math.pi
