"""The schedules as torch LR schedulers: each update's LR and weight decay of every parameter
group, set from the tables of src/optim/schedules.py (the ones `python -m src.train` uses).

Torch's conventions hold: constructing a scheduler sets the values of update 0; call
`scheduler.step()` after each `optimizer.step()`; `last_epoch` is the index of the next update;
`state_dict()` / `load_state_dict()` resume it (the table itself is rebuilt from the
arguments, not saved). Groups are matched by their `name` (invariant_sets(...) names them
`scale_invariant` and `rest`); the base LR and weight decay of each are read from the optimizer
when the scheduler is made, as torch's schedulers read `initial_lr`.

The overflow guard (src/optim/renormalize.py) may hold the scale-invariant weights at `scale`
times those of the process: their LR is then scale^2 times the table's and their weight decay
1/scale^2 times under SGD (paper A's scaling lemma), scale and 1/scale (and eps 1/scale) under
AdamW and Lion (src/theory/adaptive.py), which `rescale` applies.

With torch's AdamW or timm's Lion, ExpLR, TEXP and TwinLR are their exact twins: the
scheduler sets each update's betas (and AdamW's eps) too.
"""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from src.optim.schedules import OptimizerSpec, Schedule, schedule_table
from src.theory.adaptive import state_scaling

SCALE_INVARIANT = "scale_invariant"
# the optimizers whose twins the package derives, by class: torch's SGD and AdamW, timm's Lion
KINDS = {"SGD": "sgd", "ProjectedSGD": "sgd", "AdamW": "adamw", "Lion": "lion"}


def optimizer_kind(optimizer: Optimizer) -> str:
    kind = KINDS.get(type(optimizer).__name__)
    if kind is None:
        raise ValueError(f"{type(optimizer).__name__}: the schedules are derived for "
                         f"torch.optim.SGD, torch.optim.AdamW and timm.optim.Lion")
    return kind


def _named(optimizer: Optimizer) -> dict[str, dict]:
    names = [group.get("name") for group in optimizer.param_groups]
    if None in names or len(set(names)) < len(names):
        raise ValueError("each parameter group needs a name of its own (`scale_invariant`, "
                         "`rest`): make the groups with invariant_sets(model, example_input)")
    return {group["name"]: group for group in optimizer.param_groups}


def base_values(optimizer: Optimizer) -> tuple[dict[str, tuple[float, float]], OptimizerSpec]:
    """name -> (LR, weight decay) of each group as the optimizer was made, and the optimizer's
    spec (kind; momentum, or betas and eps, of its scale-invariant group, else its first)."""
    groups = _named(optimizer)
    values = {name: (g.get("initial_lr", g["lr"]), g.get("initial_weight_decay",
                                                        g["weight_decay"]))
              for name, g in groups.items()}
    first = groups.get(SCALE_INVARIANT, optimizer.param_groups[0])
    kind = optimizer_kind(optimizer)
    if kind == "sgd":
        if first.get("nesterov") or first.get("dampening"):
            raise ValueError("the twins are derived for SGD's heavy-ball momentum: nesterov=False "
                             "and dampening=0 (timm's opt='sgd' is Nesterov: use 'momentum')")
        return values, OptimizerSpec(kind, momentum=first["momentum"])
    return values, OptimizerSpec(kind, betas=tuple(first.get("initial_betas", first["betas"])),
                                 eps=first.get("initial_eps", first.get("eps", 0.0)))


class TableLR(LRScheduler):
    """Sets each group's LR and weight decay of update `last_epoch` from a Schedule table."""

    def __init__(self, optimizer: Optimizer, table: Schedule, last_epoch: int = -1):
        self.table, self.scale, self.kind = table, 1.0, optimizer_kind(optimizer)
        missing = set(_named(optimizer)) - set(table.groups)
        if missing:
            raise ValueError(f"the schedule has no row for the groups {sorted(missing)}")
        for group in optimizer.param_groups:  # the base values, as torch keeps initial_lr
            for key in ("weight_decay", "betas", "eps"):
                if key in group:
                    group.setdefault(f"initial_{key}", group[key])
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self._value(group, "lr") for group in self.optimizer.param_groups]

    def _value(self, group: dict, key: str):
        """The group's `key` (lr, weight_decay, betas or eps) at update last_epoch, None
        where the table leaves it alone."""
        t = min(self.last_epoch, self.table.total_steps - 1)  # after the last update: kept
        rule = self.table.groups[group["name"]]
        if key == "betas":
            return None if rule.betas is None else tuple(float(b) for b in rule.betas[t])
        values = getattr(rule, key)
        if values is None:
            return None
        c = self.scale if group["name"] == SCALE_INVARIANT else 1.0
        return float(values[t]) * state_scaling(self.kind, c).group[key]

    def step(self, epoch=None) -> None:
        if self.last_epoch + 1 > self.table.total_steps:
            raise ValueError(f"the schedule was made for {self.table.total_steps} updates; "
                             f"this would be update {self.last_epoch + 1}")
        super().step(epoch)
        self._apply_others()

    def _apply_others(self) -> None:
        """Everything but the LR, which torch's step sets."""
        for group in self.optimizer.param_groups:
            for key in ("weight_decay", "betas", "eps"):
                value = self._value(group, key)
                if value is not None:
                    group[key] = value

    def rescale(self, c: float) -> None:
        """The scale-invariant weights were multiplied by c (the overflow guard): the current
        update's values follow."""
        self.scale *= c
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self._value(group, "lr")
        self._apply_others()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def nominal_lr(self, name: str = SCALE_INVARIANT) -> float:
        """The group's LR of the current update as the table has it (without `scale`)."""
        t = min(self.last_epoch, self.table.total_steps - 1)
        return float(self.table.groups[name].lr[t])

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "scale": self.scale,
                "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict) -> None:
        """Go on from a saved position (and overflow-guard scale): the values of update
        `last_epoch` are set at once."""
        self.last_epoch, self.scale = state_dict["last_epoch"], state_dict["scale"]
        self._step_count = state_dict.get("_step_count", self.last_epoch + 1)
        self._apply()


def scheduler(optimizer: Optimizer, name: str, total_steps: int, *, base: str | None = None,
              milestones=(), factor: float = 0.1, final_ratio: float = 0.0,
              momentum_correction: bool = True, last_epoch: int = -1) -> TableLR:
    """Any schedule by name (src/optim/schedules.py: constant, step, cosine, exp, texp,
    equivalent, instant_decay) over total_steps updates, milestones in updates, from the
    optimizer's own LRs, weight decays and momentum."""
    groups, spec = base_values(optimizer)
    table = schedule_table(name, groups, spec, total_steps, base=base,
                           milestones=milestones, factor=factor, final_ratio=final_ratio,
                           momentum_correction=momentum_correction)
    return TableLR(optimizer, table, last_epoch)


class ExpLR(TableLR):
    """Paper A's exponential LR: the exact no-weight-decay twin of a constant LR with weight
    decay on the scale-invariant group (its weight decay is replaced; the other groups keep
    theirs). With momentum_correction the twin is exact from the first update."""

    def __init__(self, optimizer, total_steps: int, momentum_correction: bool = True,
                 last_epoch: int = -1):
        groups, spec = base_values(optimizer)
        super().__init__(optimizer, schedule_table(
            "exp", groups, spec, total_steps, momentum_correction=momentum_correction),
            last_epoch)


class TEXP(TableLR):
    """Paper A's TEXP: the twin of step decay (LR x factor at each milestone, in updates)."""

    def __init__(self, optimizer, total_steps: int, milestones, factor: float = 0.1,
                 momentum_correction: bool = True, last_epoch: int = -1):
        groups, spec = base_values(optimizer)
        super().__init__(optimizer, schedule_table(
            "texp", groups, spec, total_steps, milestones=milestones, factor=factor,
            momentum_correction=momentum_correction), last_epoch)


class TwinLR(TableLR):
    """The exact no-weight-decay twin of any plain schedule with weight decay: constant,
    step (milestones in updates, factor) or cosine (to final_ratio x the base LR)."""

    def __init__(self, optimizer, total_steps: int, base: str = "cosine", milestones=(),
                 factor: float = 0.1, final_ratio: float = 0.0, last_epoch: int = -1):
        groups, spec = base_values(optimizer)
        super().__init__(optimizer, schedule_table(
            "equivalent", groups, spec, total_steps, base=base, milestones=milestones,
            factor=factor, final_ratio=final_ratio), last_epoch)


class InstantDecay(TableLR):
    """Paper A's ablation: ExpLR whose LR is also multiplied by factor at each milestone, its
    exponent unchanged (equivalent to no weight-decay schedule)."""

    def __init__(self, optimizer, total_steps: int, milestones, factor: float = 0.1,
                 last_epoch: int = -1):
        groups, spec = base_values(optimizer)
        super().__init__(optimizer, schedule_table(
            "instant_decay", groups, spec, total_steps, milestones=milestones,
            factor=factor), last_epoch)
