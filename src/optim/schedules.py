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

With AdamW or Lion (src/theory/adaptive.py) exp, texp and equivalent are each the exact twin
of their base schedule: no weight decay, and per-update betas (and AdamW's eps) besides the
LR; momentum_correction=false gives the naive twin, which keeps the betas.
"""

import bisect
import math
from dataclasses import dataclass

import numpy as np

from src.theory.adaptive import adamw_naive_twin, adamw_twin, lion_twin
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
    # AdamW's and Lion's exact twins: (beta1, beta2) of every update, and AdamW's eps
    betas: np.ndarray | None = None
    eps: np.ndarray | None = None


@dataclass(frozen=True)
class Schedule:
    """A table of every update's settings for each parameter group, by group name: what
    src/optim/scheduler.py's LRScheduler sets before each update."""
    groups: dict[str, GroupSchedule]
    spec: "OptimizerSpec" = None  # the optimizer it is for

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


def schedule_table(name: str, groups: dict[str, tuple[float, float]], spec: "OptimizerSpec",
                   total_steps: int, *, base: str | None = None, milestones=(),
                   factor: float = 0.1, final_ratio: float = 0.0,
                   momentum_correction: bool = True) -> Schedule:
    """Every update's settings of each group. groups: name -> (base LR, weight decay); spec:
    the optimizer the table is for; the twins replace the weight decay of `scale_invariant`
    (the others follow the base schedule with weight decay); milestones in updates; base: the
    plain schedule that `equivalent` is the exact twin of."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps}: a schedule needs at least one update")
    if name == "equivalent":
        if base not in PLAIN:
            raise ValueError(f"equivalent needs base= one of {', '.join(PLAIN)}, not {base!r}")
    elif base is not None and base != (name if name in PLAIN else BASE_OF[name]):
        raise ValueError(f"schedule {name!r} has its own base; base= is equivalent's")
    base = name if name in PLAIN else base or BASE_OF[name]
    factors = plain_factors(base, total_steps, milestones, factor, final_ratio)
    table = {group: GroupSchedule(lr * factors, np.full(total_steps, float(wd)))
             for group, (lr, wd) in groups.items()}
    if "scale_invariant" not in groups:
        return Schedule(table, spec)
    lr, wd = groups["scale_invariant"]
    lrs, wds = lr * factors, np.full(total_steps, float(wd))
    if name in PLAIN:  # AdamW's eps as a row: the overflow guard rescales it with the weights
        eps = np.full(total_steps, float(spec.eps)) if spec.kind == "adamw" else None
        twin_rule = GroupSchedule(lrs, wds, intrinsic_lr=lrs * wds, eps=eps)
    elif spec.kind == "sgd":
        twin_rule = _sgd_twin(name, lr, lrs, wds, factors, spec.momentum, momentum_correction)
    elif name == "instant_decay":
        raise ValueError("instant_decay is paper A's ablation of SGD's ExpLR: use optimizer=sgd")
    else:
        twin_rule = _adaptive_twin(spec, lrs, wds, exact=momentum_correction)
    table["scale_invariant"] = twin_rule
    return Schedule(table, spec)


def _sgd_twin(name, lr, lrs, wds, factors, momentum, momentum_correction) -> GroupSchedule:
    """Paper A's twins of SGD with momentum (src/theory/equivalence.py)."""
    zeros = np.zeros(len(lrs))
    if name == "instant_decay":
        # ExpLR of the first phase, divided at the milestones; its exponent never changes.
        first = np.full(len(lrs), float(lr))
        lr_exp, _, _ = twin(first, wds, momenta(first, momentum),
                            quasi_static_ratios(first, wds, momentum))
        return GroupSchedule(lr_exp * factors, zeros)
    m = momenta(lrs, momentum)
    exact = name == "equivalent" and momentum_correction
    r = exact_ratios(lrs, wds, m) if exact else quasi_static_ratios(lrs, wds, momentum)
    lr_twin, kappa, scale = twin(lrs, wds, m, r)
    if exact or not momentum_correction:
        kappa = zeros  # exact ratios make kappa zero up to rounding: no weight decay at all
    return GroupSchedule(lr_twin, kappa, scale, lrs * wds)


def _adaptive_twin(spec, lrs, wds, exact: bool) -> GroupSchedule:
    """The no-weight-decay twins of AdamW and Lion (src/theory/adaptive.py): exact, with
    per-update betas (and AdamW's eps); or naive (exact=False), the betas kept."""
    beta1, beta2 = spec.betas
    if spec.kind == "adamw":
        tw = (adamw_twin if exact else adamw_naive_twin)(lrs, wds, beta1, beta2, spec.eps)
        eps = tw.eps
    else:
        tw = lion_twin(lrs, wds, beta1, beta2)
        eps = None
        if not exact:  # the same LRs, the source's betas
            tw = tw._replace(beta1=np.full(len(lrs), beta1), beta2=np.full(len(lrs), beta2))
    return GroupSchedule(tw.lr, np.zeros(len(lrs)), tw.scale, lrs * wds,
                         betas=np.column_stack([tw.beta1, tw.beta2]), eps=eps)


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer a table is for: its kind and the hyperparameters its twins depend on."""
    kind: str = "sgd"                           # sgd | adamw | lion
    momentum: float = 0.0                       # sgd
    betas: tuple[float, float] = (0.9, 0.999)   # adamw, lion
    eps: float = 0.0                            # adamw

    @property
    def momentum_or_betas(self):
        return self.momentum if self.kind == "sgd" else self.betas


def spec_of(opt) -> OptimizerSpec:
    """The `optimizer` config's spec (optimizer.name: sgd, adamw or lion)."""
    kind = opt.get("name", "sgd")
    if kind == "sgd":
        return OptimizerSpec(kind, momentum=opt.momentum)
    return OptimizerSpec(kind, betas=tuple(opt.betas), eps=opt.get("eps", 0.0))


def build_schedule(cfg, opt, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The table of a run's config. cfg: the `schedule` config (milestones in epochs); opt:
    the `optimizer` config (its kind, base LRs, weight decays, momentum or betas)."""
    return schedule_table(
        cfg.name, {"scale_invariant": (opt.lr, opt.weight_decay),
                   "rest": (opt.rest_lr, opt.rest_weight_decay)},
        spec_of(opt), total_steps, base=cfg.get("base"),
        milestones=[round(epoch * steps_per_epoch) for epoch in cfg.get("milestones", ())],
        factor=cfg.get("factor", 0.1), final_ratio=cfg.get("final_ratio", 0.0),
        momentum_correction=cfg.get("momentum_correction", True))
