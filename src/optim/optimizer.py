"""torch SGD over two parameter groups: the scale-invariant weights and the rest."""

import torch
from torch.nn.utils import get_total_norm

from src.errors import UserError
from src.models import invariant_sets, split_parameters


class ProjectedSGD(torch.optim.SGD):
    """Paper B's projected SGD: after each step every set of weights the loss is scale
    invariant to is scaled back to its norm before the step. The norms, and with them the
    effective LRs lr/||w||^2, stay fixed: the auto rate-tuning of plain SGD is switched off."""

    def __init__(self, params, *, projected: list[list[torch.Tensor]], **kwargs):
        super().__init__(params, **kwargs)
        self.projected = projected

    @torch.no_grad()
    def step(self, closure=None):
        norms = [get_total_norm(tensors) for tensors in self.projected]
        loss = super().step(closure)
        for tensors, norm in zip(self.projected, norms, strict=True):
            torch._foreach_mul_(tensors, norm / get_total_norm(tensors))  # on the device: no sync
        return loss


def build_optimizer(model, cfg, *, input_shape, scale_invariant: bool) -> torch.optim.SGD:
    si, rest, error = split_parameters(model, input_shape)
    if scale_invariant and (rest or not si):
        names = ", ".join(list(rest)[:5]) or "all of them"
        raise UserError(
            f"model.scale_invariant=true but the loss is not scale invariant in the trained "
            f"parameters ({names}; relative output change {error:.2g} when scaled by 10); "
            f"use an architecture whose trained weights all feed a norm layer"
        )
    groups = [
        {"name": "scale_invariant", "params": list(si.values()),
         "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"name": "rest", "params": list(rest.values()),
         "lr": cfg.rest_lr, "weight_decay": cfg.rest_weight_decay},
    ]
    groups = [g for g in groups if g["params"]]
    if not cfg.projected:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if not si:
        raise UserError("optimizer.projected=true needs scale-invariant weights to project: "
                        "this model has none (model.scale_invariant=true makes them)")
    sets = invariant_sets(model, list(si), input_shape)
    return ProjectedSGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                        projected=[[si[name] for name in names] for names in sets])
