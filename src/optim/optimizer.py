"""torch SGD over two parameter groups: the scale-invariant weights and the rest."""

import torch

from src.errors import UserError
from src.models import split_parameters


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
    return torch.optim.SGD([g for g in groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum)

