"""Learning rate and weight decay of each parameter group at every optimizer step.

Plain schedules (constant, step, cosine) multiply the base LR of both groups. The others are
paper A's no-weight-decay twins of a plain schedule run with weight decay, for the
scale-invariant group (src/theory/equivalence.py):

* exp:           the twin of constant (ExpLR: lr alpha^(-2t-1));
* texp:          the twin of step decay with each phase's own alpha (TEXP);
* equivalent:    the exact twin of any plain schedule (`schedule.base`), no weight decay at all
                 (with momentum_correction=false: TEXP's per-step alpha, uncorrected);
* instant_decay: ExpLR whose LR is also divided at the milestones, exponent unchanged (the
                 paper's ablation; not equivalent to anything).

The momentum correction of exp/texp is weight decay kappa_t on the few updates where it is not
zero (the first, and the first of each phase). The other parameters cannot be converted, so
they follow the imitated process: the base schedule with weight decay.
"""

import bisect
import math
from dataclasses import dataclass

import numpy as np

from src.theory.equivalence import exact_ratios, momenta, quasi_static_ratios, twin

PLAIN = ("constant", "step", "cosine")
SCHEDULES = PLAIN + ("exp", "texp", "equivalent", "instant_decay")
BASE_OF = {"exp": "constant", "texp": "step", "instant_decay": "step"}


@dataclass(frozen=True)
class GroupSchedule:
    lr: np.ndarray            # lr[t]: the LR of update t (0-based)
    weight_decay: np.ndarray
    # A twin's c: after update t its weights are scale[t] times those of the process it
    # imitates (exactly so when corrected). None for plain schedules.
    scale: np.ndarray | None = None
    # eta*lambda of the process with weight decay that these updates are, or imitate (a twin's
    # source): the clock of the rotational equilibrium (src/theory/equilibrium.py). None where
    # the updates are equivalent to no such process (instant_decay).
    intrinsic_lr: np.ndarray | None = None


@dataclass(frozen=True)
class Schedule:
    """A table of every update's settings for each parameter group, by group name: what
    src/optim/scheduler.py's LRScheduler sets before each update."""
    groups: dict[str, GroupSchedule]

    @property
    def total_steps(self) -> int:
        return len(next(iter(self.groups.values())).lr)


def step_decay_factor(step: int, milestones: list[int], factor: float) -> float:
    """factor ** (number of milestones passed); milestones are optimizer steps."""
    return factor ** bisect.bisect_right(milestones, step)


def cosine_factor(step: int, total_steps: int, final_ratio: float = 0.0) -> float:
    progress = min(step / max(total_steps, 1), 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def plain_factors(name: str, total_steps: int, milestones=(), factor: float = 0.1,
                  final_ratio: float = 0.0) -> np.ndarray:
    """The multiplier of the base LR at every update for constant, step (milestones in
    updates) and cosine."""
    steps = range(total_steps)
    if name == "constant":
        return np.ones(total_steps)
    if name == "step":
        return np.array([step_decay_factor(t, list(milestones), factor) for t in steps])
    if name == "cosine":
        return np.array([cosine_factor(t, total_steps, final_ratio) for t in steps])
    raise ValueError(f"schedule.base={name!r}: choose one of {', '.join(PLAIN)}")


def schedule_table(name: str, groups: dict[str, tuple[float, float]], momentum: float,
                   total_steps: int, *, base: str | None = None, milestones=(),
                   factor: float = 0.1, final_ratio: float = 0.0,
                   momentum_correction: bool = True) -> Schedule:
    """Every update's LR and weight decay of each group. groups: name -> (base LR, weight
    decay); the twins replace the weight decay of `scale_invariant` (the others follow the
    base schedule with weight decay); milestones in updates; base: the plain schedule that
    `equivalent` is the exact twin of."""
    base = name if name in PLAIN else base or BASE_OF[name]
    factors = plain_factors(base, total_steps, milestones, factor, final_ratio)
    table = {group: GroupSchedule(lr * factors, np.full(total_steps, float(wd)))
             for group, (lr, wd) in groups.items()}
    if name in PLAIN or "scale_invariant" not in groups:
        if "scale_invariant" in table:
            si = table["scale_invariant"]
            table["scale_invariant"] = GroupSchedule(si.lr, si.weight_decay,
                                                     intrinsic_lr=si.lr * si.weight_decay)
        return Schedule(table)
    lr, wd = groups["scale_invariant"]
    lrs, wds, zeros = lr * factors, np.full(total_steps, float(wd)), np.zeros(total_steps)
    if name == "instant_decay":
        # ExpLR of the first phase, divided at the milestones; its exponent never changes.
        first = np.full(total_steps, float(lr))
        lr_exp, _, _ = twin(first, wds, momenta(first, momentum),
                            quasi_static_ratios(first, wds, momentum))
        table["scale_invariant"] = GroupSchedule(lr_exp * factors, zeros)
        return Schedule(table)
    m = momenta(lrs, momentum)
    exact = name == "equivalent" and momentum_correction
    r = exact_ratios(lrs, wds, m) if exact else quasi_static_ratios(lrs, wds, momentum)
    lr_twin, kappa, scale = twin(lrs, wds, m, r)
    if exact or not momentum_correction:
        kappa = zeros  # exact ratios make kappa zero up to rounding: no weight decay at all
    table["scale_invariant"] = GroupSchedule(lr_twin, kappa, scale, lrs * wds)
    return Schedule(table)


def build_schedule(cfg, opt, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The table of a run's config. cfg: the `schedule` config (milestones in epochs); opt:
    the `optimizer` config (base LRs, weight decays, momentum)."""
    return schedule_table(
        cfg.name, {"scale_invariant": (opt.lr, opt.weight_decay),
                   "rest": (opt.rest_lr, opt.rest_weight_decay)},
        opt.momentum, total_steps, base=cfg.get("base"),
        milestones=[round(epoch * steps_per_epoch) for epoch in cfg.get("milestones", ())],
        factor=cfg.get("factor", 0.1), final_ratio=cfg.get("final_ratio", 0.0),
        momentum_correction=cfg.get("momentum_correction", True))
