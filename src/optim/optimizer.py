"""torch SGD over two parameter groups: the scale-invariant weights and the rest."""

import torch
from torch.nn.utils import get_total_norm

from src.errors import UserError
from src.models import PAPER_B, split_parameters


class ProjectedSGD(torch.optim.SGD):
    """Paper B's projected SGD: after each step every set of weights the loss is scale
    invariant to is scaled back to its norm before the step. The norms, and with them the
    effective LRs lr/||w||^2, stay fixed: the auto rate-tuning of plain SGD is switched off."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.projected = group_sets(self)

    @torch.no_grad()
    def step(self, closure=None):
        norms = [get_total_norm(tensors) for tensors in self.projected]
        loss = super().step(closure)
        for tensors, norm in zip(self.projected, norms, strict=True):
            torch._foreach_mul_(tensors, norm / get_total_norm(tensors))  # on the device: no sync
        return loss


def build_optimizer(model, cfg, *, input_shape, scale_invariant) -> torch.optim.SGD:
    """SGD over the groups `scale_invariant` and `rest`; scale_invariant: model.scale_invariant.
    The group lists its invariant sets as `sets` (indices into its params): the projection,
    paper B's stationarity measure and the per-set metrics use them."""
    split = split_parameters(model, input_shape, scale_invariant)
    si, rest = split.invariant, split.rest
    if scale_invariant is True and (rest or not si):
        names = ", ".join(list(rest)[:5]) or "all of them"
        raise UserError(
            f"model.scale_invariant=true but the loss is not scale invariant in the trained "
            f"parameters ({names}; relative output change {split.error:.2g} when scaled); "
            f"use an architecture whose trained weights all feed a norm layer"
        )
    if scale_invariant == PAPER_B and not si:
        raise UserError("model.scale_invariant=paper_b but no trained parameter of this model "
                        "is scale invariant: it needs a norm layer after each weight")
    index = {name: i for i, name in enumerate(si)}
    groups = [
        {"name": "scale_invariant", "params": list(si.values()),
         "lr": cfg.lr, "weight_decay": cfg.weight_decay,
         "sets": [[index[n] for n in names] for names in split.sets]},
        {"name": "rest", "params": list(rest.values()),
         "lr": cfg.rest_lr, "weight_decay": cfg.rest_weight_decay},
    ]
    groups = [g for g in groups if g["params"]]
    if not cfg.projected:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if not si:
        raise UserError("optimizer.projected=true needs scale-invariant weights to project: "
                        "this model has none (model.scale_invariant=true makes them)")
    return ProjectedSGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def group_sets(optimizer) -> list[list[torch.Tensor]]:
    """The scale-invariant group's sets, as lists of its tensors (none without the group)."""
    group = next((g for g in optimizer.param_groups if g["name"] == "scale_invariant"), None)
    return [] if group is None else [[group["params"][i] for i in s] for s in group["sets"]]
