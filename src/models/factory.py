"""Build any timm model with the chosen normalisation, optionally scale invariant.

`scale_invariant=True` follows paper A's experiments: every norm layer's affine is frozen at
(weight 1, bias 0) and the classifier is frozen at a random init with a fixed norm drawn from
its own seed. The loss is then invariant to scaling all trained weights together.
`scale_invariant=paper_b` follows paper B's: nothing is frozen, each norm layer's (weight,
bias) that reaches a norm layer through ReLU is a scale-invariant set of its own, and what is
not invariant (the last BN's pair, src/models/vgg.py) is trained as the scale-variant rest.
Either way the invariance is checked numerically on a float64 copy (src/optim/groups.py),
not inferred from parameter names.
"""

import functools

import timm
import torch
from omegaconf import DictConfig, OmegaConf
from timm.layers import GroupNorm
from torch import nn

from src.optim.groups import norm_modules, set_norm_eps

# model.norm -> timm's `norm_layer` (given gn's group count); keyword-only partials, as timm's
# factories need.
NORM_LAYERS = {
    "bn": lambda groups: "batchnorm2d",
    "gn": lambda groups: functools.partial(GroupNorm, num_groups=groups),
    "ln": lambda groups: "layernorm2d",
    "in": lambda groups: functools.partial(nn.InstanceNorm2d, affine=True),
    "none": lambda groups: nn.Identity,
}
NORMS = tuple(NORM_LAYERS)


def norm_layer(norm: str, gn_groups: int = 8):
    return NORM_LAYERS[norm](gn_groups)


def freeze_for_scale_invariance(model: nn.Module, head_seed: int, head_norm: float) -> None:
    for m in norm_modules(model):
        # Reset too: timm's zero_init_last sets some norm weights to 0, which frozen would
        # switch residual branches off for good.
        for param, value in ((getattr(m, "weight", None), 1.0), (getattr(m, "bias", None), 0.0)):
            if param is not None:
                nn.init.constant_(param, value).requires_grad_(False)
    head = model.get_classifier()
    weight = torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(head_seed))
    with torch.no_grad():
        # Every class gets a weight row of norm head_norm, independent of the init scheme.
        head.weight.copy_(weight * head_norm / weight.norm(dim=1, keepdim=True))
        if head.bias is not None:
            head.bias.zero_()
    head.requires_grad_(False)


def build_model(cfg, num_classes: int) -> nn.Module:
    # plain lists and dicts, resolved: timm's models take e.g. depths=[1, 1, 1, 1] as a list
    kwargs = cfg.kwargs or {}
    kwargs = (OmegaConf.to_container(kwargs, resolve=True) if isinstance(kwargs, DictConfig)
              else dict(kwargs))
    if cfg.norm is not None:
        kwargs["norm_layer"] = norm_layer(cfg.norm, cfg.gn_groups)
    model = timm.create_model(cfg.name, num_classes=num_classes, **kwargs)
    if cfg.get("norm_eps") is not None:
        set_norm_eps(model, cfg.norm_eps)
    if cfg.scale_invariant is True:
        freeze_for_scale_invariance(model, cfg.head_seed, cfg.head_norm)
    return model
