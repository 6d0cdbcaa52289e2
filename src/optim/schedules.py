"""Learning-rate schedules as pure functions of the optimizer step, one per parameter group.

The scale-invariant group follows the configured schedule. `exp` is the theorem's replacement
of constant LR + weight decay on that group; the other parameters cannot be converted, so they
keep the process being imitated: constant LR with weight decay.
"""

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

from src.theory.explr import alpha_star, exp_lr, initial_buffer_scale

SCHEDULES = ("constant", "step", "cosine", "exp")


@dataclass(frozen=True)
class GroupSchedule:
    lr: Callable[[int], float]
    weight_decay: float


@dataclass(frozen=True)
class Schedule:
    groups: dict[str, GroupSchedule]
    # v~_0 = k * theta_0 for the scale-invariant group (exp only; None means zero buffers).
    initial_buffer_scale: float | None = None

    def apply(self, optimizer, step: int) -> None:
        for group in optimizer.param_groups:
            rule = self.groups[group["name"]]
            group["lr"] = rule.lr(step)
            group["weight_decay"] = rule.weight_decay


def step_decay_factor(step: int, milestones: list[int], factor: float) -> float:
    """factor ** (number of milestones passed); milestones are optimizer steps."""
    return factor ** bisect.bisect_right(milestones, step)


def cosine_factor(step: int, total_steps: int, final_ratio: float = 0.0) -> float:
    progress = min(step / max(total_steps, 1), 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(cfg, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the base LR at each step for constant, step and cosine."""
    if cfg.name == "constant":
        return lambda step: 1.0
    if cfg.name == "step":
        milestones = [int(epoch * steps_per_epoch) for epoch in cfg.milestones]
        return lambda step: step_decay_factor(step, milestones, cfg.factor)
    if cfg.name == "cosine":
        return lambda step: cosine_factor(step, total_steps, cfg.final_ratio)
    raise ValueError(f"schedule.name={cfg.name!r}: choose one of {', '.join(SCHEDULES)}")


def build_schedule(cfg, optimizer_cfg, steps_per_epoch: int, total_steps: int) -> Schedule:
    opt = optimizer_cfg
    rest = GroupSchedule(lambda step: opt.rest_lr, opt.rest_weight_decay)
    if cfg.name == "exp":
        alpha = alpha_star(opt.lr, opt.weight_decay, opt.momentum)
        scale = initial_buffer_scale(opt.lr, alpha) if cfg.momentum_correction else None
        si = GroupSchedule(lambda step: exp_lr(step, opt.lr, alpha), 0.0)
        return Schedule({"scale_invariant": si, "rest": rest}, scale)
    factor = lr_factor(cfg, steps_per_epoch, total_steps)
    si = GroupSchedule(lambda step: opt.lr * factor(step), opt.weight_decay)
    rest = GroupSchedule(lambda step: opt.rest_lr * factor(step), opt.rest_weight_decay)
    return Schedule({"scale_invariant": si, "rest": rest})
