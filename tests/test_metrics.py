"""Scale-invariance metrics: exact angles, and <grad, w> = 0 on a scale-invariant network."""

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from src.engine.metrics import (
    FlatGroup,
    ScaleInvariantMonitor,
    angle_from_chord_sq,
    weight_metrics,
)
from src.models import build_model
from src.optim.groups import NEGLIGIBLE_EPS, set_norm_eps
from src.tracking.run_format import read_metrics
from tests.helpers.runs import train


def sums(weights, grads):
    """||w||^2, ||g||^2, <w, g> of tensor lists, the plain way."""
    def dot(a, b):
        return sum(float(torch.vdot(x.detach().flatten(), y.detach().flatten()))
                   for x, y in zip(a, b, strict=True))
    return dot(weights, weights), dot(grads, grads), dot(weights, grads)


@pytest.mark.parametrize("theta", [math.pi / 2, 0.3, 1e-4, 1e-8])
def test_angle_is_accurate_down_to_tiny_angles(theta):
    e1, e2 = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    e1[0], e2[1] = 1.0, 1.0
    rotated = math.cos(theta) * e1 + math.sin(theta) * e2
    # two "tensors" in one set, the vector scaled: the angle ignores the norms
    group = FlatGroup([e1[:2], e1[2:]], [[0, 1]])
    whole, per_set, own = group.chords_sq(e1, 7 * rotated, [0])
    assert angle_from_chord_sq(whole.item()) == pytest.approx(theta, rel=1e-12)
    assert angle_from_chord_sq(per_set.item()) == pytest.approx(theta, rel=1e-12)
    assert angle_from_chord_sq(own.item()) == pytest.approx(theta, rel=1e-12)  # e2 not in it


def test_gradient_is_orthogonal_to_scale_invariant_weights():
    cfg = OmegaConf.create(dict(name="preresnet20", norm="bn", gn_groups=8, scale_invariant=True,
                                head_seed=0, head_norm=1.0, kwargs={}))
    torch.manual_seed(0)
    model = build_model(cfg, 10).double()
    set_norm_eps(model, NEGLIGIBLE_EPS)  # with BN's default 1e-5 the cosine is ~2e-8
    x, y = torch.randn(16, 3, 32, 32, dtype=torch.float64), torch.randint(10, (16,))
    F.cross_entropy(model(x), y).backward()
    weights = [p for p in model.parameters() if p.requires_grad]
    metrics = weight_metrics(*sums(weights, [p.grad for p in weights]), lr=0.1)
    assert abs(metrics["cos_weight_grad"]) < 1e-10  # the lemma <grad L(w), w> = 0
    assert metrics["effective_lr"] == pytest.approx(0.1 / metrics["weight_norm"] ** 2, rel=1e-14)
    params = dict(model.named_parameters())
    # A conv feeding a norm layer is scale invariant on its own; one feeding the residual
    # sum is not (only jointly with the others): its cosine is far from 0.
    one = params["stages.0.1.conv1.weight"]
    assert abs(weight_metrics(*sums([one], [one.grad]), 0.1)["cos_weight_grad"]) < 1e-10
    one = params["stages.0.1.conv2.weight"]
    assert abs(weight_metrics(*sums([one], [one.grad]), 0.1)["cos_weight_grad"]) > 1e-6


def test_monitor_angular_update_matches_the_step():
    w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
    w.grad = torch.tensor([0.0, -1.0], dtype=torch.float64)
    monitor = ScaleInvariantMonitor({"w": w}, ["w"], [[0]])
    monitor.start_epoch()
    record = monitor.before_step(lr=0.5)
    with torch.no_grad():
        w -= 0.5 * w.grad  # (1, 0.5): the angle is atan(0.5)
    record.update(monitor.after_step())
    assert record["si/angular_update"] == pytest.approx(math.atan(0.5), rel=1e-14)
    assert record["si/w/grad_norm"] == 1.0 and record["si/w/norm_sq_over_lr"] == 2.0
    assert monitor.end_epoch()["si/w/angular_update_epoch"] == pytest.approx(math.atan(0.5))


def test_monitor_sums_and_angles_match_the_plain_way_step_after_step():
    """Tensors of uneven sizes, a set of two; three updates and the epoch's angle: the reused
    buffers must keep the epoch's start and each step's weights apart."""
    torch.manual_seed(0)
    shapes = [(3, 2), (5,), (2, 2, 2), (7,)]
    ws = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
    named = {f"t{i}": w for i, w in enumerate(ws)}
    sets = [[0], [1, 2], [3]]
    monitor = ScaleInvariantMonitor(named, ["t2"], sets)

    def unit(tensors):
        flat = torch.cat([t.detach().flatten() for t in tensors])
        return flat / flat.norm()

    def angle(a, b):
        return angle_from_chord_sq(float((a - b).square().sum()))

    monitor.start_epoch()
    start = [w.detach().clone() for w in ws]
    for _ in range(3):
        for w in ws:
            w.grad = torch.randn_like(w)
        record = monitor.before_step(lr=0.1)
        before = [w.detach().clone() for w in ws]
        w2, g2, wg = sums(ws, [w.grad for w in ws])
        assert record["si/weight_norm_sq"] == pytest.approx(w2, rel=1e-13)
        assert record["si/grad_norm"] == pytest.approx(math.sqrt(g2), rel=1e-13)
        assert record["si/cos_weight_grad"] == pytest.approx(wg / math.sqrt(w2 * g2), rel=1e-12)
        assert record["si/t2/weight_norm_sq"] == pytest.approx(float(ws[2].detach().square().sum()),
                                                               rel=1e-13)
        per_set = [sums([ws[i] for i in s], [ws[i].grad for i in s]) for s in sets]
        assert record["si/sphere_grad_sq"] == pytest.approx(sum(a * b for a, b, _ in per_set),
                                                            rel=1e-13)
        with torch.no_grad():
            for w in ws:
                w -= 0.3 * w.grad
        record.update(monitor.after_step())
        assert record["si/angular_update"] == pytest.approx(angle(unit(before), unit(ws)),
                                                            rel=1e-12)
        assert record["si/t2/angular_update"] == pytest.approx(
            angle(unit(before[2:3]), unit(ws[2:3])), rel=1e-12)
        set_angles = [angle(unit([before[i] for i in s]), unit([ws[i] for i in s]))
                      for s in sets]
        assert record["si/sets/angular_update_max"] == pytest.approx(max(set_angles), rel=1e-12)
        assert record["si/sets/angular_update_min"] == pytest.approx(min(set_angles), rel=1e-12)
    epoch = monitor.end_epoch()
    assert epoch["si/angular_update_epoch"] == pytest.approx(angle(unit(start), unit(ws)),
                                                             rel=1e-12)


def test_records_carry_the_metrics(tiny_cfg, tmp_path):
    train(tiny_cfg("trainer.max_steps=3", "trainer.log_every_n_steps=1",
                   "trainer.track_params=[stages.0.1.conv1.weight]"), tmp_path)
    records = read_metrics(tmp_path)
    keys = {"weight_norm", "weight_norm_sq", "effective_lr", "norm_sq_over_lr", "grad_norm",
            "cos_weight_grad", "angular_update"}
    for prefix in ("si", "si/stages.0.1.conv1.weight"):
        assert {f"{prefix}/{k}" for k in keys} <= set(records[0])
        assert f"{prefix}/angular_update_epoch" in records[-1]
    assert all(abs(r["si/cos_weight_grad"]) < 1e-3 for r in records if "train/loss" in r)


def test_unknown_tracked_tensor_is_a_clear_error(tiny_cfg, tmp_path):
    from src.errors import UserError
    with pytest.raises(UserError, match="trainer.track_params"):
        train(tiny_cfg("trainer.max_steps=1", "trainer.track_params=[fc.weight]"), tmp_path)


def test_bn_recalibration_averages_the_batch_statistics():
    from src.data.loaders import TensorLoader
    from src.engine.loop import recalibrate_batch_norm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    images = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8)
    loader = TensorLoader(images, torch.zeros(24, dtype=torch.int64), batch_size=8,
                          mean=[0.5] * 3, std=[0.25] * 3, device="cpu", dtype=torch.float32)
    recalibrate_batch_norm(model, loader, 0, 2, torch.device("cpu"), "fp32")
    with torch.no_grad():
        features = [model[0](x) for x, _ in loader.epoch(0)][:2]
    bn = model[1]
    expected_mean = torch.stack([f.mean((0, 2, 3)) for f in features]).mean(0)
    expected_var = torch.stack([f.var((0, 2, 3)) for f in features]).mean(0)  # unbiased
    assert torch.allclose(bn.running_mean, expected_mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(bn.running_var, expected_var, rtol=1e-5)
    assert bn.momentum == 0.1 and bn.num_batches_tracked == 2


def test_no_private_torch_api():
    """BN recalibration is torch's update_bn, norms torch.nn.utils.get_total_norm; only the
    documented foreach ops (torch._foreach_*, beta) are left."""
    import re

    from tests.conftest import ROOT

    calls = {m for path in (ROOT / "src").rglob("*.py")
             for m in re.findall(r"torch\._[a-z]\w*", path.read_text())}
    # dynamo's graph counter (src/bench/speed.py counts recompiles) has no public equivalent
    assert {c for c in calls if not c.startswith("torch._foreach_")} == {"torch._dynamo"}
    assert "torch._foreach_norm" not in calls
