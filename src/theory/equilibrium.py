"""The rotational equilibrium of scale-invariant weights under SGD with weight decay.

With normalisation the loss sees only w/||w||: the gradient g is orthogonal to w and of norm
sqrt(L)/||w|| (L the squared gradient norm at unit weights). Weight decay shrinks w, the
gradient steps push it outwards; the two balance at a norm where every update turns w by
the same angle (Wan et al., Spherical Motion Dynamics, NeurIPS 2021, Thms 2-3; Kosson et al.,
Rotational Equilibrium, ICML 2024; the intrinsic LR eta*lambda sets the clock, Li, Lyu & Arora,
NeurIPS 2020). gamma is the momentum, in PyTorch's convention (src/theory/explr.py), which is
the heavy ball's at a constant LR.

Formulas to first order in eta*lambda, as the papers state them, except where an exact one is
named. Derivations of the two relaxation formulas (checked in float64 by
tests/test_equilibrium.py on a simulated unit-norm gradient):

* x = ||w||^4 obeys x_{t+1} = (1 - eta lambda/(1-gamma))^4 x_t + const to first order (weight
  decay shrinks w by eta lambda/(1-gamma) per step once momentum has built up, the gradient
  adds a fixed amount to ||w||^2 ||w||^2): deviations from equilibrium shrink by
  1 - 4 eta lambda/(1-gamma) per step, a time constant of (1-gamma)/(4 eta lambda) updates.
  Wan et al. state the rate 1 - 2 eta lambda/(1-gamma), that of ||w||^2 under weight decay
  alone: twice this time constant.
* After the LR is divided by k, ||w||^4 must shrink k-fold (it is proportional to eta at
  equilibrium), and can shrink no faster than weight decay alone shrinks it: at least
  log(k) (1-gamma) / (4 eta' lambda) updates, eta' the new LR.
* Right after the division, PyTorch's update is exactly 1/k of what it would have been (its
  buffer holds gradients, not steps): the angle drops at once to about Delta*/k, then climbs
  to the new equilibrium Delta*/sqrt(k) as the norm shrinks. (The heavy ball's buffer holds
  steps: its angle would fall over about 1/(1-gamma) updates instead.)

Numbers in, numbers out.
"""

import math
import numbers

import numpy as np


def equilibrium_angle(intrinsic_lr: float, momentum: float) -> float:
    """Delta* = sqrt(2 eta lambda / (1 + gamma)): the angle an update turns each scale-invariant
    weight by at equilibrium (radians; Wan et al. Thm 3)."""
    return math.sqrt(2.0 * intrinsic_lr / (1.0 + momentum))


def equilibrium_angle_exact(lr: float, weight_decay: float) -> float:
    """Without momentum, exactly: at the norm where one update keeps ||w|| (g orthogonal to w,
    ||g||^2 = L/||w||^2), tan(Delta)^2 = eta lambda (2 - eta lambda) / (1 - eta lambda)^2."""
    il = lr * weight_decay
    return math.atan(math.sqrt(il * (2.0 - il)) / (1.0 - il))


def equilibrium_norm4(grad_sq: float, lr: float, weight_decay: float, momentum: float) -> float:
    """||w||^4 at equilibrium, L eta / (lambda (1-gamma) (2 - eta lambda/(1+gamma))), from
    L = E ||g~||^2 = ||w||^2 ||grad_w||^2 (Wan et al. Thm 2; exact for gamma = 0)."""
    il = lr * weight_decay
    return grad_sq * lr / (weight_decay * (1.0 - momentum) * (2.0 - il / (1.0 + momentum)))


def stationary_norm_sq(momentum_sq: float, lr: float, weight_decay: float,
                       momentum: float) -> float:
    """E||w||^2 = eta (1+gamma) E||v||^2 / (2 lambda): exact wherever the norm is stationary,
    whatever the gradients' statistics (derived under gradient_memory)."""
    return lr * (1.0 + momentum) * momentum_sq / (2.0 * weight_decay)


def gradient_memory(momentum_sq: float, grad_sq: float, momentum: float,
                    dampening: float = 0.0) -> float:
    """M = (1 - gamma^2) E||v||^2 / ((1 - d)^2 E||g||^2) for a buffer v <- gamma v + (1 - d) g:
    1 for gradients uncorrelated across updates (to first order in eta lambda), above 1 when
    successive gradients agree, below when they alternate; the memory over the buffer's window
    of about 1 / (1 - gamma) updates. SGD's momentum buffer has d = 0 (and also holds lambda w);
    AdamW's and Lion's exp_avg are averages, d = gamma = beta1 under AdamW, beta2 under Lion.

    Under SGD, at a stationary norm, whatever the gradients' statistics, E||w||^2 = eta (1+gamma)
    E||v||^2 / (2 lambda) exactly: from ||w_{t+1}||^2 = ||w_t||^2 - 2 eta <w_t, v_t> +
    eta^2 ||v_t||^2 and <w_t, v_t> = gamma (<w_{t-1}, v_{t-1}> - eta ||v_{t-1}||^2) +
    lambda ||w_t||^2 (g orthogonal to w). With L = ||w||^2 ||g||^2 this gives ||w||^4 =
    M (1 - eta lambda / (2 (1+gamma))) times equilibrium_norm4: Thm 2 is the case M = 1. The
    angle is not moved by M: an update turns w by about eta ||v|| / ||w||, and eta^2 E||v||^2 /
    E||w||^2 = 2 eta lambda / (1 + gamma) = Delta*^2 whatever M is. AdamW's and Lion's updates
    are not proportional to the gradients, their norms are set by how the updates add up
    (Q below), and their predicted angles take the gradients as uncorrelated: M = 1."""
    return (1.0 - momentum * momentum) * momentum_sq / ((1.0 - dampening) ** 2 * grad_sq)


def relaxation_steps(intrinsic_lr: float, momentum: float) -> float:
    """(1-gamma) / (4 eta lambda): updates for a deviation from equilibrium to shrink e-fold."""
    return (1.0 - momentum) / (4.0 * intrinsic_lr)


def relaxation_steps_decoupled(intrinsic_lr: float) -> float:
    """1 / (2 eta lambda): updates for a deviation of ||w||^2 from equilibrium to shrink e-fold
    under AdamW or Lion, whose updates do not scale with ||w||: ||w||^2 <- a^2 ||w||^2 + const,
    a = 1 - eta lambda."""
    return 1.0 / (2.0 * intrinsic_lr)


def steps_after_division(k: float, intrinsic_lr: float, momentum: float) -> float:
    """log(k) (1-gamma) / (4 eta' lambda): the fewest updates to the new equilibrium after the
    LR is divided by k, eta' lambda the new intrinsic LR."""
    return math.log(k) * relaxation_steps(intrinsic_lr, momentum)


# AdamW and Lion: decoupled decay, w <- a w - lr u with a = 1 - lr wd and u the update before
# the LR. Per element let R(k) = E[u_t u_{t+k}] (gradients uncorrelated across updates, w at
# equilibrium). Unrolled, w_t = a^t w_0 - lr sum_s a^(t-1-s) u_s, so on average
#     ||w||^2 = lr^2 C Q / (1 - a^2),   Q = sum_{k=-inf..inf} a^|k| R(k)   (C elements):
# each gradient adds its total displacement over all the updates it enters. One update turns w
# by about lr ||u|| / ||w||, so Delta^2 = (1 - a^2) R(0) / Q. As lr wd -> 0 (1 - a^2 -> 2 lr wd)
# these are Kosson et al.'s formulas (Rotational Equilibrium, ICML 2024):
# * AdamW, u = m / sqrt(v), v = E g^2 (eps << sqrt(v)): R(k) = (1-b1) b1^|k| / (1+b1), Q = 1:
#   ||w||^2 = lr C / (2 wd), Delta = sqrt(2 lr wd (1-b1)/(1+b1)).
# * Lion, u = sign(x), x_t = (1-b1) g_t + b1 (1-b2) sum_{j>=1} b2^(j-1) g_{t-j}: R(0) = 1.
#   Var x = S E g^2, S = (1-b1)^2 + b1^2 (1-b2)/(1+b2); corr(x_t, x_{t+k}) = rho_1 b2^(k-1),
#   rho_1 = b1 (1-b2) ((1-b1) + b1 b2/(1+b2)) / S. Linearising the sign, sign(x) ~ sqrt(2/pi)
#   x / sigma, gives R(k) = (2/pi) rho_k and, as x's weights sum to 1, Q = 2 / (pi S):
#   Delta = sqrt(pi lr wd S) = sqrt(pi/2) sqrt(2 lr wd) sqrt(S), ||w||^2 = lr C / (pi wd S).
# That linearisation is an approximation. For Gaussian x the arcsine law gives R(k) = (2/pi)
# arcsin(rho_k) exactly: the linear form misses 1 - 2/pi at lag 0 and the cubic terms of
# arcsin at large rho. It overestimates Delta by 0.75 % at (b1, b2) = (0.9, 0.99), 0.3 % at
# (0.9, 0.999), 7 % at (0.5, 0.9) and sqrt(pi/2) = 25 % at (0, 0), where u = sign(g) has no
# memory and Delta = sqrt(2 lr wd).
# Both first-order forms also drop the decay during the memory of the buffers (a^|k| in Q) and
# the update's lean against w (u_t shares gradients with the updates already inside w_t): small
# for AdamW (0.1 % in Delta at lr wd = 4e-3), but for Lion of order lr wd / (1 - b2): at
# (0.9, 0.99) its Delta is 2.8 % too low at lr wd = 1e-3 and 12 % at 4e-3 (the two errors
# cancel near lr wd = 2e-4). The *_refined functions keep a and the lean (and Lion's arcsine).


def equilibrium_angle_adamw(lr: float, weight_decay: float, beta1: float) -> float:
    """sqrt(2 lr wd (1-b1)/(1+b1)): AdamW's angle per update at equilibrium (Kosson et al.;
    first order in lr wd, Adam's v taken as E g^2, eps << sqrt(v))."""
    return math.sqrt(2.0 * lr * weight_decay * (1.0 - beta1) / (1.0 + beta1))


def equilibrium_norm_sq_adamw(lr: float, weight_decay: float, numel: int) -> float:
    """lr C / (2 wd): ||w||^2 of a scale-invariant AdamW weight of C elements at equilibrium,
    whatever the gradients' scale (each element's normalised update has RMS 1)."""
    return lr * numel / (2.0 * weight_decay)


def equilibrium_angle_adamw_refined(lr: float, weight_decay: float, beta1: float) -> float:
    """AdamW's angle with the decay a = 1 - lr wd kept and the update's lean against w counted
    (refined_angle)."""
    a = 1.0 - lr * weight_decay
    q = (1.0 - beta1) * (1.0 + a * beta1) / ((1.0 + beta1) * (1.0 - a * beta1))
    return refined_angle(a, (1.0 - beta1) / (1.0 + beta1), q)


def equilibrium_norm_sq_adamw_refined(lr: float, weight_decay: float, beta1: float,
                                      numel: int) -> float:
    """lr^2 C Q / (1 - a^2), Q = (1-b1)(1 + a b1) / ((1+b1)(1 - a b1))."""
    a = 1.0 - lr * weight_decay
    q = (1.0 - beta1) * (1.0 + a * beta1) / ((1.0 + beta1) * (1.0 - a * beta1))
    return lr * lr * numel * q / (1.0 - a * a)


def refined_angle(a: float, r0: float, q: float) -> float:
    """The angle of w -> a w - lr u at ||w||^2 = lr^2 C q / (1 - a^2), ||u||^2 = C r0, with u
    leaning against w: <u_t, w_t> = -lr C sum_{k>=1} a^(k-1) R(k) = -lr C (q - r0) / (2a), from
    the earlier updates inside w_t. In units of ||w||^2, lean = lr |<u, w>| / ||w||^2 =
    (1 - a^2)(q - r0) / (2 a q) and tan Delta = sqrt((1 - a^2) r0 / q - lean^2) / (a + lean)
    (terms of order 1/C dropped)."""
    f = 1.0 - a * a
    lean = f * (q - r0) / (2.0 * a * q)
    return math.atan(math.sqrt(f * r0 / q - lean * lean) / (a + lean))


def lion_sign_variance(beta1: float, beta2: float) -> float:
    """S = (1-b1)^2 + b1^2 (1-b2)/(1+b2): Var(b1 m + (1-b1) g) / E g^2 for uncorrelated g."""
    return (1.0 - beta1) ** 2 + beta1**2 * (1.0 - beta2) / (1.0 + beta2)


def lion_displacement_factor(beta1: float, beta2: float, decay: float = 1.0,
                             linearised: bool = False) -> float:
    """Q = sum_k decay^|k| E[u_t u_{t+k}] per element of Lion's update u = sign(x): by the
    arcsine law for Gaussian x, or linearised (2/pi) rho_k (then 2/(pi S) at decay 1)."""
    s = lion_sign_variance(beta1, beta2)
    rho1 = beta1 * (1.0 - beta2) * ((1.0 - beta1) + beta1 * beta2 / (1.0 + beta2)) / s
    # sum_{k>=1} decay^k arcsin(rho_k): its linear part in closed form, arcsin(rho) - rho
    # (~ rho^3/6) term by term while rho_k > 1e-6 (the rest is below 1e-18)
    linear_tail = rho1 * decay / (1.0 - decay * beta2)
    if linearised:
        return (2.0 / math.pi) * (1.0 + 2.0 * linear_tail)
    if rho1 <= 1e-6:
        n = 0
    elif beta2 == 0.0:
        n = 1
    else:
        n = max(1, math.ceil(math.log(1e-6 / rho1) / math.log(beta2)) + 1)
    k = np.arange(1, n + 1)
    rho = rho1 * beta2 ** (k - 1.0)
    cubic = float(np.sum(decay**k * (np.arcsin(rho) - rho)))
    return 1.0 + (4.0 / math.pi) * (linear_tail + cubic)


def equilibrium_angle_lion(lr: float, weight_decay: float, beta1: float, beta2: float) -> float:
    """sqrt(pi/2) sqrt(2 lr wd) sqrt(S): Lion's angle per update at equilibrium as Kosson et al.
    give it (first order in lr wd, the sign linearised: see above for where it is off)."""
    return math.sqrt(math.pi * lr * weight_decay * lion_sign_variance(beta1, beta2))


def equilibrium_norm_sq_lion(lr: float, weight_decay: float, beta1: float, beta2: float,
                             numel: int) -> float:
    """lr C / (pi wd S): ||w||^2 of a scale-invariant Lion weight at equilibrium, by the same
    linearisation (Delta^2 = lr^2 C / ||w||^2)."""
    return lr * numel / (math.pi * weight_decay * lion_sign_variance(beta1, beta2))


def equilibrium_angle_lion_refined(lr: float, weight_decay: float, beta1: float,
                                   beta2: float) -> float:
    """Lion's angle by the arcsine law, with a = 1 - lr wd kept and the update's lean against w
    counted (refined_angle)."""
    a = 1.0 - lr * weight_decay
    return refined_angle(a, 1.0, lion_displacement_factor(beta1, beta2, a))


def equilibrium_norm_sq_lion_refined(lr: float, weight_decay: float, beta1: float,
                                     beta2: float, numel: int) -> float:
    """lr^2 C Q / (1 - a^2), Q by the arcsine law with the decay a kept."""
    a = 1.0 - lr * weight_decay
    return lr * lr * numel * lion_displacement_factor(beta1, beta2, a) / (1.0 - a * a)


def predicted_angle(optimizer_kind: str, lr: float, weight_decay: float, momentum_or_betas,
                    refined: bool = False) -> float:
    """The equilibrium angle per update for 'sgd' (momentum: a float), 'adamw' or 'lion'
    (betas: a pair); refined: AdamW's and Lion's *_refined (SGD has one formula here)."""
    if optimizer_kind == "sgd":
        if not isinstance(momentum_or_betas, numbers.Real):
            raise ValueError(f"sgd takes one momentum, got {momentum_or_betas!r}")
        return equilibrium_angle(lr * weight_decay, float(momentum_or_betas))
    if optimizer_kind not in ("adamw", "lion"):
        raise ValueError(f"optimizer_kind must be 'sgd', 'adamw' or 'lion', got {optimizer_kind!r}")
    try:
        beta1, beta2 = (float(b) for b in momentum_or_betas)
    except (TypeError, ValueError):
        raise ValueError(f"{optimizer_kind} takes betas (beta1, beta2), got "
                         f"{momentum_or_betas!r}") from None
    if optimizer_kind == "adamw":
        angle = equilibrium_angle_adamw_refined if refined else equilibrium_angle_adamw
        return angle(lr, weight_decay, beta1)
    angle = equilibrium_angle_lion_refined if refined else equilibrium_angle_lion
    return angle(lr, weight_decay, beta1, beta2)
