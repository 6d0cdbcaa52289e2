"""src.api in a training loop of one's own (docs/api.md): the page's example runs as written, a
plain torch loop over the API gives the numbers `python -m src.train` records, the schedulers
keep torch's LRScheduler conventions, timm's optimizer factory takes the groups, the Monitor
reports what ScaleInvariantMonitor computes, and importing the API stays light. Float64
throughout; tolerances 1e-12 relative unless a comment says why not."""

import copy
import json
import math
import re
import subprocess
import sys
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.api import (
    TEXP,
    ExpLR,
    InstantDecay,
    Monitor,
    OverflowGuard,
    TableLR,
    TwinLR,
    invariant_sets,
    scheduler,
)
from src.engine.metrics import ScaleInvariantMonitor
from src.optim.schedules import schedule_table
from tests.conftest import ROOT

LR, WD, MOMENTUM = 0.1, 5e-4, 0.9


def close(actual, expected, rel=1e-12):
    """actual == expected to `rel` relative, and exactly where expected is 0."""
    return actual == pytest.approx(expected, rel=rel, abs=0)


def small_net(seed: int = 0) -> nn.Module:
    """conv-BN-ReLU twice, pooled, a linear head, in float64. BN's eps is negligible, so the
    loss is scale invariant to rounding in the convs and in the first BN's (weight, bias):
    invariant_sets finds those three sets; the last BN and the head are the rest."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, eps=1e-30), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, eps=1e-30), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double()


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(16, 1, 6, 6, dtype=torch.float64, generator=g),
            torch.randint(3, (16,), generator=g))


def sgd(model, x, **kwargs) -> torch.optim.SGD:
    settings = dict(lr=LR, momentum=MOMENTUM, weight_decay=WD) | kwargs
    return torch.optim.SGD(invariant_sets(model, x), **settings)


def values(optimizer) -> dict[str, tuple[float, float]]:
    """name -> (lr, weight_decay) of each group, as the next optimizer.step() uses them."""
    return {g["name"]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups}


def update(model, optimizer, x, y) -> torch.Tensor:
    """One optimizer step on (x, y); the logits it started from."""
    logits = model(x)
    optimizer.zero_grad()
    F.cross_entropy(logits, y).backward()
    optimizer.step()
    return logits.detach()


def alpha(lr: float, wd: float, momentum: float) -> float:
    """Paper A's alpha: the larger root of x^2 - (1 + gamma - eta lambda) x + gamma, its
    discriminant written as (1 - gamma)^2 - 2 eta lambda (1 + gamma) + (eta lambda)^2 so that
    b^2 - 4 gamma does not cancel away digits."""
    il = lr * wd
    return 0.5 * (1 + momentum - il + math.sqrt((1 - momentum) ** 2 - 2 * il * (1 + momentum)
                                                + il**2))


# --- the docs page --------------------------------------------------------------------------

def test_the_docs_example_runs_as_written(capsys):
    """Every ```python block of docs/api.md, in order, in one namespace: the loop, then the
    resume snippet."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 1
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/api.md, python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert namespace["scheduler"].last_epoch == namespace["steps"]
    assert "effective lr" in out and "test accuracy" in out
    namespace["monitor"].close()


# --- a plain torch loop over the API == python -m src.train ---------------------------------

# channels_last=false: own_loop's model is contiguous, as a plain loop's is (auto would give
# src.train NHWC in float64, which agrees to round-off, not to the last bit)
COMMON = ["model=preresnet20", "dataset.num_train=64", "trainer.precision=fp64",
          "trainer.channels_last=false", "trainer.log_every_n_steps=1",
          "trainer.renormalize_every_n_steps=1", "trainer.track_params=all"]
# 64 images at batch 16: one epoch of 4 updates. Milestones are epochs in the config and
# updates in the API: 0.5 epochs = update 2.
PARITY = {
    # paper B's layout: a `rest` group (norm affines, classifier) with LR and WD of its own
    "exp": (["schedule=exp", "model.scale_invariant=paper_b", "optimizer.rest_lr=0.05",
             "optimizer.rest_weight_decay=1e-3"],
            lambda optimizer, total: ExpLR(optimizer, total)),
    # a bound below the initial norm: the guard rescales after every update
    "texp": (["schedule=texp", "schedule.milestones=[0.5]", "schedule.factor=0.1",
              "trainer.renormalize_above=1.0"],
             lambda optimizer, total: TEXP(optimizer, total, milestones=[2], factor=0.1)),
    "cosine_twin": (["schedule=equivalent", "schedule.base=cosine"],
                    lambda optimizer, total: TwinLR(optimizer, total, base="cosine")),
}


def own_loop(cfg, make_scheduler):
    """The run of a prepared config as a researcher's loop writes it: the package's data and
    model (as src/engine/build.py makes them), then torch's SGD over invariant_sets' groups and
    the API's scheduler, guard and monitor. Returns per update the groups' (lr, weight decay)
    and the record (loss, accuracy, monitor), the epoch's angles, and the final parameters."""
    from src.data import build_data
    from src.models import build_model

    dtype, device = torch.float64, torch.device("cpu")
    data = build_data(cfg.dataset, batch_size=cfg.trainer.batch_size, seed=cfg.seed,
                      device=device, dtype=dtype)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data.num_classes).to(dtype=dtype).train()
    batches = list(data.train.epoch(0))
    opt = cfg.optimizer
    groups = invariant_sets(model, batches[0][0], layout=cfg.model.scale_invariant)
    for group in groups:
        invariant = group["name"] == "scale_invariant"
        group["lr"] = opt.lr if invariant else opt.rest_lr
        group["weight_decay"] = opt.weight_decay if invariant else opt.rest_weight_decay
    optimizer = torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum)
    schedule = make_scheduler(optimizer, len(batches))
    guard = OverflowGuard(model, optimizer, schedule, above=cfg.trainer.renormalize_above)
    monitor = Monitor(optimizer, schedule, every=1, tracked="all")
    used, records = [], []
    monitor.start_epoch()
    for x, y in batches:
        used.append(values(optimizer))
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        records.append({"train/loss": loss.item(),
                        "train/acc": (logits.argmax(1) == y).sum().item() / len(y), **monitor()})
        guard.check()
    epoch = monitor.end_epoch()
    monitor.close()
    return used, records, epoch, dict(model.named_parameters())


@pytest.mark.parametrize("case", list(PARITY))
def test_a_plain_torch_loop_over_the_api_reproduces_src_train(tiny_cfg, tmp_path, case):
    """Same config, seed and batches, float64: per update the LR and weight decay of every
    group, the loss, accuracy and every monitor metric, the epoch's angles and the final
    weights agree to 1e-12 with the run `python -m src.train` makes (its metrics.jsonl, its
    checkpoint, and the schedule table it builds from the config).

    Checked by hand: with own_loop's scheduler one update ahead (made for len(batches) + 1
    updates and stepped once before the loop) every case fails at update 0 (si/effective_lr,
    1e-3 relative for exp, 0.1 for the cosine twin); with `guard.check()` left out, texp fails
    at update 1 (the loss, 1e-9 relative: with BN's eps 1e-5 a rescale is not quite exact). The
    assert on consecutive LRs below keeps such a shift visible: no two neighbouring updates
    share an LR. Measured: the numbers agree to 2.2e-16, the last bit."""
    from src.engine.run_folder import load_checkpoint
    from src.optim.schedules import build_schedule
    from src.tracking.run_format import read_metrics
    from tests.helpers.runs import train

    overrides, make_scheduler = PARITY[case]
    cfg = tiny_cfg(*COMMON, *overrides)
    assert train(cfg, tmp_path)["status"] == "completed"  # prepares cfg in place
    records = read_metrics(tmp_path)
    package = [r for r in records if "train/loss" in r]
    package_epoch = next(r for r in records if "train/epoch_loss" in r)
    weights = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    table = build_schedule(cfg.schedule, cfg.optimizer, 4, 4)  # 4 updates an epoch, 4 in all

    used, mine, epoch, params = own_loop(cfg, make_scheduler)

    assert [r["step"] for r in package] == [0, 1, 2, 3] and len(mine) == 4
    lrs = [u["scale_invariant"][0] / r["si/renorm_scale"] ** 2 for u, r in zip(
        used, package, strict=True)]
    assert all(abs(b / a - 1) > 1e-6 for a, b in pairwise(lrs))
    if case == "texp":
        assert all(r["si/renorm_scale"] != 1.0 for r in package[1:])  # rescaled after each
    for t, (groups, record, theirs) in enumerate(zip(used, mine, package, strict=True)):
        assert set(record) == set(theirs) - {"step", "epoch", "lr"}, t
        for key, value in record.items():
            assert close(value, theirs[key]), (t, key, value, theirs[key])
        # metrics.jsonl logs the table's LR; the guard ran the group at scale^2 times it and
        # scale^-2 times the weight decay (SGD's rescaling)
        c2 = theirs["si/renorm_scale"] ** 2
        assert close(groups["scale_invariant"][0], theirs["lr"] * c2), t
        for name, (lr, wd) in groups.items():
            row = table.groups[name]
            c2 = theirs["si/renorm_scale"] ** 2 if name == "scale_invariant" else 1.0
            assert close(lr, row.lr[t] * c2), (t, name)
            assert close(wd, row.weight_decay[t] / c2), (t, name)
    assert set(used[0]) == ({"scale_invariant", "rest"} if case == "exp"
                            else {"scale_invariant"})
    for key, value in epoch.items():
        assert close(value, package_epoch[key]), key
    for name, p in params.items():
        assert (p.detach() - weights[name]).norm() <= 1e-12 * weights[name].norm(), name


# --- torch's LRScheduler conventions ----------------------------------------------------------

def test_making_explr_sets_update_0_to_paper_a_values():
    """LR eta alpha^(-2t-1) from update 0, the momentum correction kappa = gamma (1 - 1/alpha)
    / eta on update 0 only (negative: alpha < 1), computed here as gamma lambda / (gamma -
    alpha), the same number since (alpha - 1)(gamma/alpha - 1) = eta lambda. The package
    computes (alpha - 1) / eta + lambda, the same number once more (alpha - 1 + eta lambda =
    gamma (1 - 1/alpha) by alpha's equation), in which alpha - 1 = -5e-4 loses about 3 digits:
    2e-13 relative here, within 1e-12. The rest keeps its LR and weight decay."""
    model, (x, _) = small_net(), batch()
    optimizer = sgd(model, x)
    explr = ExpLR(optimizer, total_steps=6)
    a = alpha(LR, WD, MOMENTUM)
    assert explr.last_epoch == 0
    si, rest = values(optimizer)["scale_invariant"], values(optimizer)["rest"]
    assert close(si[0], LR / a) and close(si[1], MOMENTUM * WD / (MOMENTUM - a)) and si[1] < 0
    assert rest == (LR, WD)
    assert explr.get_last_lr() == [si[0], LR]
    lrs = explr.table.groups["scale_invariant"].lr
    assert all(close(lrs[t], LR * a ** (-2 * t - 1)) for t in range(6))
    # no weight decay after update 0, to rounding: kappa_t (t >= 1) is a difference that is
    # 0 in exact arithmetic, and the table holds its rounding, about 8e-16 = 2e-13 kappa_0
    kappas = explr.table.groups["scale_invariant"].weight_decay
    assert all(abs(wd) < 1e-12 * abs(kappas[0]) for wd in kappas[1:])


def test_last_epoch_is_the_next_update_and_past_the_end_is_a_value_error():
    model, (x, _) = small_net(), batch()
    optimizer = sgd(model, x)
    texp = TEXP(optimizer, total_steps=5, milestones=[2], factor=0.1)
    rows = texp.table.groups
    for t in range(5):
        assert texp.last_epoch == t
        for name, (lr, wd) in values(optimizer).items():
            assert (lr, wd) == (rows[name].lr[t], rows[name].weight_decay[t]), (t, name)
        assert texp.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
        optimizer.step()  # no gradients: a no-op, but torch wants it before scheduler.step()
        texp.step()
    # milestones in updates: the rest's LR drops by the factor at update 2
    assert [float(lr) for lr in rows["rest"].lr] == [LR, LR, LR * 0.1, LR * 0.1, LR * 0.1]
    assert texp.last_epoch == 5  # after the last update; its values are kept
    with pytest.raises(ValueError, match="made for 5 updates"):
        texp.step()


def test_state_dict_warm_start_continues_as_the_unbroken_run():
    """10 updates at once, and 4 + 6 with model, optimizer, scheduler and guard made anew and
    the three state dicts loaded (the guard made before loading, as src/engine/state.py does:
    its target is the norm of the model it is made with, in no state dict): the same values at
    every update and bitwise the same weights. The guard rescales after every update, so
    `scale` != 1 is part of what resumes."""
    x, y = batch()

    def make():
        model = small_net()
        optimizer = sgd(model, x)
        explr = ExpLR(optimizer, total_steps=10)
        return model, optimizer, explr, OverflowGuard(model, optimizer, explr, above=1e-3)

    def run(model, optimizer, explr, guard, n):
        seen = []
        for _ in range(n):
            seen.append(values(optimizer))
            update(model, optimizer, x, y)
            explr.step()
            guard.check()
        return seen

    unbroken = make()
    expected = run(*unbroken, 10)
    first = make()
    seen = run(*first, 4)
    saved = copy.deepcopy({"model": first[0].state_dict(), "optimizer": first[1].state_dict(),
                           "scheduler": first[2].state_dict()})
    assert saved["scheduler"]["last_epoch"] == 4 and saved["scheduler"]["scale"] != 1.0
    model, optimizer, explr, guard = make()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    explr.load_state_dict(saved["scheduler"])
    assert explr.last_epoch == 4 and values(optimizer) == expected[4]
    seen += run(model, optimizer, explr, guard, 6)
    assert seen == expected
    for a, b in zip(unbroken[0].parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_groups_need_names_of_their_own():
    model, (x, _) = small_net(), batch()
    plain = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    with pytest.raises(ValueError, match="needs a name of its own"):
        ExpLR(plain, total_steps=4)
    with pytest.raises(ValueError, match="no `scale_invariant` group"):
        Monitor(plain)
    twice = torch.optim.SGD([{"name": "a", "params": [model[0].weight]},
                             {"name": "a", "params": [model[3].weight]}], lr=LR, momentum=0.0)
    with pytest.raises(ValueError, match="needs a name of its own"):
        TwinLR(twice, total_steps=4)
    with pytest.raises(ValueError, match="Adam"):  # no twin derived for it
        ExpLR(torch.optim.Adam(invariant_sets(model, x), lr=LR), total_steps=4)


def test_the_generic_forms_and_the_named_schedulers_agree():
    """scheduler(optimizer, name, ...) and TableLR(optimizer, schedule_table(...)) give the
    tables ExpLR, TEXP, TwinLR and InstantDecay give; base values are read once, from
    torch's initial_lr (and initial_weight_decay), so a second scheduler on the same optimizer
    starts from them even after the first one changed the groups."""
    model, (x, _) = small_net(), batch()
    optimizer = sgd(model, x)
    named = {"exp": ExpLR(optimizer, 8),
             "texp": TEXP(optimizer, 8, milestones=[3, 6], factor=0.2),
             "equivalent": TwinLR(optimizer, 8, base="step", milestones=[3, 6], factor=0.2),
             "instant_decay": InstantDecay(optimizer, 8, milestones=[3, 6], factor=0.2)}
    for name, made in named.items():
        kwargs = {} if name == "exp" else dict(milestones=[3, 6], factor=0.2)
        if name == "equivalent":
            kwargs["base"] = "step"
        generic = scheduler(optimizer, name, 8, **kwargs)
        table = schedule_table(name, {"scale_invariant": (LR, WD), "rest": (LR, WD)},
                               made.table.spec, 8, **kwargs)
        direct = TableLR(optimizer, table)
        for other in (generic, direct):
            for group, row in made.table.groups.items():
                assert list(other.table.groups[group].lr) == list(row.lr), (name, group)
                assert list(other.table.groups[group].weight_decay) == list(
                    row.weight_decay), (name, group)


@pytest.mark.parametrize("name", ["expo", "equivalent"])
def test_an_unknown_schedule_name_is_a_value_error(name):
    model, (x, _) = small_net(), batch()
    with pytest.raises(ValueError):
        scheduler(sgd(model, x), name, 4)


# --- timm -------------------------------------------------------------------------------------

def test_timm_create_optimizer_v2_takes_the_groups_and_explr_drives_it():
    """Given groups, timm passes them through: each takes the call's LR and weight decay, 1-D
    tensors included (timm leaves weight decay off 1-D tensors only when given a model).
    timm's `sgd` is torch's SGD with Nesterov momentum, which the twins are not derived for: a
    clear error; its `momentum` is heavy ball, which ExpLR sets as it does torch's own SGD.
    Given a model, timm's groups have no names: a clear error."""
    from timm.optim import create_optimizer_v2

    model, (x, _) = small_net(), batch()
    nesterov = create_optimizer_v2(invariant_sets(model, x), opt="sgd", lr=LR,
                                   momentum=MOMENTUM, weight_decay=WD)
    assert all(g["nesterov"] for g in nesterov.param_groups)
    with pytest.raises(ValueError, match="opt='sgd' is Nesterov"):
        ExpLR(nesterov, total_steps=4)
    optimizer = create_optimizer_v2(invariant_sets(model, x), opt="momentum", lr=LR,
                                    momentum=MOMENTUM, weight_decay=WD)
    assert [g["name"] for g in optimizer.param_groups] == ["scale_invariant", "rest"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [WD, WD]
    assert any(p.ndim == 1 for p in optimizer.param_groups[0]["params"])  # BN's pair
    explr = ExpLR(optimizer, total_steps=4)
    reference = ExpLR(sgd(small_net(), x), total_steps=4)
    for t in range(4):
        assert explr.get_last_lr() == reference.get_last_lr(), t
        assert [g["weight_decay"] for g in optimizer.param_groups] == [
            g["weight_decay"] for g in reference.optimizer.param_groups], t
        for s in (explr, reference):
            s.optimizer.step()
            s.step()
    unnamed = create_optimizer_v2(model, opt="momentum", lr=LR, weight_decay=WD)
    with pytest.raises(ValueError, match="needs a name of its own"):
        ExpLR(unnamed, total_steps=4)


def twin_outputs(make_optimizer, twin: bool, steps: int = 10) -> torch.Tensor:
    """The logits before each of `steps` updates of small_net on one batch: constant LR with
    weight decay (plain torch, no scheduler), or ExpLR's twin of it."""
    model, (x, y) = small_net(), batch()
    optimizer = make_optimizer(invariant_sets(model, x))
    explr = ExpLR(optimizer, steps) if twin else None
    outputs = []
    for _ in range(steps):
        outputs.append(update(model, optimizer, x, y))
        if explr:
            explr.step()
    return torch.stack(outputs)


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def test_explr_on_timms_classical_momentum_is_the_twin_of_weight_decay():
    """timm's opt="momentum" (heavy ball): the network's outputs under ExpLR without weight
    decay are those of a constant LR with weight decay, update after update (float64)."""
    from timm.optim import create_optimizer_v2

    def make(groups):
        return create_optimizer_v2(groups, opt="momentum", lr=LR, momentum=MOMENTUM,
                                   weight_decay=WD)

    assert make(invariant_sets(small_net(), batch()[0])).param_groups[0]["nesterov"] is False
    assert relative_gap(twin_outputs(make, False), twin_outputs(make, True)) < 1e-12


@pytest.mark.parametrize("setting", [{"nesterov": True}, {"dampening": 0.5}])
def test_explr_on_other_momentum_is_refused(setting):
    """The twins are derived for heavy-ball momentum: Nesterov (timm's opt="sgd") or dampening
    would make ExpLR no twin at all (outputs 1.2e-3 and 7.7e-5 apart after 10 updates)."""
    def make(groups):
        return torch.optim.SGD(groups, lr=LR, momentum=MOMENTUM, weight_decay=WD, **setting)

    with pytest.raises(ValueError, match="nesterov=False and dampening=0"):
        twin_outputs(make, True)


# --- the overflow guard -----------------------------------------------------------------------

@pytest.mark.xfail(strict=True, reason=(
    "src/optim/renormalize.py: with a BN's (weight, bias) in the group (paper B's layout) the "
    "next BN's input has degree 2 in the group's scale; the guard starts the running "
    "statistics over instead of rescaling them (an evaluation recomputes them), so evaluation "
    "right after a rescale, without recomputing, is not the same"))
def test_the_guard_changes_no_evaluation_output_with_trainable_affines():
    model, (x, y) = small_net(), batch()
    optimizer = sgd(model, x)
    explr = ExpLR(optimizer, total_steps=4)
    guard = OverflowGuard(model, optimizer, explr, above=1e-3)
    for _ in range(3):
        update(model, optimizer, x, y)
        explr.step()
    model.eval()
    before = model(x).detach()
    assert guard.check()
    assert relative_gap(before, model(x).detach()) < 1e-12


# --- the monitor ------------------------------------------------------------------------------

def direct_monitor(optimizer, tracked) -> ScaleInvariantMonitor:
    si, rest = optimizer.param_groups
    return ScaleInvariantMonitor(dict(zip(si["param_names"], si["params"], strict=True)),
                                 tracked, si["sets"], rest["params"])


def test_the_monitor_reports_what_scale_invariant_monitor_computes():
    """Every other update (every=2) the same keys and values as ScaleInvariantMonitor called
    directly around the step, {} in between; the same epoch angle; after close() nothing."""
    model, (x, y) = small_net(), batch()
    optimizer = sgd(model, x)
    monitor = Monitor(optimizer, every=2, tracked=["0.weight"])
    direct = direct_monitor(optimizer, ["0.weight"])
    monitor.start_epoch()
    direct.start_epoch()
    for t in range(5):
        logits = model(x)
        optimizer.zero_grad()
        F.cross_entropy(logits, y).backward()
        expected = direct.before_step(optimizer.param_groups[0]["lr"]) if t % 2 == 0 else {}
        optimizer.step()
        if expected:
            expected.update(direct.after_step())
            assert "si/0.weight/angular_update" in expected and "si/sets/weight_norm_max" in (
                expected)
        assert monitor() == pytest.approx(expected, rel=1e-12, abs=0), t
    assert monitor.end_epoch() == pytest.approx(direct.end_epoch(), rel=1e-12, abs=0)
    assert monitor() == {}  # read once
    monitor.close()
    update(model, optimizer, x, y)  # update 5, then update 6: a logging one, were it hooked
    update(model, optimizer, x, y)
    assert monitor() == {} and monitor.steps == 5


def test_the_monitor_with_a_scheduler_counts_its_updates_and_adds_scale_and_prediction():
    """Made when ExpLR is at update 1, every=2: it logs updates 2 and 4 (the scheduler's
    last_epoch), with the guard's scale and the equilibrium angle sqrt(2 eta lambda / (1 +
    gamma)) of the process with weight decay that ExpLR imitates."""
    model, (x, y) = small_net(), batch()
    optimizer = sgd(model, x)
    explr = ExpLR(optimizer, total_steps=6)
    update(model, optimizer, x, y)
    explr.step()
    monitor = Monitor(optimizer, explr, every=2)
    direct = direct_monitor(optimizer, [])
    logged = []
    for t in range(1, 6):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        expected = direct.before_step(optimizer.param_groups[0]["lr"]) if t % 2 == 0 else {}
        optimizer.step()
        explr.step()
        record = monitor()
        if expected:
            logged.append(t)
            expected.update(direct.after_step())
            assert record.pop("si/renorm_scale") == 1.0
            assert close(record.pop("si/angular_update_predicted"),
                         math.sqrt(2 * LR * WD / (1 + MOMENTUM)))
        assert record == pytest.approx(expected, rel=1e-12, abs=0), t
    assert logged == [2, 4]
    monitor.close()


# --- importing the API --------------------------------------------------------------------------

def test_importing_the_api_pulls_in_no_hydra_omegaconf_timm_or_torchvision():
    code = ("import json, sys, time\n"
            "t0 = time.perf_counter(); import torch; t1 = time.perf_counter()\n"
            "import src.api; t2 = time.perf_counter()\n"
            "print(json.dumps({'loaded': sorted({m.split('.')[0] for m in sys.modules}),\n"
            "                  'torch_s': t1 - t0, 'api_s': t2 - t1}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    report = json.loads(result.stdout)
    assert not {"hydra", "omegaconf", "timm", "torchvision"} & set(report["loaded"])
    print(f"import torch {report['torch_s']:.2f} s, then src.api {report['api_s']:.2f} s")
