"""The networks: timm registration, norm swapping, and numerically checked scale invariance."""

import pytest
import timm
import torch
from omegaconf import OmegaConf

import src.models  # noqa: F401  (registers the PreResNets)
from src.config.resolvers import compose_config
from src.models import build_model
from src.optim.groups import (
    NEGLIGIBLE_EPS,
    norm_modules,
    scale_invariance_error,
    set_norm_eps,
    split_parameters,
)


def model_cfg(**kw):
    base = dict(name="preresnet20", norm="bn", gn_groups=8, scale_invariant=True, head_seed=0,
                head_norm=1.0, kwargs={})
    return OmegaConf.create({**base, **kw})


@pytest.mark.parametrize("depth, params", [(20, 0.27e6), (32, 0.46e6), (56, 0.85e6),
                                           (110, 1.73e6)])
def test_preresnets_are_registered_in_timm(depth, params):
    model = timm.create_model(f"preresnet{depth}", num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.02)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convs = [m for m in model.modules()
             if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == depth - 1  # stem + 2 per block; the classifier makes `depth`


@pytest.mark.parametrize("norm, cls", [("bn", torch.nn.BatchNorm2d), ("gn", torch.nn.GroupNorm),
                                       ("ln", torch.nn.LayerNorm), ("in", torch.nn.InstanceNorm2d)])
def test_norm_swap(norm, cls):
    model = build_model(model_cfg(norm=norm), 10)
    norms = norm_modules(model)
    assert norms and all(isinstance(m, cls) for m in norms)


@pytest.mark.parametrize("norm", ["bn", "gn", "ln", "in"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_loss_is_scale_invariant_in_all_trained_parameters(norm, dtype, tol):
    torch.manual_seed(0)
    model = build_model(model_cfg(norm=norm), 10).to(dtype)
    set_norm_eps(model, NEGLIGIBLE_EPS)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n, p in model.named_parameters() if p.ndim == 4}  # only the convs
    x = torch.randn(8, 3, 32, 32, dtype=dtype)
    for c in (0.1, 10.0, 1000.0):
        assert scale_invariance_error(model, trained, x, c) < tol
    # The same check fails when the classifier is trained too: it is not vacuous.
    assert scale_invariance_error(model, trained | {"fc.weight"}, x, 10.0) > 1.0


def test_frozen_parts():
    model = build_model(model_cfg(head_norm=2.5), 10)
    assert not model.fc.weight.requires_grad and not model.fc.bias.requires_grad
    assert torch.allclose(model.fc.weight.norm(dim=1), torch.full((10,), 2.5))
    assert torch.equal(model.fc.weight, build_model(model_cfg(head_norm=2.5), 10).fc.weight)
    for m in norm_modules(model):
        assert not m.weight.requires_grad and torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_timm_resnet_zero_init_is_undone_when_frozen():
    model = build_model(model_cfg(name="resnet18"), 10)
    assert all(torch.all(m.weight == 1) for m in norm_modules(model))
    split = split_parameters(model, (3, 32, 32))
    assert split.rest == {} and len(split.invariant) == 20 and split.error < 1e-10


def test_split_without_scale_invariant_mode():
    model = build_model(model_cfg(scale_invariant=False), 10)
    split = split_parameters(model, (3, 32, 32))
    assert set(split.invariant) == {n for n, p in model.named_parameters() if p.ndim == 4}
    assert set(split.rest) == {n for n, p in model.named_parameters() if p.ndim < 4}
    # Without a norm nothing is scale invariant: everything is `rest`.
    plain = build_model(model_cfg(norm="none", scale_invariant=False), 10)
    split = split_parameters(plain, (3, 32, 32))
    assert split.invariant == {} and len(split.rest) == len(list(plain.parameters()))
    assert split.error > 1.0


def test_convnexts_invariant_sets_are_the_convs_that_feed_a_layernorm():
    """conf/model/convnext_atto.yaml's listing, on a narrow ConvNeXt of four blocks (the rule
    does not depend on the width or depth): the stem's conv and each block's depthwise conv,
    each with its bias; the MLPs, downsampling convs, affines, layer scales and head are not."""
    cfg = compose_config(["model=convnext_atto", "+model.kwargs.depths=[1,1,1,1]",
                          "+model.kwargs.dims=[8,16,32,64]"]).model
    model = build_model(cfg, num_classes=10)
    split = split_parameters(model, (3, 32, 32), cfg.scale_invariant)
    convs = ["stem.0"] + [name for name, _ in model.named_modules() if name.endswith("conv_dw")]
    assert len(convs) == 5
    assert split.sets == [[f"{c}.weight", f"{c}.bias"] for c in convs]
    assert {n for n, p in model.named_parameters() if p.requires_grad} - set(split.invariant) \
        == set(split.rest) and any("mlp" in n for n in split.rest)
