"""Exact conversion of any (LR, weight decay) schedule into a no-weight-decay twin (paper A).

Process P: PyTorch-form SGD, v_t = m_t v_{t-1} + g_t + wd_{t-1} theta_{t-1},
theta_t = theta_{t-1} - lr_{t-1} v_t, v_0 = 0 (t = 1, 2, ... counts updates; lr_{t-1}, wd_{t-1}
and m_t are the values update t uses). Heavy-ball SGD is this form with
m_t = gamma lr_{t-2} / lr_{t-1}: its buffer is rescaled whenever the LR changes.

Twin P~: the same momenta m_t, LR lr~_{t-1} = c_t c_{t-1} lr_{t-1} and weight decay kappa_t.
Pick any positive ratios r_t and let c_0 = 1, c_t = c_{t-1} / r_t; with

    kappa_t = [(r_t - 1) / lr_{t-1} + wd_{t-1} - m_t (1 - 1/r_{t-1}) / lr_{t-2}] / c_{t-1}^2

(the last term absent for t = 1), a loss that is scale invariant gives theta~_t = c_t theta_t
for every t, so both runs compute the same network functions. Choices of r:

* r_t = alpha*(lr_{t-1}, wd_{t-1}, gamma): ExpLR for a constant LR, TEXP for step decay; kappa
  vanishes except at t = 1 and at the first update of each new phase (the momentum correction).
* the recurrence that makes kappa_t = 0 for every t: an exact twin with no weight decay at
  all, for any schedule (cosine, cyclic, yours).

Arrays in, arrays out, float64; index i of an array is update t = i + 1.
"""

from dataclasses import dataclass

import numpy as np

from src.theory.explr import alpha_star

CONVENTIONS = ("pytorch", "heavy_ball")


@dataclass(frozen=True)
class Rescaling:
    """Paper A's scaling lemma: for a loss scale invariant in theta, the SGD states
    (theta, v, lr, wd) and (c theta, v / c, c^2 lr, wd / c^2) give the same network functions at
    every later step. The factor each quantity is multiplied by; the gradient at c theta is
    1/c times the one at theta, and norms of the weights scale with c."""

    c: float

    @property
    def weights(self) -> float:
        return self.c

    @property
    def momentum_buffer(self) -> float:
        return 1.0 / self.c

    @property
    def grad(self) -> float:
        return 1.0 / self.c

    @property
    def lr(self) -> float:
        return self.c * self.c

    @property
    def weight_decay(self) -> float:
        return 1.0 / (self.c * self.c)

    def inverse(self) -> "Rescaling":
        return Rescaling(1.0 / self.c)


def momenta(lrs: np.ndarray, momentum: float, convention: str = "pytorch") -> np.ndarray:
    """m_t for every update in PyTorch form; heavy ball rescales by lr_{t-2} / lr_{t-1}."""
    lrs = np.asarray(lrs, dtype=np.float64)
    m = np.full(len(lrs), float(momentum))
    if convention == "heavy_ball":
        m[1:] *= lrs[:-1] / lrs[1:]
    elif convention != "pytorch":
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return m


def quasi_static_ratios(lrs, wds, momentum: float) -> np.ndarray:
    """r_t = alpha*(lr_{t-1}, wd_{t-1}, gamma): TEXP's per-step growth factors."""
    return np.array([alpha_star(lr, wd, momentum) for lr, wd in zip(lrs, wds, strict=True)])


def exact_ratios(lrs, wds, m) -> np.ndarray:
    """The r_t that make every kappa_t zero: r_1 = 1 - lr_0 wd_0 and
    r_t = 1 - lr_{t-1} wd_{t-1} + m_t (lr_{t-1} / lr_{t-2}) (1 - 1/r_{t-1})."""
    lrs, wds = np.asarray(lrs, dtype=np.float64), np.asarray(wds, dtype=np.float64)
    r = np.empty(len(lrs))
    r[0] = 1.0 - lrs[0] * wds[0]
    for i in range(1, len(lrs)):
        r[i] = 1.0 - lrs[i] * wds[i] + m[i] * lrs[i] / lrs[i - 1] * (1.0 - 1.0 / r[i - 1])
    if np.any(r <= 0):
        raise ValueError("the schedule drives a ratio r_t to <= 0: no exact twin exists")
    return r


def twin(lrs, wds, m, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lr~, kappa, c) of the twin for ratios r: lr~[i] and kappa[i] are used by update i + 1,
    c[i] = c_{i+1} relates the weights after it, theta~ = c theta. c is kept as exp(log c)
    so that 10^5 updates do not accumulate rounding in a running product."""
    lrs, wds, r = (np.asarray(a, dtype=np.float64) for a in (lrs, wds, r))
    log_c = -np.cumsum(np.log(r))                     # log c_t, t = 1..T
    log_c_prev = np.concatenate(([0.0], log_c[:-1]))  # log c_{t-1}
    lr_twin = lrs * np.exp(log_c + log_c_prev)
    kappa = (r - 1.0) / lrs + wds
    kappa[1:] -= m[1:] * (1.0 - 1.0 / r[:-1]) / lrs[:-1]
    kappa *= np.exp(-2.0 * log_c_prev)
    return lr_twin, kappa, np.exp(log_c)


def initial_scale_tradeoff(theta0, lr: float, weight_decay: float, c: float):
    """(theta0, lr, wd) and (c theta0, c^2 lr, wd / c^2) train the same network functions
    (paper A): at fixed lr * wd, the LR acts only as a rescaled initialisation."""
    return c * theta0, c * c * lr, weight_decay / (c * c)

