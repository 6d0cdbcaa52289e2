"""The scale-invariant parameters of any torch model, found numerically, as the optimizer's
parameter groups.

A set of parameters is scale invariant when multiplying all of it by c > 0 leaves the outputs
unchanged (a kernel feeding a norm layer; a norm layer's (weight, bias) whose output reaches a
norm layer through ReLU; convs whose outputs meet in a residual sum before a norm, jointly).
Nothing is inferred from names or shapes: each candidate set is scaled on a float64 copy of the
model whose norm layers have negligible eps, and kept if the outputs do not move.

invariant_sets(model, example_input) gives the groups a torch or timm optimizer takes:
[{"name": "scale_invariant", "params", "param_names", "sets"}, {"name": "rest", ...}], with
`sets` the invariant sets as indices into the group's params. torch only: no timm import.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NEGLIGIBLE_EPS = 1e-30  # far below any activation variance in float32 or float64
# model.scale_invariant: true (paper A: norm affines and classifier frozen, every trained weight
# scale invariant), false (nothing frozen; the invariant weights found as in paper A), or
# paper_b (nothing frozen; every invariant set among all trained parameters, each norm layer's
# (weight, bias) among them).
PAPER_B = "paper_b"
LAYOUTS = (True, False, PAPER_B)


def norm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, NORM_TYPES)]


def set_norm_eps(model: nn.Module, eps: float) -> None:
    for m in norm_modules(model):
        m.eps = eps


def scale_invariance_error(model: nn.Module, names: set[str], x: torch.Tensor, c: float) -> float:
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


class Probe:
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


def find_sets(probe: Probe, names: list[str], tol: float = 1e-8) -> list[list[str]]:
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
        modules.setdefault(n.rpartition(".")[0], []).append(n)
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


def _classifier(model: nn.Module) -> set[int]:
    """The ids of the classifier's parameters (timm's get_classifier; none elsewhere)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    return {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()


def split_parameters(model: nn.Module, input_shape: tuple[int, ...], layout=True,
                     tol: float = 1e-8) -> Split:
    """Which trained parameters the loss is scale invariant to (layout: model.scale_invariant):
    * true / false (paper A): the trained weights of >= 2 dims outside the classifier form
      the candidate group, kept only if scaling it all leaves the outputs unchanged (else all
      go to `rest`), and its sets found as below (a forward pass of the copy per tensor);
    * paper_b: every set find_sets finds among all trained parameters, the norm layers'
      (weight, bias) pairs included; the rest (e.g. the last BN's pair) is scale variant.
    """
    probe = Probe(model, input_shape)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if layout == PAPER_B:
        sets = find_sets(probe, list(trained), tol)
        names = [n for s in sets for n in s]
        error = probe.error(names) if names else 1.0
    else:
        head = _classifier(model)
        names = [n for n, p in trained.items() if p.ndim > 1 and id(p) not in head]
        error = probe.error(names) if names else 1.0
        if error > tol:
            return Split({}, trained, [], error)
        sets = find_sets(probe, names, tol)
    invariant = {n: trained[n] for n in names}
    return Split(invariant, {n: p for n, p in trained.items() if n not in invariant}, sets, error)


def parameter_groups(split: Split) -> list[dict]:
    """The split as an optimizer's parameter groups (empty ones left out): `param_names` as
    torch's optimizers keep them, the invariant sets as indices into the group's params."""
    index = {name: i for i, name in enumerate(split.invariant)}
    groups = [{"name": "scale_invariant", "params": list(split.invariant.values()),
               "param_names": list(split.invariant),
               "sets": [[index[n] for n in names] for names in split.sets]},
              {"name": "rest", "params": list(split.rest.values()),
               "param_names": list(split.rest)}]
    return [g for g in groups if g["params"]]


def invariant_sets(model: nn.Module, example_input: torch.Tensor, layout=PAPER_B,
                   tol: float = 1e-8) -> list[dict]:
    """The trained parameters of `model` as parameter groups: `scale_invariant` (every set the
    loss is scale invariant to, found numerically; its `sets`) and `rest`. example_input: a
    batch the model takes (only its shape is used: the probe draws its own 4 inputs)."""
    return parameter_groups(split_parameters(model, tuple(example_input.shape[1:]), layout, tol))


def group_sets(optimizer) -> list[list[torch.Tensor]]:
    """The scale-invariant group's sets, as lists of its tensors (none without the group)."""
    group = next((g for g in optimizer.param_groups if g.get("name") == "scale_invariant"), None)
    return [] if group is None else [[group["params"][i] for i in s] for s in group["sets"]]
