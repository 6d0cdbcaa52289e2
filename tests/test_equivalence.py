"""Paper A's theorem at network level: constant LR + weight decay vs the exponential LR.

Two float64 runs of a scale-invariant PreResNet20 on the same batches, built through the real
config path. With the momentum-buffer correction the exponential run's weights are exactly
alpha^(-t) times the weight-decay run's at every step; without it they drift by ~1e-4.
"""

import pytest
import torch
from torch.nn import functional as F

from src.config import validate
from src.models.factory import NEGLIGIBLE_EPS, set_norm_eps
from src.theory.explr import alpha_star
from src.train import build

STEPS = 12
BASE = ["model=preresnet20", "trainer.precision=fp64", "trainer.batch_size=32",
        "optimizer.lr=0.1", "optimizer.momentum=0.9", "optimizer.weight_decay=5e-4"]


def run(cfg, steps):
    validate(cfg)
    data, model, optimizer, schedule = build(cfg, torch.device("cpu"))
    set_norm_eps(model, NEGLIGIBLE_EPS)  # BN's eps is the only break of scale invariance
    probe = next(data.test.epoch(0))[0]
    weights, outputs, step = [], [], 0
    while step < steps:
        for x, y in data.train.epoch(step // len(data.train)):
            schedule.apply(optimizer, step)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            step += 1
            weights.append(torch.cat([p.detach().flatten() for p in model.parameters()
                                      if p.requires_grad]))
            with torch.no_grad():
                outputs.append(model.train()(probe))  # batch statistics, as in training
            if step == steps:
                break
    return weights, outputs


def deviations(reference, twin, alpha):
    """max_t ||theta~_t - C_t theta_t|| / ||C_t theta_t|| with C_t = alpha^-t, and outputs."""
    (w_ref, out_ref), (w_twin, out_twin) = reference, twin
    params = max(
        ((alpha ** -(t + 1) * a - b).norm() / (alpha ** -(t + 1) * a).norm()).item()
        for t, (a, b) in enumerate(zip(w_ref, w_twin, strict=True)))
    outputs = max(((a - b).abs().max() / a.abs().max()).item()
                  for a, b in zip(out_ref, out_twin, strict=True))
    return params, outputs


@pytest.fixture(scope="module")
def weight_decay_run():
    from tests.conftest import TINY, compose_config
    return run(compose_config([*TINY, *BASE, "schedule=constant"]), STEPS)


@pytest.mark.parametrize("correction", [True, False])
def test_exponential_lr_reproduces_weight_decay(weight_decay_run, tiny_cfg, correction):
    cfg = tiny_cfg(*BASE, "schedule=exp", f"schedule.momentum_correction={correction}")
    alpha = alpha_star(0.1, 5e-4, 0.9)
    params, outputs = deviations(weight_decay_run, run(cfg, STEPS), alpha)
    if correction:
        assert params < 1e-9 and outputs < 1e-9
    else:
        # The one-off kappa_1 term of SPEC T-A4: ~4.5e-4 relative at the first step, then
        # carried on by the momentum; it must be visible, or the test above proves nothing.
        assert params > 1e-5
