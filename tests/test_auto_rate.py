"""Paper B on paper B's network: the VGG's parameter layout found numerically, the norm-growth
identities of every scale-invariant set through the real training step (float64), and the
stationarity measure the rates are stated in."""

import pytest
import timm
import torch
import torch.nn.functional as F

from src.config.prepare import prepare
from src.engine.build import build
from src.engine.metrics import intrinsic_grad_sq
from src.engine.step import TrainStep
from src.optim.optimizer import group_sets

# Paper B's GD in float64: the whole (synthetic, 8x8) training set per update, no augmentation,
# no momentum, no weight decay. BN's eps made negligible: eps is the one break of exact scale
# invariance (at 1e-5 <grad, w> is ~1e-6 relative, far above the 1e-10 asserted here).
GD = ["model=vgg11_cifar", "model.kwargs.width=0.125", "dataset.image_size=8",
      "dataset.num_train=64", "trainer.batch_size=64", "dataset.crop_padding=0",
      "dataset.flip=false", "trainer.precision=fp64", "model.norm_eps=1e-30",
      "optimizer.momentum=0", "optimizer.weight_decay=0", "optimizer.lr=3.0",
      "optimizer.rest_lr=0.1", "trainer.log_every_n_steps=1", "trainer.epochs=5"]


def test_vgg_is_registered_in_timm():
    for name, convs in (("vgg11_cifar", 8), ("vgg16_cifar", 13)):
        model = timm.create_model(name, num_classes=10)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)  # pooling stops at 1x1
        assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == convs
    assert timm.create_model("vgg11_cifar", width=0.25).features[0].out_channels == 16


def test_paper_b_layout_is_found_numerically(tiny_cfg):
    _, model, optimizer, _ = build(prepare(tiny_cfg(*GD)), torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: [names[id(p)] for p in g["params"]] for g in optimizer.param_groups}
    sets = [[names[id(p)] for p in s] for s in group_sets(optimizer)]
    convs = [n for n, p in model.named_parameters() if p.ndim == 4]
    norms = [n.rpartition(".")[0] for n in groups["scale_invariant"] if n.endswith(".bias")]
    # each kernel alone (the classifier's too: a BN follows it), each conv BN's pair together
    assert sorted(sets) == sorted([[n] for n in [*convs, "fc.weight"]]
                                  + [[f"{m}.weight", f"{m}.bias"] for m in norms])
    assert len(norms) == 8 and "head_norm" not in norms
    assert groups["rest"] == ["head_norm.weight", "head_norm.bias"]  # the scale-variant group
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen
    rest = next(g for g in optimizer.param_groups if g["name"] == "rest")
    assert rest["lr"] == 0.1


def test_gd_identities_of_every_invariant_set(tiny_cfg):
    """||w_t+1||^2 = ||w_t||^2 + lr^2 ||grad_w F||^2 and <grad_w F, w> = 0 for every set, so the
    effective LR lr/||w_t||^2 of each falls exactly as the theory says; the records' measure
    is paper B's sum_i ||w_i||^2 ||grad_i F||^2 + ||grad_g F||^2 of these gradients."""
    cfg = tiny_cfg(*GD)
    data, model, optimizer, schedule = build(prepare(cfg), torch.device("cpu"))
    step = TrainStep(model.train(), optimizer, schedule, cfg.trainer, torch.device("cpu"))
    sets, lr = group_sets(optimizer), cfg.optimizer.lr
    ((x, y),) = list(data.train.epoch(0))  # one batch: the whole training set
    sq = lambda tensors: sum((t.double() ** 2).sum() for t in tensors).item()  # noqa: E731
    worst = {"growth": 0.0, "cos": 0.0, "effective_lr": 0.0}
    for t in range(5):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        norms = [sq(s) for s in sets]
        grads = [sq([p.grad for p in s]) for s in sets]
        dots = [sum((p.grad * p).sum() for p in s).item() for s in sets]
        expected = intrinsic_grad_sq(sets, [[p.grad for p in s] for s in sets],
                                     [p.grad for p in optimizer.param_groups[1]["params"]])
        record = step(x, y, t, float(t))
        assert record["intrinsic_grad_sq"] == pytest.approx(expected["intrinsic_grad_sq"],
                                                            rel=1e-12)
        for s, w2, g2, dot in zip(sets, norms, grads, dots, strict=True):
            after = sq(s)
            worst["growth"] = max(worst["growth"], abs(after - (w2 + lr**2 * g2)) / after)
            worst["cos"] = max(worst["cos"], abs(dot) / (w2 * g2) ** 0.5)
            worst["effective_lr"] = max(worst["effective_lr"], abs(
                lr / after - lr / w2 / (1 + lr**2 * g2 / w2)) * after / lr)
            assert after > w2  # the effective LR falls
    assert max(worst.values()) < 1e-10, worst
    # Not vacuous: the growth is far above the tolerance.
    assert lr**2 * grads[0] / norms[0] > 1e-6


def test_full_gradient_of_the_whole_set_is_the_gd_update_measure(tiny_cfg):
    """trainer.full_gradient_images (SGD's measure) on the batch of a GD update gives that
    update's own record, and leaves the gradients and BN's running statistics alone."""
    cfg = tiny_cfg(*GD)
    data, model, optimizer, schedule = build(prepare(cfg), torch.device("cpu"))
    step = TrainStep(model.train(), optimizer, schedule, cfg.trainer, torch.device("cpu"))
    x, y = data.train.first(10_000)
    buffers = [b.clone() for b in model.buffers()]
    full = step.full_gradient(x, y)
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    record = step(x, y, 0, 0.0)
    for key in ("intrinsic_grad_sq", "si/sphere_grad_sq", "rest/grad_sq"):
        assert full[f"full/{key}"] == pytest.approx(record[key], rel=1e-12)
    assert full["full/rest/grad_sq"] > 0 and full["full/train_loss"] == record["train/loss"]
