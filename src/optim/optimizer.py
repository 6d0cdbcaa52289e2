"""The optimizer over two parameter groups, the scale-invariant weights and the rest: torch's
SGD (or paper B's projected SGD), torch's AdamW or timm's Lion (optimizer.name)."""

import torch
from torch.nn.utils import get_total_norm

from src.errors import UserError
from src.optim.groups import PAPER_B, group_sets, parameter_groups, split_parameters


class ProjectedSGD(torch.optim.SGD):
    """Paper B's projected SGD: after each step every set of weights the loss is scale
    invariant to is scaled back to its norm before the step. The norms, and with them the
    effective LRs lr/||w||^2, stay fixed: the auto rate-tuning of plain SGD is switched off.
    The projection is a pair of step hooks, registered first: hooks added later (a Monitor)
    see the projected weights."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.projected = group_sets(self)
        self.norms = []
        self.register_step_pre_hook(lambda *_: self._remember())
        self.register_step_post_hook(lambda *_: self._project())

    @torch.no_grad()
    def _remember(self) -> None:
        self.norms = [get_total_norm(tensors) for tensors in self.projected]

    @torch.no_grad()
    def _project(self) -> None:
        for tensors, norm in zip(self.projected, self.norms, strict=True):
            torch._foreach_mul_(tensors, norm / get_total_norm(tensors))  # on the device: no sync


# optimizer.name -> what builds it from the groups and the `optimizer` config
OPTIMIZERS = {
    "sgd": lambda groups, cfg: (ProjectedSGD if cfg.get("projected") else torch.optim.SGD)(
        groups, lr=cfg.lr, momentum=cfg.momentum),
    "adamw": lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas),
                                                   eps=cfg.eps),
    "lion": lambda groups, cfg: _lion()(groups, lr=cfg.lr, betas=tuple(cfg.betas)),
}


def _lion():
    from timm.optim import Lion

    return Lion


def build_optimizer(model, cfg, *, input_shape, scale_invariant) -> torch.optim.Optimizer:
    """The optimizer (OPTIMIZERS[cfg.name]) over the groups `scale_invariant` and `rest`
    (src/optim/groups.py); scale_invariant: model.scale_invariant. The group lists its
    invariant sets as `sets` (indices into its params): the projection, paper B's
    stationarity measure and the per-set metrics use them."""
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
    groups = parameter_groups(split)
    for group in groups:
        lr, wd = ((cfg.lr, cfg.weight_decay) if group["name"] == "scale_invariant"
                  else (cfg.rest_lr, cfg.rest_weight_decay))
        group.update(lr=lr, weight_decay=wd)
    if cfg.get("projected") and not si:
        raise UserError("optimizer.projected=true needs scale-invariant weights to project: "
                        "this model has none (model.scale_invariant=true makes them)")
    return OPTIMIZERS[cfg.get("name", "sgd")](groups, cfg)
