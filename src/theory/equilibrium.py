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


def relaxation_steps(intrinsic_lr: float, momentum: float) -> float:
    """(1-gamma) / (4 eta lambda): updates for a deviation from equilibrium to shrink e-fold."""
    return (1.0 - momentum) / (4.0 * intrinsic_lr)


def steps_after_division(k: float, intrinsic_lr: float, momentum: float) -> float:
    """log(k) (1-gamma) / (4 eta' lambda): the fewest updates to the new equilibrium after the
    LR is divided by k, eta' lambda the new intrinsic LR."""
    return math.log(k) * relaxation_steps(intrinsic_lr, momentum)
