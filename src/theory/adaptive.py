"""Paper A beyond SGD: scale symmetry and exact no-weight-decay twins of AdamW and Lion.

Conventions (torch.optim.AdamW, timm.optim.Lion, read from their code): update t = 0, 1, ...
uses lr_t, wd_t and the betas the group holds then; a_t = 1 - lr_t wd_t, A_t = prod_{s<t} a_s
(A_0 = 1); g_t = grad L(w_t); m_t, v_t are the buffers after update t (m_{-1} = v_{-1} = 0).

  AdamW  w <- a_t w;  m_t = b1 m_{t-1} + (1-b1) g_t;  v_t = b2 v_{t-1} + (1-b2) g_t^2;
         w_{t+1} = a_t w_t - lr_t / bc1_t * m_t / (sqrt(v_t) / sqrt(bc2_t) + eps_t),
         bc_t = 1 - beta_t^(t+1) with the group's beta at update t.
  Lion   w_{t+1} = a_t w_t - lr_t sign(b1 m_{t-1} + (1-b1) g_t);  m_t = b2 m_{t-1} + (1-b2) g_t.

Scale symmetry: if L(c w) = L(w) then grad L(c w) = grad L(w) / c, so from c w_0 the buffers
are m / c and v / c^2; AdamW with (c lr, wd / c, eps / c) and Lion with (c lr, wd / c) keep
a_t and give c w_t at every step (the bias corrections count steps, they do not see scale).

Twins without weight decay: w~_t = w_t / A_t, so g~_t = A_t g_t. Ask the twin's buffers to stay
proportional, m~_t = K_t m_t; then m~_t = b'_t m~_{t-1} + (1 - b'_t) A_t g_t forces
K_t = (1 - b'_t) A_t / (1 - b) and b'_t = b A_t / ((1 - b) K_{t-1} + b A_t); in the ratio
k_t = K_t / A_t = (1 - b'_t) / (1 - b) this is

    b'_t = b a_{t-1} / (1 - b'_{t-1} + b a_{t-1})      (a_{t-1}^2 in place of a_{t-1} for v),

whose fixed point at a constant a is b' = b a (b2' = b2 a^2 for v); a source whose betas vary
per update takes b_t there and k_t = (1 - b'_t) / (1 - b_t). The twin's first betas
are free (its buffers start at zero); we take b'_0 = b a_0, as if a_0 had held before the
first update, so a constant schedule gives b a from the start. AdamW's twin then matches the
source's update if lr~_t = lr_t / (A_{t+1} R_t), with
R_t = bc1_t k1_t sqrt(bc2~_t) / (bc1~_t sqrt(k2_t bc2_t)) (k1, k2 of m and v; bc~ of the
twin's own betas, as torch computes them), and eps~_t = eps_t A_t sqrt(k2_t bc2_t / bc2~_t):
sqrt(v~) carries the factor A_t sqrt(k2_t) that eps must carry too. With eps -> 0, eps~ = 0;
a twin that keeps a fixed eps instead sees eps grow by 1 / A_t against its sqrt(v~).
Lion's sign ignores positive factors: its twin needs m~ proportional (the recurrence with b2)
and b1'/(1 - b1') = b1 A_t / ((1 - b1) K_{t-1}), i.e. r = b1 a_{t-1} (1 - b2) /
((1 - b1) (1 - b2'_{t-1})), and lr~_t = lr_t / A_{t+1}. (AMSGrad's running max of v is not
proportional across a varying k2: no twin here.)

The naive twin keeps the betas: its v~, in units of the current gradients' A_t^2, weighs the
gradient k updates back by q^k, q = b2 / a^2, instead of b2^k; for a stationary gradient scale
it settles at (1 - b2) / (1 - q) ~ 1 / (1 - 2 lr wd b2 / (1 - b2)) times the right value, and
where a^2 <= b2 (q >= 1) it never settles (naive_v_bias_growth).

Arrays in, arrays out, float64; index t of an array is update t (0-based).
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

KINDS = ("sgd", "adamw", "lion")


@dataclass(frozen=True)
class StateScaling:
    """The factors by which (weights, optimizer state, group hyperparameters) of a run are
    multiplied so that, on a scale-invariant loss, it keeps training the same functions with its
    weights c times larger. Keys are the optimizers' own: torch SGD 'momentum_buffer', torch
    AdamW 'exp_avg', 'exp_avg_sq' (and 'max_exp_avg_sq' under amsgrad), timm Lion 'exp_avg';
    Lion's 'max_lr_snapshot' (its corrected weight decay, lr^2 / max_lr) moves with lr. Step
    counters are left alone."""

    kind: str
    c: float

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.c > 0:
            raise ValueError(f"the scale c must be positive, got {self.c}")

    @property
    def weights(self) -> float:
        return self.c

    @property
    def state(self) -> dict[str, float]:
        c = self.c
        if self.kind == "sgd":
            return {"momentum_buffer": 1.0 / c}
        if self.kind == "adamw":
            return {"exp_avg": 1.0 / c, "exp_avg_sq": 1.0 / c**2, "max_exp_avg_sq": 1.0 / c**2}
        return {"exp_avg": 1.0 / c}

    @property
    def group(self) -> dict[str, float]:
        c = self.c
        if self.kind == "sgd":  # coupled decay: the step is lr (g + wd w)
            return {"lr": c**2, "weight_decay": 1.0 / c**2}
        if self.kind == "adamw":  # eps sits beside sqrt(v), which scales as 1/c
            return {"lr": c, "weight_decay": 1.0 / c, "eps": 1.0 / c}
        return {"lr": c, "weight_decay": 1.0 / c, "max_lr_snapshot": c}

    def inverse(self) -> "StateScaling":
        return StateScaling(self.kind, 1.0 / self.c)


def state_scaling(kind: str, c: float) -> StateScaling:
    """The factors for optimizer kind 'sgd' | 'adamw' | 'lion' and weight scale c."""
    return StateScaling(kind, float(c))


class AdamWTwin(NamedTuple):
    """Per update t: the twin's group values (weight decay 0) and scale[t] = c_{t+1} = 1/A_{t+1},
    w~_{t+1} = scale[t] w_{t+1}."""

    lr: np.ndarray
    beta1: np.ndarray
    beta2: np.ndarray
    eps: np.ndarray
    scale: np.ndarray


class LionTwin(NamedTuple):
    lr: np.ndarray
    beta1: np.ndarray
    beta2: np.ndarray
    scale: np.ndarray


def _per_update(values, n: int, name: str) -> np.ndarray:
    out = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    return out


def _schedule(lrs, wds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lr, a, log A_t for t = 0..T) with a_t = 1 - lr_t wd_t; refuses a_t <= 0."""
    lrs = np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or len(lrs) == 0:
        raise ValueError("lrs must be a non-empty 1-d array, one entry per update")
    wds = _per_update(wds, len(lrs), "wds")
    a = 1.0 - lrs * wds
    if np.any(a <= 0):
        raise ValueError("lr * wd must stay below 1: a decay factor 1 - lr * wd <= 0")
    # log A as a sum of logs: a running product over 10^5 updates would pile up rounding
    log_big_a = np.concatenate(([0.0], np.cumsum(np.log(a))))
    return lrs, a, log_big_a


def _check_betas(name: str, betas: np.ndarray) -> None:
    if np.any(betas < 0) or np.any(betas >= 1):
        bad = int(np.flatnonzero((betas < 0) | (betas >= 1))[0])
        raise ValueError(f"{name} leaves [0, 1) at update {bad}: {betas[bad]!r}")


def proportional_betas(beta, decay) -> np.ndarray:
    """b'_t with b'_0 = b_0 d_0 and b'_t = b_t d_{t-1} / ((1 - b_t) k_{t-1} + b_t d_{t-1}),
    k_t = (1 - b'_t) / (1 - b_t): the betas that keep a twin's EMA of d-scaled inputs
    proportional to the source's (d = a for first moments, a^2 for second moments)."""
    decay = np.asarray(decay, dtype=np.float64)
    beta = _per_update(beta, len(decay), "beta")
    _check_betas("the source's beta", beta)
    out = np.empty_like(decay)
    out[0] = beta[0] * decay[0]
    for t in range(1, len(decay)):
        k = (1.0 - out[t - 1]) / (1.0 - beta[t - 1])
        out[t] = beta[t] * decay[t - 1] / ((1.0 - beta[t]) * k + beta[t] * decay[t - 1])
    return out


def _bias_correction(beta: np.ndarray) -> np.ndarray:
    # as torch: 1 - beta ** step with step = t + 1 a Python float
    return np.array([1.0 - float(b) ** float(t + 1) for t, b in enumerate(beta)])


def adamw_twin(lrs, wds, beta1, beta2, eps=0.0) -> AdamWTwin:
    """The exact no-weight-decay twin of torch's AdamW for any per-update (lr, wd) schedule;
    beta1, beta2, eps: floats or per-update arrays. Raises ValueError where a beta leaves
    [0, 1) or a_t <= 0."""
    lrs, a, log_big_a = _schedule(lrs, wds)
    n = len(lrs)
    b1, b2 = _per_update(beta1, n, "beta1"), _per_update(beta2, n, "beta2")
    eps = _per_update(eps, n, "eps")
    b1t, b2t = proportional_betas(b1, a), proportional_betas(b2, a * a)
    _check_betas("the twin's beta1", b1t)
    _check_betas("the twin's beta2", b2t)
    k1, k2 = (1.0 - b1t) / (1.0 - b1), (1.0 - b2t) / (1.0 - b2)
    bc1, bc2 = _bias_correction(b1), _bias_correction(b2)
    bc1t, bc2t = _bias_correction(b1t), _bias_correction(b2t)
    ratio = bc1 * k1 * np.sqrt(bc2t) / (bc1t * np.sqrt(k2 * bc2))
    lr_twin = lrs * np.exp(-log_big_a[1:]) / ratio
    eps_twin = eps * np.exp(log_big_a[:-1]) * np.sqrt(k2 * bc2 / bc2t)
    return AdamWTwin(lr_twin, b1t, b2t, eps_twin, np.exp(-log_big_a[1:]))


def adamw_naive_twin(lrs, wds, beta1, beta2, eps=0.0) -> AdamWTwin:
    """The same-beta twin: betas unchanged, lr~_t = lr_t / A_{t+1}, no weight decay, eps~_t =
    eps A_t (scaled with the gradients, so that only the betas are wrong). Not exact: its
    buffers weight old, larger gradients by (b/a)^k and (b2/a^2)^k instead of b^k."""
    lrs, a, log_big_a = _schedule(lrs, wds)
    n = len(lrs)
    b1, b2 = _per_update(beta1, n, "beta1"), _per_update(beta2, n, "beta2")
    _check_betas("beta1", b1)
    _check_betas("beta2", b2)
    eps_twin = _per_update(eps, n, "eps") * np.exp(log_big_a[:-1])
    scale = np.exp(-log_big_a[1:])
    return AdamWTwin(lrs * scale, b1, b2, eps_twin, scale)


def lion_twin(lrs, wds, beta1, beta2) -> LionTwin:
    """The exact no-weight-decay twin of timm's Lion for any per-update (lr, wd) schedule:
    lr~_t = lr_t / A_{t+1}, b2' by the proportional recurrence, b1'_t = r_t / (1 + r_t),
    r_t = b1_t a_{t-1} (1 - b2_{t-1}) / ((1 - b1_t)(1 - b2'_{t-1})) (for t = 0 the same with
    a_{-1} = a_0, b2'_{-1} = b2_0 a_0: the value a constant schedule keeps)."""
    lrs, a, log_big_a = _schedule(lrs, wds)
    n = len(lrs)
    b1, b2 = _per_update(beta1, n, "beta1"), _per_update(beta2, n, "beta2")
    _check_betas("the source's beta1", b1)
    b2t = proportional_betas(b2, a)
    _check_betas("the twin's beta2", b2t)
    a_prev = np.concatenate(([a[0]], a[:-1]))
    b2_prev = np.concatenate(([b2[0]], b2[:-1]))
    b2t_prev = np.concatenate(([b2[0] * a[0]], b2t[:-1]))
    r = b1 * a_prev * (1.0 - b2_prev) / ((1.0 - b1) * (1.0 - b2t_prev))
    b1t = r / (1.0 + r)
    _check_betas("the twin's beta1", b1t)
    scale = np.exp(-log_big_a[1:])
    return LionTwin(lrs * scale, b1t, b2t, scale)


def naive_v_weight_ratio(lr: float, weight_decay: float, beta2: float) -> float:
    """q = b2 / a^2: the naive twin's v weighs the gradient k updates back by q^k against the
    current one (the source: b2^k); its bias is finite only for q < 1, i.e. a^2 > b2."""
    return beta2 / (1.0 - lr * weight_decay) ** 2


def naive_v_bias(lr: float, weight_decay: float, beta2: float, step: int | None = None) -> float:
    """Predicted v~_t / (A_t^2 v_t) of the naive twin at a constant a, for gradients of a
    stationary scale: after update `step`, sum_{k<=t} q^k / sum_{k<=t} b2^k (any q); without
    `step`, the stationary (1 - b2) / (1 - b2/a^2), and inf where a^2 <= b2 (no limit)."""
    q = naive_v_weight_ratio(lr, weight_decay, beta2)
    if beta2 == 0.0:  # both buffers hold the current gradient only
        return 1.0
    if step is None:
        return (1.0 - beta2) / (1.0 - q) if q < 1.0 else math.inf
    n = step + 1
    twin = n if q == 1.0 else math.expm1(n * math.log(q)) / (q - 1.0)
    return twin * (1.0 - beta2) / -math.expm1(n * math.log(beta2))


def naive_v_bias_growth(lr: float, weight_decay: float, beta2: float) -> float:
    """Where a^2 < b2, the factor by which the naive twin's bias of v, read in units of its own
    gradients' scale (v~ ||w~||^2), grows per update once its oldest gradients dominate v~:
    sqrt(b2) / a = sqrt(q). Then v~ ~ b2^t, and the twin's ||w~||^2, which gains
    lr~^2 / (||w~||^2 v~) per update (lr~ ~ a^-t, gradients ~ 1/||w~||), grows as
    (a sqrt(b2))^-t, not as A_t^-2 = a^-2t: its own gradients shrink more slowly than the
    exact twin's. 1 where a^2 >= b2 (the bias settles at naive_v_bias)."""
    q = naive_v_weight_ratio(lr, weight_decay, beta2)
    return math.sqrt(q) if q > 1.0 else 1.0


def naive_v_bias_first_order(lr: float, weight_decay: float, beta2: float) -> float:
    """1 / (1 - 2 lr wd b2 / (1 - b2)): naive_v_bias to first order in lr wd; inf where that
    denominator is <= 0 (a^2 <= b2 to first order)."""
    denominator = 1.0 - 2.0 * lr * weight_decay * beta2 / (1.0 - beta2)
    return 1.0 / denominator if denominator > 0 else math.inf
