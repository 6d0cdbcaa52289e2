"""Paper A: weight decay on a scale-invariant loss <-> an exponentially growing learning rate.

SGD with momentum gamma, learning rate eta and weight decay lambda (PyTorch's convention,
v_t = gamma v_{t-1} + grad + lambda theta, theta_t = theta_{t-1} - eta v_t) is equivalent to
the same SGD without weight decay and with learning rate eta * alpha^(-2t-1) at update t, where
alpha is the larger root of x^2 - (1 + gamma - lambda eta) x + gamma = 0: the weights satisfy
theta~_t = alpha^(-t) theta_t, so the network functions coincide (paper A's main theorem).

Numbers in, numbers out: no tensors, no training loop.
"""

import math


class NoRealAlpha(ValueError):
    """lambda * eta is too large for the quadratic to have a positive real root."""


def alpha_condition(lr: float, weight_decay: float, momentum: float) -> float:
    """The largest lr * weight_decay with a real alpha: (1 - sqrt(gamma))^2."""
    return (1.0 - math.sqrt(momentum)) ** 2


def alpha_roots(lr: float, weight_decay: float, momentum: float) -> tuple[float, float]:
    """Both roots (larger, smaller) of x^2 - (1 + gamma - lambda eta) x + gamma = 0.

    Raises NoRealAlpha unless lambda eta <= (1 - sqrt(gamma))^2 and the larger root is > 0.
    """
    product, bound = lr * weight_decay, alpha_condition(lr, weight_decay, momentum)
    if product > bound or product >= 1.0:
        raise NoRealAlpha(
            f"lr * weight_decay = {product:.6g} must be at most (1 - sqrt(momentum))^2 = "
            f"{bound:.6g} (and below 1) for the exponential schedule to exist"
        )
    b = 1.0 + momentum - product
    # b^2 - 4 gamma = (b - 2 sqrt(gamma)) (b + 2 sqrt(gamma)), and b - 2 sqrt(gamma) is the
    # slack bound - product: no cancellation, even when the roots nearly coincide.
    larger = 0.5 * (b + math.sqrt((bound - product) * (b + 2.0 * math.sqrt(momentum))))
    # The product of the roots is gamma: dividing avoids cancellation in b - sqrt(...).
    return larger, momentum / larger


def alpha_star(lr: float, weight_decay: float, momentum: float) -> float:
    """The larger root: the attracting fixed point, and the one the paper's 1.481/epoch needs."""
    return alpha_roots(lr, weight_decay, momentum)[0]


def exp_lr(step: int, lr: float, alpha: float) -> float:
    """The learning rate of update `step` (0-based) of the no-weight-decay process."""
    return lr * alpha ** (-2 * step - 1)


def exp_lr_growth(alpha: float, steps: int) -> float:
    """Factor by which the exponential learning rate grows over `steps` updates."""
    return alpha ** (-2 * steps)

