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

from src.theory.equivalence import Rescaling, exact_ratios, momenta, quasi_static_ratios, twin

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
    groups: dict[str, GroupSchedule]

    def apply(self, optimizer, step: int, scale: float = 1.0) -> None:
        """Set each group's LR and weight decay for update `step`. The scale-invariant group's
        weights may have been renormalised by `scale` (src/optim/renormalize.py): its LR is
        then scale^2 times the schedule's and its weight decay 1/scale^2 times."""
        for group in optimizer.param_groups:
            rule = self.groups[group["name"]]
            r = Rescaling(scale if group["name"] == "scale_invariant" else 1.0)
            group["lr"] = float(rule.lr[step]) * r.lr
            group["weight_decay"] = float(rule.weight_decay[step]) * r.weight_decay


def step_decay_factor(step: int, milestones: list[int], factor: float) -> float:
    """factor ** (number of milestones passed); milestones are optimizer steps."""
    return factor ** bisect.bisect_right(milestones, step)


def cosine_factor(step: int, total_steps: int, final_ratio: float = 0.0) -> float:
    progress = min(step / max(total_steps, 1), 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def plain_factors(cfg, name: str, steps_per_epoch: int, total_steps: int) -> np.ndarray:
    """The multiplier of the base LR at every step for constant, step and cosine."""
    steps = range(total_steps)
    if name == "constant":
        return np.ones(total_steps)
    if name == "step":
        milestones = [round(epoch * steps_per_epoch) for epoch in cfg.milestones]
        return np.array([step_decay_factor(t, milestones, cfg.factor) for t in steps])
    if name == "cosine":
        return np.array([cosine_factor(t, total_steps, cfg.final_ratio) for t in steps])
    raise ValueError(f"schedule.base={name!r}: choose one of {', '.join(PLAIN)}")


def build_schedule(cfg, opt, steps_per_epoch: int, total_steps: int) -> Schedule:
    """cfg: the `schedule` config; opt: the `optimizer` config (base LRs, WD, momentum)."""
    base = cfg.name if cfg.name in PLAIN else cfg.get("base") or BASE_OF[cfg.name]
    factors = plain_factors(cfg, base, steps_per_epoch, total_steps)
    rest = GroupSchedule(opt.rest_lr * factors, np.full(total_steps, opt.rest_weight_decay))
    lrs, wds = opt.lr * factors, np.full(total_steps, float(opt.weight_decay))
    if cfg.name in PLAIN:
        return Schedule({"scale_invariant": GroupSchedule(lrs, wds, intrinsic_lr=lrs * wds),
                         "rest": rest})

    zeros = np.zeros(total_steps)
    if cfg.name == "instant_decay":
        # ExpLR of the first phase, divided at the milestones; its exponent never changes.
        first = np.full(total_steps, float(opt.lr))
        lr_exp, _, _ = twin(first, wds, momenta(first, opt.momentum),
                            quasi_static_ratios(first, wds, opt.momentum))
        return Schedule({"scale_invariant": GroupSchedule(lr_exp * factors, zeros), "rest": rest})

    m = momenta(lrs, opt.momentum)
    exact = cfg.name == "equivalent" and cfg.momentum_correction
    r = exact_ratios(lrs, wds, m) if exact else quasi_static_ratios(lrs, wds, opt.momentum)
    lr_twin, kappa, scale = twin(lrs, wds, m, r)
    if exact or not cfg.momentum_correction:
        kappa = zeros  # exact ratios make kappa zero up to rounding: no weight decay at all
    return Schedule({"scale_invariant": GroupSchedule(lr_twin, kappa, scale, lrs * wds),
                     "rest": rest})
