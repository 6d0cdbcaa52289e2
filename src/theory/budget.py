"""Budgets by intrinsic time: a paper's run in k times fewer updates, the same in units of ηλ.

Paper C: with normalisation, the dynamics depend on η and λ mostly through the intrinsic LR
ηλ; equilibria settle in about 1/(ηλ) updates. Keeping η and the momentum γ, multiplying λ by
k and dividing every length counted in updates (the run, each milestone) by k keeps ηλ·T, the
number of phases and each phase's length in units of 1/(ηλ), up to the rounding of each length
to a whole update (at most half an update, i.e. ηkλ/2 of intrinsic time).

The exponential LR equivalent to the mapped run exists while ηkλ <= (1 - √γ)² (paper A's
condition, src/theory/explr.py): that bounds k.

Numbers in, numbers out.
"""

import math

from src.theory.explr import alpha_condition


def to_updates(paper_updates: float, k: float) -> int:
    """paper_updates / k rounded to the nearest whole update (halves up)."""
    return math.floor(paper_updates / k + 0.5)


def intrinsic_time(lr: float, weight_decay: float, updates: float) -> float:
    """ηλT: the run's length in units of 1/(ηλ)."""
    return lr * weight_decay * updates


def largest_factor(lr: float, weight_decay: float, momentum: float) -> float:
    """The largest k with ηkλ <= (1 - √γ)²; inf without weight decay (nothing to exist)."""
    if weight_decay == 0:
        return math.inf
    return alpha_condition(lr, weight_decay, momentum) / (lr * weight_decay)


def mapped_lengths(epochs: float, milestones, steps_per_epoch: int, k: float,
                   ) -> tuple[int, list[int]]:
    """(run length, milestones) in updates of the mapped run, from the paper's lengths in
    epochs of steps_per_epoch updates."""
    return (to_updates(epochs * steps_per_epoch, k),
            [to_updates(m * steps_per_epoch, k) for m in milestones])


def phases_kept(paper_total: float, paper_milestones, total: int, milestones) -> bool:
    """The mapped run has the paper's phases: its milestones are distinct updates after the
    first, and the same of them fall inside the run (none lost to, or gained by, rounding)."""
    distinct = all(a < b for a, b in zip([0, *milestones], milestones, strict=False))
    inside = [m < paper_total for m in paper_milestones] == [m < total for m in milestones]
    return total >= 1 and distinct and inside
