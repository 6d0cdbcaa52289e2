"""What scale invariance lets us measure during training, for a set of weight tensors.

weight_norm ||w||, weight_norm_sq, effective_lr lr/||w||^2 (the step size of w/||w|| on the
sphere), grad_norm, cos_weight_grad (~0 certifies scale invariance: <grad L(w), w> = 0),
norm_sq_over_lr ||w||^2/lr (constant under ExpLR), angular_update (the angle between w before
and after an update, or over an epoch); and paper B's stationarity measure (intrinsic_grad_sq).
"""

import math

import torch
from torch.nn.utils import get_total_norm

from src.theory.equivalence import Rescaling


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([torch.vdot(x.flatten(), y.flatten()) for x, y in zip(a, b, strict=True)]
                       ).sum()


def angle(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """The angle between two weight vectors given as lists of tensors, in radians.

    2 asin(|u - v| / 2) for unit vectors u, v keeps full precision for tiny angles, where
    acos(<u, v>) loses half the digits.
    """
    nb, na = _dot(before, before).sqrt(), _dot(after, after).sqrt()
    diff = [b / nb - a / na for b, a in zip(before, after, strict=True)]
    return 2.0 * math.asin(min(_dot(diff, diff).sqrt().item() / 2.0, 1.0))


@torch.no_grad()
def weight_metrics(weights: list[torch.Tensor], grads: list[torch.Tensor], lr: float,
                   scale: float = 1.0) -> dict:
    """`weights` may be `scale` times the nominal ones (renormalised, with LR scale^2 lr):
    norms are reported for the nominal weights; the other metrics do not change."""
    w2, g2, wg = (_dot(a, b).item() for a, b in
                  ((weights, weights), (grads, grads), (weights, grads)))
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
    sphere, rest = float(sphere), float(rest)
    return {"si/sphere_grad_sq": sphere, "rest/grad_sq": rest, "intrinsic_grad_sq": sphere + rest}


def grads_of(params) -> list[torch.Tensor]:
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


class ScaleInvariantMonitor:
    """Metrics of the scale-invariant group (`si/...`) and of named tensors in it
    (`si/<name>/...`), with the angular update over one step and over each epoch, and paper
    B's stationarity measure from the group's invariant sets and the rest's gradients."""

    def __init__(self, named: dict[str, torch.Tensor], tracked: list[str],
                 invariant_sets: list[list[torch.Tensor]] = (), rest: list[torch.Tensor] = ()):
        self.sets = {"si": list(named.values())}
        self.sets.update({f"si/{name}": [named[name]] for name in tracked})
        self.invariant_sets, self.rest = list(invariant_sets), list(rest)
        self.before = self.epoch_start = None

    def stationarity(self) -> dict:
        """intrinsic_grad_sq and its parts from the gradients the parameters hold."""
        return intrinsic_grad_sq(self.invariant_sets, [grads_of(s) for s in self.invariant_sets],
                                 grads_of(self.rest))

    def _snapshot(self) -> dict[str, list[torch.Tensor]]:
        return {key: [p.detach().clone() for p in params] for key, params in self.sets.items()}

    def before_step(self, lr: float, scale: float = 1.0) -> dict:
        """At theta_t, after backward: everything but the update's angle."""
        self.before = self._snapshot()
        record = self.stationarity() if self.invariant_sets else {}
        for key, params in self.sets.items():
            metrics = weight_metrics(params, grads_of(params), lr, scale)
            record.update({f"{key}/{k}": v for k, v in metrics.items()})
        return record

    def after_step(self) -> dict:
        record = {f"{key}/angular_update": angle(self.before[key], params)
                  for key, params in self.sets.items()}
        self.before = None
        return record

    def start_epoch(self) -> None:
        self.epoch_start = self._snapshot()

    def end_epoch(self) -> dict:
        return {f"{key}/angular_update_epoch": angle(self.epoch_start[key], params)
                for key, params in self.sets.items()}
