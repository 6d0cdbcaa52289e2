"""Build any timm model with the chosen normalisation, optionally scale invariant.

`scale_invariant=True` follows paper A's experiments: every norm layer's affine is frozen at
(weight 1, bias 0) and the classifier is frozen at a random init with a fixed norm drawn from
its own seed. The loss is then invariant to scaling all trained weights together. Parameter
groups are split by construction and the invariance is checked numerically on a float64 copy,
not inferred from parameter names.
"""

import copy
import functools

import timm
import torch
from timm.layers import GroupNorm
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NEGLIGIBLE_EPS = 1e-30  # far below any activation variance in float32 or float64


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


def norm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, NORM_TYPES)]


def set_norm_eps(model: nn.Module, eps: float) -> None:
    for m in norm_modules(model):
        m.eps = eps


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
    kwargs = dict(cfg.kwargs or {})
    if cfg.norm is not None:
        kwargs["norm_layer"] = norm_layer(cfg.norm, cfg.gn_groups)
    model = timm.create_model(cfg.name, num_classes=num_classes, **kwargs)
    if cfg.get("norm_eps") is not None:
        set_norm_eps(model, cfg.norm_eps)
    if cfg.scale_invariant:
        freeze_for_scale_invariance(model, cfg.head_seed, cfg.head_norm)
    return model


def scale_invariance_error(
    model: nn.Module, names: set[str], x: torch.Tensor, c: float
) -> float:
    """max |f_{c theta}(x) - f_theta(x)| / max |f_theta(x)|, train-mode outputs, on copies.

    theta are the parameters named in `names`; the model itself is left untouched.
    """
    outputs = []
    for scale in (1.0, c):
        probe = copy.deepcopy(model).train()
        with torch.no_grad(), torch.random.fork_rng():
            for name, param in probe.named_parameters():
                if name in names:
                    param.mul_(scale)
            torch.manual_seed(0)  # the same dropout / drop-path masks in both passes
            outputs.append(probe(x))
    reference, scaled = outputs
    return ((scaled - reference).abs().max() / reference.abs().max()).item()


def _probe(model: nn.Module, input_shape) -> tuple[nn.Module, torch.Tensor]:
    """A float64 CPU copy of the model with negligible norm eps, and inputs for it."""
    probe = copy.deepcopy(model).double().cpu()
    set_norm_eps(probe, NEGLIGIBLE_EPS)
    g = torch.Generator().manual_seed(0)
    return probe, torch.randn(4, *input_shape, dtype=torch.float64, generator=g)


def invariant_sets(model: nn.Module, names: list[str], input_shape,
                   tol: float = 1e-8) -> list[list[str]]:
    """The scale-invariant group `names` split into sets the loss is invariant to one by one:
    each tensor that alone feeds a norm layer (a residual block's first conv), then all the
    others together (the convs whose outputs meet in a residual sum: only their common scale
    is free). The rest is invariant jointly because the whole group and each single one are."""
    probe, x = _probe(model, input_shape)
    single = [n for n in names if scale_invariance_error(probe, {n}, x, 10.0) <= tol]
    joint = [n for n in names if n not in single]
    return [[n] for n in single] + ([joint] if joint else [])


def split_parameters(
    model: nn.Module, input_shape: tuple[int, ...], tol: float = 1e-8
) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter], float]:
    """(scale-invariant, rest, measured error): the trained weights of >= 2 dims outside the
    classifier form the candidate group; it is kept only if scaling it leaves the outputs
    unchanged on a float64 copy with negligible norm eps. Otherwise all go to `rest`.
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    candidate = {n: p for n, p in trained.items() if p.ndim > 1 and id(p) not in head}
    probe, x = _probe(model, input_shape)
    error = scale_invariance_error(probe, set(candidate), x, 10.0) if candidate else 1.0
    if error > tol:
        return {}, trained, error
    rest = {n: p for n, p in trained.items() if n not in candidate}
    return candidate, rest, error
