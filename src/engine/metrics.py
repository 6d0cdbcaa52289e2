"""What scale invariance lets us measure during training, for a set of weight tensors.

weight_norm ||w||, weight_norm_sq, effective_lr lr/||w||^2 (the step size of w/||w|| on the
sphere), grad_norm, cos_weight_grad (~0 certifies scale invariance: <grad L(w), w> = 0),
norm_sq_over_lr ||w||^2/lr (constant under ExpLR), angular_update (the angle between w before
and after an update, or over an epoch); paper B's stationarity measure (intrinsic_grad_sq);
and each invariant set's angle, norm and squared gradient norm at unit weights, whose
equilibrium src/theory/equilibrium.py predicts (with every set's own metrics also the squared
norm of its optimizer's momentum, momentum_sq).
"""

import math

import torch
from torch.nn.utils import get_total_norm

from src.theory.equilibrium import predicted_angle
from src.theory.equivalence import Rescaling


def angle_from_chord_sq(chord_sq: float) -> float:
    """The angle between unit vectors u, v from |u - v|^2: 2 asin(|u - v| / 2) keeps full
    precision for tiny angles, where acos(<u, v>) loses half the digits."""
    return 2.0 * math.asin(min(math.sqrt(chord_sq) / 2.0, 1.0))


def weight_metrics(w2: float, g2: float, wg: float, lr: float, scale: float = 1.0) -> dict:
    """From ||w||^2, ||g||^2 and <w, g> of weights that may be `scale` times the nominal ones
    (renormalised, with LR scale^2 lr): norms are reported for the nominal weights; the other
    metrics do not change."""
    nominal = Rescaling(scale).inverse()
    lr, w2, g2 = lr * nominal.lr, w2 * nominal.weights**2, g2 * nominal.grad**2
    return {
        "weight_norm": math.sqrt(w2),
        "weight_norm_sq": w2,
        "effective_lr": lr / w2,
        "norm_sq_over_lr": w2 / lr,
        "grad_norm": math.sqrt(g2),
        "cos_weight_grad": wg / math.sqrt(w2 * g2) if g2 > 0 else 0.0,
    }


@torch.no_grad()
def intrinsic_grad_sq(sets, set_grads, rest_grads) -> dict:
    """The squared gradient norm paper B's theorems bound, of F on (unit spheres) x R^d:
    si/sphere_grad_sq = sum over the invariant sets of ||w_i||^2 ||grad_{w_i} F||^2 (each the
    gradient of F in w_i/||w_i|| on its sphere, squared; unchanged by renormalisation),
    rest/grad_sq = ||grad_g F||^2 of the scale-variant rest g, intrinsic_grad_sq their sum."""
    sphere = sum((get_total_norm(w).double() * get_total_norm(g).double()) ** 2
                 for w, g in zip(sets, set_grads, strict=True))
    rest = get_total_norm(rest_grads).double() ** 2 if rest_grads else 0.0
    return stationarity(float(sphere), float(rest))


def stationarity(sphere: float, rest: float) -> dict:
    return {"si/sphere_grad_sq": sphere, "rest/grad_sq": rest, "intrinsic_grad_sq": sphere + rest}


def grads_of(params) -> list[torch.Tensor]:
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


def set_name(names: list[str]) -> str:
    """A set's name in records: its tensor's, its module's (a norm layer's weight and bias), or
    `joint` (the tensors whose outputs meet in residual sums; a model has at most one)."""
    modules = {n.rpartition(".")[0] for n in names}
    return names[0] if len(names) == 1 else modules.pop() if len(modules) == 1 else "joint"


class FlatGroup:
    """The scale-invariant group's tensors as one float64 vector whose elements know their
    tensor and their set: sums per tensor are one segment_reduce over its contiguous segments
    and sums per set one index_add, whatever the number of tensors (no Python loop over them).

    The float64 vectors live in buffers allocated once: on a CPU each fresh temporary of that
    size is memory the kernel must map and zero (ResNet-50's sums: benchmarks/RESULTS.md)."""

    def __init__(self, params: list[torch.Tensor], sets: list[list[int]]):
        device = params[0].device
        self.params = params
        sizes = torch.tensor([p.numel() for p in params], device=device)
        self.tensor_of = torch.repeat_interleave(torch.arange(len(params), device=device), sizes)
        set_of_tensor = torch.full((len(params),), -1, dtype=torch.int64)
        for i, s in enumerate(sets):
            set_of_tensor[s] = i
        if (set_of_tensor < 0).any():
            raise ValueError("every tensor of the scale-invariant group must be in one set")
        self.set_of_tensor = set_of_tensor.to(device)
        self.num_sets = len(sets)
        self.offsets = [0, *torch.cumsum(sizes, 0).tolist()]
        n = self.offsets[-1]
        self.lengths = sizes.expand(3, len(params)).contiguous()  # segment_reduce's, per row
        self.rows = torch.empty(3, n, dtype=torch.float64, device=device)  # products
        self.scratch = torch.empty(n, dtype=torch.float64, device=device)

    def flat(self, tensors, out: torch.Tensor | None = None) -> torch.Tensor:
        """The tensors as one float64 vector, in `out` (by default a new one)."""
        if out is None:
            out = torch.empty_like(self.scratch)
        return torch.cat([t.detach().reshape(-1) for t in tensors], out=out)

    def per_tensor(self, rows: torch.Tensor) -> torch.Tensor:
        """(tensors, len(rows)) sums of each row over each tensor's elements."""
        return torch.segment_reduce(rows, "sum", lengths=self.lengths[:len(rows)], axis=1).T

    def products(self, *pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The elementwise products a * b of the pairs, as rows of the product buffer."""
        for row, (a, b) in zip(self.rows, pairs, strict=False):
            torch.mul(a, b, out=row)
        return self.rows[:len(pairs)]

    def per_set(self, per_tensor: torch.Tensor) -> torch.Tensor:
        return per_tensor.new_zeros(self.num_sets, per_tensor.shape[1]).index_add_(
            0, self.set_of_tensor, per_tensor)

    def chords_sq(self, before: torch.Tensor, after: torch.Tensor, tracked: list[int]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """|u - v|^2 of the unit vectors of before and after: of the whole group, of each set
        and of each tracked tensor (each normalised on its own)."""
        norms = self.per_tensor(self.products((before, before), (after, after))).sqrt()
        group = norms.square().sum(0).sqrt()
        diff = self.rows[2]
        torch.div(before, group[0], out=diff)
        whole = diff.addcdiv_(after, group[1], value=-1).square_().sum()
        # each element scaled by 1 / the norm of its set, before and after
        inverse = self.per_set(norms.square()).rsqrt()[self.set_of_tensor]   # per tensor
        scaled = self.rows[:2]
        torch.index_select(inverse[:, 0], 0, self.tensor_of, out=scaled[0])
        torch.index_select(inverse[:, 1], 0, self.tensor_of, out=scaled[1])
        scaled[0].mul_(before)
        diff = scaled[0].sub_(scaled[1].mul_(after)).square_()
        per_set = self.per_set(self.per_tensor(diff[None]))[:, 0]
        own = [((before[self.offsets[i]:self.offsets[i + 1]] / norms[i, 0]
                 - after[self.offsets[i]:self.offsets[i + 1]] / norms[i, 1]).square().sum())
               for i in tracked]
        return whole, per_set, torch.stack(own) if own else whole.new_zeros(0)


class ScaleInvariantMonitor:
    """Metrics of the scale-invariant group (`si/...`), of named tensors in it (`si/<name>/...`),
    and of its invariant sets: their mean, min and max over sets (`si/sets/<metric>_mean`, ...),
    and each set's own (`si/set/<set name>/...`) when `per_set`. The angular update over one
    step and over each epoch; paper B's stationarity measure from the sets and the rest."""

    def __init__(self, named: dict[str, torch.Tensor], tracked: list[str],
                 sets: list[list[int]], rest: list[torch.Tensor] = (), per_set: bool = False):
        names = list(named)
        self.group = FlatGroup(list(named.values()), sets)
        self.tracked = {name: names.index(name) for name in tracked}
        self.set_names = [set_name([names[i] for i in s]) for s in sets]
        self.rest, self.per_set = list(rest), per_set
        self.before = self.epoch_start = None
        self.before_buffer = torch.empty_like(self.group.scratch)

    def _summary(self, per_set: dict[str, torch.Tensor]) -> dict:
        """per_set: metric -> a value per set."""
        record = {}
        for metric, values in per_set.items():
            record.update({f"si/sets/{metric}_mean": values.mean().item(),
                           f"si/sets/{metric}_min": values.min().item(),
                           f"si/sets/{metric}_max": values.max().item()})
            if self.per_set:
                record.update({f"si/set/{name}/{metric}": v
                               for name, v in zip(self.set_names, values.tolist(), strict=True)})
        return record

    @torch.no_grad()
    def before_step(self, lr: float, scale: float = 1.0) -> dict:
        """At theta_t, after backward: everything but the update's angle."""
        group = self.group
        self.before = before = group.flat(group.params, out=self.before_buffer)
        g = group.flat(grads_of(group.params), out=group.scratch)
        sums = group.per_tensor(group.products((before, before), (g, g), (before, g)))
        sets = group.per_set(sums)
        nominal = Rescaling(scale).inverse().weights
        unit_grad_sq = sets[:, 0] * sets[:, 1]  # ||w||^2 ||grad_w||^2: L of each set
        rest = get_total_norm(grads_of(self.rest)).double() ** 2 if self.rest else 0.0
        record = stationarity(unit_grad_sq.sum().item(), float(rest))
        record.update({f"si/{k}": v
                       for k, v in weight_metrics(*sums.sum(0).tolist(), lr, scale).items()})
        rows = sums[list(self.tracked.values())].tolist()
        for name, row in zip(self.tracked, rows, strict=True):
            record.update({f"si/{name}/{k}": v
                           for k, v in weight_metrics(*row, lr, scale).items()})
        record.update(self._summary({"weight_norm": sets[:, 0].sqrt() * nominal,
                                     "sphere_grad_sq": unit_grad_sq}))
        return record

    def _angles(self, before: torch.Tensor, suffix: str) -> dict:
        group = self.group
        whole, sets, own = group.chords_sq(before, group.flat(group.params, out=group.scratch),
                                           list(self.tracked.values()))
        record = {f"si/{suffix}": angle_from_chord_sq(whole.item())}
        record.update({f"si/{name}/{suffix}": angle_from_chord_sq(c)
                       for name, c in zip(self.tracked, own.tolist(), strict=True)})
        record.update(self._summary({suffix: 2.0 * torch.asin((sets.sqrt() / 2.0).clamp(max=1.0))}))
        return record

    @torch.no_grad()
    def after_step(self) -> dict:
        record = self._angles(self.before, "angular_update")
        self.before = None
        return record

    @torch.no_grad()
    def momentum_sq(self, buffers: list[torch.Tensor], scale: float = 1.0) -> dict:
        """||v||^2 of each set's momentum after the update (SGD's buffer, AdamW's and Lion's
        exp_avg; in the nominal process's units: each scales as the gradients, 1/c), against
        which the gradients' memory is measured (src/theory/equilibrium.py's
        gradient_memory)."""
        group = self.group
        v = group.flat(buffers, out=group.scratch)
        sets = group.per_set(group.per_tensor(group.products((v, v))))[:, 0]
        return self._summary({"momentum_sq": sets * Rescaling(scale).inverse().momentum_buffer**2})

    def start_epoch(self) -> None:
        self.epoch_start = self.group.flat(self.group.params, out=self.epoch_start)

    @torch.no_grad()
    def end_epoch(self) -> dict:
        return self._angles(self.epoch_start, "angular_update_epoch")


def momentum_of(state: dict) -> torch.Tensor | None:
    """A parameter's gradient average in its optimizer's state: torch SGD's momentum_buffer,
    torch AdamW's or timm Lion's exp_avg (None before the first step, or without momentum)."""
    return state.get("momentum_buffer", state.get("exp_avg"))


class Monitor:
    """The metrics of the scale-invariant group after optimizer.step(), as a flat dict for any
    logger: `record = monitor()` after each step (empty between logging steps).

        monitor = Monitor(optimizer, scheduler, every=10, tracked=["layer1.0.conv1.weight"])

    It hooks the optimizer's step: before it (the weights theta_t and their gradients) the
    norms, effective LR, sphere gradients and paper B's stationarity measure, after it the
    angle each set turned by (and, with tracked `all`, each set's momentum_sq). With a
    scheduler of this package it also reports the overflow guard's scale and the predicted
    equilibrium angle, and counts updates by the scheduler's last_epoch (else by its own
    count). tracked: tensors of the group with their own metrics (`all`: every set's own,
    si/set/<name>/...)."""

    def __init__(self, optimizer, scheduler=None, every: int = 1, tracked=()):
        groups = {g.get("name"): g for g in optimizer.param_groups}
        invariant = groups.get("scale_invariant")
        if invariant is None:
            raise ValueError("the optimizer has no `scale_invariant` group: make its groups with "
                             "invariant_sets(model, example_input)")
        names = invariant.get("param_names") or [str(i) for i in range(len(invariant["params"]))]
        named = dict(zip(names, invariant["params"], strict=True))
        per_set = tracked == "all"
        tracked = [] if per_set else list(tracked)
        unknown = [name for name in tracked if name not in named]
        if unknown:
            raise ValueError(f"{unknown} are not scale-invariant parameters of this model; some "
                             f"that are: {list(named)[:4]}; or `all`")
        rest = groups["rest"]["params"] if "rest" in groups else []
        self.core = ScaleInvariantMonitor(named, tracked, invariant["sets"], rest, per_set)
        self.scheduler, self.every = scheduler, every
        self.steps, self.record = 0, {}
        self.handles = [optimizer.register_step_pre_hook(self._before),
                        optimizer.register_step_post_hook(self._after)]

    def _update(self) -> int:
        return self.scheduler.last_epoch if self.scheduler is not None else self.steps

    def _scale(self) -> float:
        return self.scheduler.scale if self.scheduler is not None else 1.0

    def _before(self, optimizer, args, kwargs) -> None:
        step = self._update()
        if step % self.every:
            return
        scale = self._scale()
        # looked up each time: loading an optimizer state replaces the group dicts
        group = next(g for g in optimizer.param_groups if g.get("name") == "scale_invariant")
        record = self.core.before_step(group["lr"], scale)
        if self.scheduler is not None:
            record["si/renorm_scale"] = scale
            table = self.scheduler.table
            intrinsic = table.groups["scale_invariant"].intrinsic_lr
            if intrinsic is not None and step < len(intrinsic) and intrinsic[step] > 0:
                record["si/angular_update_predicted"] = predicted_angle(
                    table.spec.kind, float(intrinsic[step]), 1.0, table.spec.momentum_or_betas,
                    refined=True)
        self.record = record

    def _after(self, optimizer, args, kwargs) -> None:
        if self.core.before is not None:
            self.record.update(self.core.after_step())
            if self.core.per_set:  # every set's own metrics: also its momentum's
                state = optimizer.state  # keyed by the parameters, which a loaded state keeps
                buffers = [momentum_of(state[p]) for p in self.core.group.params]
                if all(b is not None for b in buffers):
                    self.record.update(self.core.momentum_sq(buffers, self._scale()))
        self.steps += 1

    def __call__(self) -> dict:
        """The metrics of the last update if it was a logging one, else {}."""
        record, self.record = self.record, {}
        return record

    def start_epoch(self) -> None:
        self.core.start_epoch()

    def end_epoch(self) -> dict:
        """The angle each set turned by since start_epoch()."""
        return self.core.end_epoch()

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
