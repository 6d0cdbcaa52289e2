"""Build any timm model with the chosen normalisation, optionally scale invariant.

`scale_invariant=True` follows paper A's experiments: every norm layer's affine is frozen at
(weight 1, bias 0) and the classifier is frozen at a random init with a fixed norm drawn from
its own seed. The loss is then invariant to scaling all trained weights together.
`scale_invariant=paper_b` follows paper B's: nothing is frozen, each norm layer's (weight,
bias) that reaches a norm layer through ReLU is a scale-invariant set of its own, and what is
not invariant (the last BN's pair, src/models/vgg.py) is trained as the scale-variant rest.
Either way the invariance is checked numerically on a float64 copy, not inferred from
parameter names.
"""

import copy
import functools
from dataclasses import dataclass

import timm
import torch
from timm.layers import GroupNorm
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NEGLIGIBLE_EPS = 1e-30  # far below any activation variance in float32 or float64
# model.scale_invariant: true (paper A: norm affines and classifier frozen, every trained weight
# scale invariant), false (nothing frozen; the invariant weights found as in paper A), or
# paper_b (nothing frozen; paper B's sets, each norm layer's (weight, bias) among them).
PAPER_B = "paper_b"
LAYOUTS = (True, False, PAPER_B)


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
    if cfg.scale_invariant is True:
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


class _Probe:
    """A float64 CPU copy of the model with negligible norm eps, fixed inputs and its outputs
    on them: error(names) is the relative output change when the parameters `names` are scaled
    by SCALE, in place and back (a power of 2, so the copy returns exactly to where it was)."""

    SCALE = 16.0

    def __init__(self, model: nn.Module, input_shape):
        self.model = copy.deepcopy(model).double().cpu().train()
        set_norm_eps(self.model, NEGLIGIBLE_EPS)
        self.params = dict(self.model.named_parameters())
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.params.values():
                if p.requires_grad:  # trained values move: check away from special ones (bias 0)
                    p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype, generator=g))
        self.x = torch.randn(4, *input_shape, dtype=torch.float64, generator=g)
        self.reference = self._outputs()

    @torch.no_grad()
    def _outputs(self) -> torch.Tensor:
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same dropout / drop-path masks in every pass
            return self.model(self.x)

    @torch.no_grad()
    def error(self, names) -> float:
        params = [self.params[n] for n in names]
        for p in params:
            p.mul_(self.SCALE)
        outputs = self._outputs()
        for p in params:
            p.div_(self.SCALE)
        return ((outputs - self.reference).abs().max() / self.reference.abs().max()).item()


def _module_of(name: str) -> str:
    return name.rpartition(".")[0]


def invariant_sets(probe: "_Probe", names: list[str], tol: float = 1e-8) -> list[list[str]]:
    """The parameters `names` as sets the loss is scale invariant to one by one, each checked:
    first each tensor alone (a conv kernel that alone feeds a norm layer), then the tensors of
    one module together (a norm layer's (weight, bias) whose output reaches a norm layer through
    ReLU: paper B's (gamma, beta) pairs), then all that is left together (the convs whose
    outputs meet in a residual sum: only their common scale is free), if the loss is invariant
    to that. What no set holds is not scale invariant."""
    sets = [[n] for n in names if probe.error([n]) <= tol]
    left = [n for n in names if [n] not in sets]
    modules: dict[str, list[str]] = {}
    for n in left:
        modules.setdefault(_module_of(n), []).append(n)
    sets += [m for m in modules.values() if len(m) > 1 and probe.error(m) <= tol]
    left = [n for n in left if not any(n in s for s in sets)]
    if left and probe.error(left) <= tol:
        sets.append(left)
    return sets


@dataclass(frozen=True)
class Split:
    """The model's trained parameters as the optimizer's two groups."""
    invariant: dict[str, nn.Parameter]  # the scale-invariant group
    rest: dict[str, nn.Parameter]       # everything else that is trained
    sets: list[list[str]]               # the group as sets invariant one by one
    error: float                        # the candidates' joint invariance error


def split_parameters(model: nn.Module, input_shape: tuple[int, ...], layout=True,
                     tol: float = 1e-8) -> Split:
    """Which trained parameters the loss is scale invariant to, checked on a float64 copy with
    negligible norm eps (model.scale_invariant is `layout`):
    * true / false (paper A): the trained weights of >= 2 dims outside the classifier form
      the candidate group, kept only if scaling it all leaves the outputs unchanged (else all
      go to `rest`), and its sets found as in paper B's (a forward pass of the copy per
      tensor: 0.4 s for PreResNet32 on 8x8 images);
    * paper_b: every set invariant_sets finds among all trained parameters, the norm layers'
      (weight, bias) pairs included; the rest (e.g. the last BN's pair) is scale variant.
    """
    probe = _Probe(model, input_shape)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if layout == PAPER_B:
        sets = invariant_sets(probe, list(trained), tol)
        names = [n for s in sets for n in s]
        error = probe.error(names) if names else 1.0
    else:
        head = {id(p) for p in model.get_classifier().parameters()}
        names = [n for n, p in trained.items() if p.ndim > 1 and id(p) not in head]
        error = probe.error(names) if names else 1.0
        if error > tol:
            return Split({}, trained, [], error)
        sets = invariant_sets(probe, names, tol)
    invariant = {n: trained[n] for n in names}
    return Split(invariant, {n: p for n, p in trained.items() if n not in invariant}, sets, error)
