"""Each figure's claims, measured on grids written by hand: one where the claim holds, one where
it does not, and grids too small to decide it (n/a). A claim that two curves are one
distribution is checked against the permutation test run on the curves read back from the
grid. table.json carries table.md's numbers."""

import json
import math
import statistics

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.figures import claims, draw, get_figure, load_jobs
from src.figures.claims import SIGNIFICANCE, permutation_test
from src.figures.jobs import setting as grid_setting
from src.optim.schedules import build_schedule
from src.theory.explr import alpha_star, exp_lr
from tests.helpers.figures import config_yaml, write_job

TRACKED = "si/stages.0.1.conv1.weight"


def measured(grid, name) -> dict:
    return {c.name: c for c in claims(name, load_jobs(grid))}


def holds(grid, name) -> dict:
    return {k: c.holds for k, c in measured(grid, name).items()}


def epoch_record(step, epoch, **metrics) -> dict:
    return {"step": step, "epoch": float(epoch), "train/epoch_loss": 1.0, **metrics}


def done(**summary) -> dict:
    return {"status": "completed", **summary}


# fig_exp_lr's jobs as write_job composes them: optimizer.lr 0.1, weight_decay 5e-4, momentum
# 0.9. norm_sq_over_lr_constant skips the first 1 / (lr wd) = 1 / (0.1 x 5e-4) = 20,000 updates
# and averages over windows of 5 relaxation times, 5 x (1 - 0.9) / (4 x 0.1 x 5e-4) = 5 x 500 =
# 2,500 updates; it needs 2 whole windows: records up to update 24,999 at least. A record every
# 125 updates, the first at update 50 (off the windows' edges, multiples of 2,500): 20 records
# a window, and a run of 30,000 updates has 3 whole windows after update 20,000.
EXP_LR, EXP_START, EXP_WINDOW, EXP_EVERY = (0.1, 5e-4, 0.9), 20000, 2500, 125
EXP_EPOCHS = range(30, 301, 30)  # 100 updates an epoch: a test accuracy every 30 epochs


SEED_OFFSET = (0.08, -0.08, 0.04, -0.04, 0.0)  # a seed's windows off the equilibrium, mean 0


def exp_ratio(t: int, k: int, good: bool, seed: int = 0) -> float:
    """The tracked layer's ||w||^2 / LR at record k (update t) of a seed: 150 before update
    20,000, then 100 x 0.8 and 100 x 1.2 in turn (single records 50 % apart), each seed's
    windows SEED_OFFSET off in alternate directions (a seed's own window means 8-17 % apart,
    the seeds' mean 100 in every window); not good: drifting up by 4 % a window besides."""
    if t < EXP_START:
        return 150.0
    window = (t - EXP_START) // EXP_WINDOW
    offset = 1.0 + SEED_OFFSET[seed] * (-1) ** window
    drift = 1.0 if good else 1.0 + 0.04 * (t - EXP_START) / EXP_WINDOW
    return 100.0 * (0.8 if k % 2 == 0 else 1.2) * offset * drift


def exp_lr_grid(root, good: bool, seeds: int = 5, updates: int = 30000):
    """ExpLR and constant LR + WD, `seeds` seeds each, `updates` updates: training records
    every EXP_EVERY (LR, ||w||^2 and ||w||^2 / LR of the tracked layer, ||w||^2 / LR of all
    scale-invariant weights, 50) and test accuracies of one distribution for both schedules
    (noise of sd 0.01 about a shared curve). Not good: ExpLR's LR grows x1.0001 an update
    (x20 over the run), its ratio drifts, constant LR + WD's accuracy is 0.1 (10 sds) higher."""
    lr, wd, momentum = EXP_LR
    alpha = alpha_star(lr, wd, momentum)
    noise = np.random.default_rng(7).standard_normal((2, seeds, len(EXP_EPOCHS)))
    for c, schedule in enumerate(("constant", "exp")):
        for seed in range(seeds):
            records = []
            for k, t in enumerate(range(50, updates, EXP_EVERY)):
                rate = lr if schedule == "constant" else (
                    exp_lr(t, lr, alpha) if good else lr * 1.0001 ** t)
                ratio = exp_ratio(t, k, good, seed)
                records.append({"step": t, "epoch": t / 100, "lr": rate,
                                f"{TRACKED}/weight_norm_sq": ratio * rate,
                                f"{TRACKED}/norm_sq_over_lr": ratio, "si/norm_sq_over_lr": 50.0})
            for i, e in enumerate(e for e in EXP_EPOCHS if 100 * e <= updates):
                acc = 0.9 - 0.5 * math.exp(-e / 60) + 0.01 * noise[c, seed, i]
                acc += 0.1 if schedule == "constant" and not good else 0.0
                records.append(epoch_record(100 * e, e, **{"test/acc": acc}))
            write_job(root / f"{schedule}{seed}", "fig_exp_lr",
                      [f"schedule={schedule}", f"seed={seed}"], records,
                      done(steps=updates, **{"test/acc": acc}))
    return root


def curves(grid, key: str, value, metric: str = "test/acc") -> np.ndarray:
    """(seeds, epochs) of a curve's metric, in the order the claims read its jobs."""
    return np.array([[v for _, v in job.points("epoch", metric)] for job in load_jobs(grid)
                     if job.value(key) == value])


def test_exp_lr_grid_has_the_config_the_windows_are_counted_from(tmp_path):
    job = load_jobs(exp_lr_grid(tmp_path, True, seeds=1, updates=3000))[0]
    opt = job.config.optimizer
    assert (opt.lr, opt.weight_decay, opt.momentum) == EXP_LR
    assert 1 / (opt.lr * opt.weight_decay) == pytest.approx(EXP_START, rel=1e-12)
    assert 5 * (1 - opt.momentum) / (4 * opt.lr * opt.weight_decay) == pytest.approx(
        EXP_WINDOW, rel=1e-12)
    assert EXP_WINDOW % EXP_EVERY == 0 and EXP_START % EXP_EVERY == 0


@pytest.mark.parametrize("good", [True, False])
def test_exp_lr_claims(tmp_path, good):
    grid = exp_lr_grid(tmp_path, good)
    found = measured(grid, "fig_exp_lr")
    assert {k: c.holds for k, c in found.items()} == dict.fromkeys(
        ("lr_and_norm_growth", "norm_sq_over_lr_constant", "matches_constant_lr"), good)

    # after update 20,000: 3 whole windows of 2,500 updates (the records reach update
    # 29,925), each the mean of its 20 records: 10 at 0.8 x 100 and 10 at 1.2 x 100, times the
    # seed's offset, times the drift when not good (the windows' means about 2, 6 and 10 %
    # above 100). Each seed's spread is kept; the claim judges the seeds' mean.
    ratio = found["norm_sq_over_lr_constant"].measured
    assert ratio["after_update"] == pytest.approx(EXP_START, rel=1e-12)
    assert ratio["window_updates"] == pytest.approx(EXP_WINDOW, rel=1e-12)
    assert ratio["seeds"] == 5
    records = list(enumerate(range(50, 30000, EXP_EVERY)))
    expected = [[statistics.fmean(exp_ratio(t, k, good, s) for k, t in records
                                  if 0 <= t - EXP_START - i * EXP_WINDOW < EXP_WINDOW)
                 for i in range(3)] for s in range(5)]
    key = f"{TRACKED}/norm_sq_over_lr"
    for s in range(5):
        own = ratio["per_seed"][f"seed {s}"][key]
        assert own["window_means"] == pytest.approx(expected[s], rel=1e-12)
        assert own["spread"] == pytest.approx(max(expected[s]) / min(expected[s]) - 1, rel=1e-12)
    assert ratio["per_seed"]["seed 0"][key]["spread"] > 0.05  # a seed alone would fail
    mean = [statistics.fmean(column) for column in zip(*expected, strict=True)]
    assert ratio["seed_mean_window_means"][key] == pytest.approx(mean, rel=1e-12)
    assert ratio["seed_mean_window_means"]["si/norm_sq_over_lr"] == [50.0] * 3
    errors = [statistics.stdev(column) / 5**0.5 / m
              for column, m in zip(zip(*expected, strict=True), mean, strict=True)]
    assert ratio["seed_mean_relative_standard_errors"][key] == pytest.approx(errors, rel=1e-9)
    assert ratio["seed_mean_relative_standard_errors"]["si/norm_sq_over_lr"] == [0.0] * 3
    assert ratio["spread"]["si/norm_sq_over_lr"] == 0.0
    spread = ratio["spread"][key]
    if good:  # single records 50 % apart, seeds' windows up to 17 % apart, the mean level
        assert mean == pytest.approx([100.0] * 3, rel=1e-12) and spread < 1e-12
    else:
        assert spread == pytest.approx(max(mean) / min(mean) - 1, rel=1e-12)
        assert spread > 0.05
        assert found["norm_sq_over_lr_constant"].why.startswith(
            f"{key}'s seed-mean window means vary by {spread:.3g}")

    test = found["matches_constant_lr"].measured
    constant, exp = curves(grid, "schedule.name", "constant"), curves(grid, "schedule.name", "exp")
    assert constant.shape == exp.shape == (5, len(EXP_EPOCHS))
    assert test["seeds"] == [5, 5] and test["epochs"] == len(EXP_EPOCHS)
    assert (test["statistic"], test["p"]) == permutation_test(constant, exp)
    assert test["control"]["seeds"] == [2, 3]
    assert (test["control"]["statistic"], test["control"]["p"]) == permutation_test(
        constant[:2], constant[2:])
    if good:
        assert test["p"] >= SIGNIFICANCE
    else:  # 10 sds apart: the least p of 5 vs 5 seeds, the observed split and its complement
        assert test["p"] == pytest.approx(2 / 252, rel=1e-12)
        assert found["matches_constant_lr"].why.startswith("told apart: p = 0.00794")

    growth = found["lr_and_norm_growth"].measured["seed 0"]
    if good:  # the records are the theorem's ExpLR: measured and predicted growth agree
        assert growth["lr"] == pytest.approx(growth["lr_theorem"], rel=1e-12)
        assert growth["lr"] > 1e12


def test_exp_lr_claims_that_the_grid_cannot_decide(tmp_path):
    """Two seeds a schedule: no permutation test. A run of 24,000 updates: one whole window
    after update 20,000 (it would need records up to update 24,999), so no spread of window
    means. The growth claim decides both."""
    found = measured(exp_lr_grid(tmp_path / "two", True, seeds=2), "fig_exp_lr")
    assert {k: c.holds for k, c in found.items()} == {
        "lr_and_norm_growth": True, "norm_sq_over_lr_constant": True,
        "matches_constant_lr": None}
    assert found["matches_constant_lr"].why == (
        "n/a: the test needs at least 3 finished seeds a curve")

    found = measured(exp_lr_grid(tmp_path / "short", True, updates=24000), "fig_exp_lr")
    assert {k: c.holds for k, c in found.items()} == {
        "lr_and_norm_growth": True, "norm_sq_over_lr_constant": None,
        "matches_constant_lr": True}
    assert found["norm_sq_over_lr_constant"].why == (
        "n/a: fewer than 2 windows of 2500 updates after update 20000")


SPE, MILESTONES, EPOCHS, SEEDS = 50, (2, 4), 6, 5


def schedule_grid(root, name, schedules, good: bool, every=5, milestones=True, seeds=SEEDS):
    """Two schedules, `seeds` seeds each, EPOCHS epochs of SPE updates: their real LRs
    (perturbed in phase 1 of the second when not good), per-epoch angles and test accuracies
    of one distribution for both (noise of sd 0.01 about a shared accuracy curve, of 5 % about
    a shared angle curve). Not good: the second's accuracy 0.1 (10 sds) higher at every
    epoch, its angle x20 in epoch 3."""
    base = [0.3, 0.5, 0.6, 0.7, 0.72, 0.75]
    angle = [0.3, 0.3, 0.05, 0.08, 0.005, 0.006]  # drops at epochs 2 and 4
    noise = np.random.default_rng(11).standard_normal((2, len(schedules), seeds, EPOCHS))
    for k, schedule in enumerate(schedules):
        bad = k == 1 and not good
        for seed in range(seeds):
            overrides = [f"schedule={schedule}", f"seed={seed}", f"trainer.epochs={EPOCHS}",
                         *[f"schedule.milestones=[{MILESTONES[0]},{MILESTONES[1]}]"][:milestones]]
            cfg = OmegaConf.create(config_yaml(name, tuple(overrides)))
            lrs = build_schedule(cfg.schedule, cfg.optimizer, SPE, SPE * EPOCHS).groups[
                "scale_invariant"].lr
            records = [{"step": t, "epoch": t / SPE, "lr": float(lrs[t]) * (
                1 + 1e-6 * t * (bad and t < 100))} for t in range(0, SPE * EPOCHS, every)]
            for e in range(EPOCHS):
                acc = base[e] + 0.01 * noise[0, k, seed, e] + (0.1 if bad else 0.0)
                a = angle[e] * (1 + 0.05 * noise[1, k, seed, e]) * (20 if bad and e == 2 else 1)
                records.append(epoch_record(SPE * (e + 1), e + 1, **{
                    "test/acc": acc, "si/angular_update_epoch": a}))
            write_job(root / f"{schedule}{seed}", name, overrides, records,
                      done(steps=SPE * EPOCHS, **{"test/acc": acc}))
    return root


def assert_permutation_test(claim, grid, a, b, metric: str, good: bool):
    """The claim's numbers are the permutation test's on the curves read back (a's first 2
    seeds against its other 3 the control); p >= the level when good, else the least p of 5
    vs 5 seeds: 2 / 252, the observed split and its complement."""
    first, second = (curves(grid, "schedule.name", v, metric) for v in (a, b))
    assert first.shape == second.shape == (SEEDS, EPOCHS)
    test = claim.measured
    assert test["seeds"] == [SEEDS, SEEDS] and test["epochs"] == EPOCHS
    assert (test["statistic"], test["p"]) == permutation_test(first, second)
    assert test["control"]["seeds"] == [2, 3]
    assert (test["control"]["statistic"], test["control"]["p"]) == permutation_test(
        first[:2], first[2:])
    assert test["control"]["p"] >= SIGNIFICANCE  # 10 splits: p >= 1/10 whatever the data
    if good:
        assert test["p"] >= SIGNIFICANCE and claim.why == ""
    else:
        assert test["p"] == pytest.approx(2 / 252, rel=1e-12)
        assert claim.why.startswith("told apart: p = 0.00794")


@pytest.mark.parametrize("good", [True, False])
def test_texp_vs_step_claims(tmp_path, good):
    grid = schedule_grid(tmp_path, "fig_texp_vs_step", ("step", "texp"), good)
    found = measured(grid, "fig_texp_vs_step")
    assert {k: c.holds for k, c in found.items()} == dict.fromkeys(
        ("texp_growth_per_phase", "test_acc_in_distribution", "angle_drops_at_milestones"), good)
    phases = found["texp_growth_per_phase"].measured["seed 0"]
    assert [p["updates"] for p in phases.values()] == [100, 100, 100]
    # the theorem's factor for a whole phase of 100 updates at LR 0.1, 0.01, 0.001
    for p, lr in zip(phases.values(), (0.1, 0.01, 0.001), strict=True):
        assert p["phase_theorem"] == pytest.approx(alpha_star(lr, 5e-4, 0.9) ** -198, rel=1e-12)
    assert_permutation_test(found["test_acc_in_distribution"], grid, "step", "texp",
                            "test/acc", good)


@pytest.mark.parametrize("good", [True, False])
def test_cosine_claims(tmp_path, good):
    grid = schedule_grid(tmp_path, "fig_cosine", ("cosine", "equivalent"), good, every=1,
                         milestones=False)
    found = measured(grid, "fig_cosine")
    assert {k: c.holds for k, c in found.items()} == dict.fromkeys(
        ("twin_lr_is_the_theorems", "test_acc_in_distribution", "angle_in_distribution"), good)
    for name, metric in (("test_acc_in_distribution", "test/acc"),
                         ("angle_in_distribution", "si/angular_update_epoch")):
        assert_permutation_test(found[name], grid, "cosine", "equivalent", metric, good)


def test_claims_that_the_records_cannot_decide_say_why(tmp_path):
    """Two finished seeds a curve (the other 3 failed), a run that ends before a milestone:
    n/a with the reason, no crash."""
    grid = schedule_grid(tmp_path, "fig_texp_vs_step", ("step", "texp"), True)
    for seed in (2, 3, 4):
        for folder in grid.glob(f"*{seed}"):
            (folder / "summary.json").write_text('{"status": "failed"}')
    short = tmp_path / "texp0" / "summary.json"
    short.write_text(json.dumps(done(steps=150)))  # milestone 2 is update 100, 4 is 200
    found = measured(grid, "fig_texp_vs_step")
    assert found["test_acc_in_distribution"].holds is None
    assert found["test_acc_in_distribution"].why == (
        "n/a: the test needs at least 3 finished seeds a curve")
    assert found["texp_growth_per_phase"].why == (
        "n/a: the run ends (150 updates) before the last milestone (200 updates)")
    assert found["angle_drops_at_milestones"].holds is True  # it needs no second seed


@pytest.mark.parametrize("good", [True, False])
def test_norms_claim(tmp_path, good):
    for norm in ("bn", "gn", "ln", "in"):
        for schedule in ("step", "texp"):
            acc = 0.85 if norm == "ln" and not good else 0.93
            write_job(tmp_path / f"{norm}{schedule}", "fig_norms", [
                f"model.norm={norm}", f"schedule={schedule}", "seed=0"], [],
                done(**{"test/acc": acc}))
    claim = measured(tmp_path, "fig_norms")["each_norm_trains"]
    assert claim.holds is good
    assert good or claim.why == "ln, Step Decay: 0.85; ln, TEXP: 0.85"


def sgd_losses(lr: float, good: bool) -> list[float]:
    """SGD's training loss over 20 epochs at each LR: 0.2 at LR 0.1, 0.3 at 10; at LR 100 the
    windows that close its quarter, half and whole (epochs 1-5, 6-10, 16-20) at 0.8, 0.5 and
    0.35: 4x, 2.5x and 1.75x the best, ratio - 1 = 3 / length exactly, the fit's exponent -1,
    reaching 2x at 3x the length; not good: 3x the best throughout, a gap that never closes."""
    if lr != 100:
        return [0.2 if lr == 0.1 else 0.3] * 20
    if not good:
        return [0.6] * 20
    return [0.8] * 5 + [0.5] * 5 + [9.0] * 5 + [0.35] * 5


@pytest.mark.parametrize("good", [True, False])
def test_auto_rate_claims(tmp_path, good):
    losses = {"sgd": {lr: sgd_losses(lr, good) for lr in (0.1, 10, 100)},
              "no_norm": {0.01: [2.0] * 5, 0.1: [0.4] * 5, 10: None, 100: None}}
    if not good:
        losses["sgd"][10], losses["no_norm"][10] = None, [2.3] * 5
    # without normalisation: 0.3 at LR 0.01, and 0.85 at LR 0.1 (not good: 0.75), or chance
    accuracy = {0.01: 0.3, 0.1: 0.85 if good else 0.75, 10: 0.1}
    for setting, by_lr in losses.items():
        for lr, curve in by_lr.items():
            records = [epoch_record(10 * (e + 1), e + 1, **{"train/epoch_loss": loss})
                       for e, loss in enumerate(curve or [])]
            end = (done(steps=10 * len(curve), **{"test/acc": accuracy.get(lr, 0.9)})
                   if curve else {"status": "diverged"})
            write_job(tmp_path / f"{setting}{lr}", "fig_auto_rate",
                      [f"auto_rate={setting}", f"optimizer.lr={lr}", "seed=0"], records, end)
    assert holds(tmp_path, "fig_auto_rate") == dict.fromkeys(
        ("sgd_never_diverges", "sgd_loss_flat_in_lr", "no_norm_trains", "no_norm_diverges"),
        good)
    trains = measured(tmp_path, "fig_auto_rate")["no_norm_trains"]
    assert trains.measured["best_lr"] == 0.1
    assert good or trains.why == ("at its best LR (0.1) the net without normalisation reaches "
                                  "0.75")
    assert ", 100-400 epochs, " in grid_setting(load_jobs(tmp_path))  # SGD runs 4x the others
    flat = measured(tmp_path, "fig_auto_rate")["sgd_loss_flat_in_lr"]
    if good:
        assert flat.measured["ratios"] == pytest.approx([4.0, 2.5, 1.75], rel=1e-12)
        assert flat.measured["fitted_exponent"] == pytest.approx(-1.0, rel=1e-12)
        assert flat.measured["length_for_threshold"] == pytest.approx(3.0, rel=1e-12)
        assert flat.measured["lengths"] == [1.0, 2.0, 4.0]
        assert flat.measured["updates_at_1x"] == 50 and flat.measured["best_lrs"] == [0.1] * 3
        # 0.5 -> 0.35 from 2x to 4x, on to the best's 0.2 at 1x: beyond 4x, on that power
        assert flat.measured["catch_up_length"] == pytest.approx(
            4 * 2 ** (math.log(0.35 / 0.2) / math.log(0.5 / 0.35)), rel=1e-12)
    else:
        assert flat.measured["ratios"] == pytest.approx([3.0] * 3, rel=1e-12)
        assert flat.measured["length_for_threshold"] is None
        assert flat.measured["catch_up_length"] is None  # its loss does not fall
        assert "3x its best at 4x the length" in flat.why and "does not close)" in flat.why


def test_catch_up_reads_where_a_falling_loss_reaches_a_target():
    from src.figures.gallery.auto_rate import catch_up
    assert catch_up([1, 2, 4], [0.8, 0.4, 0.2], 0.4) == pytest.approx(2.0, rel=1e-12)
    assert catch_up([1, 2, 4], [0.8, 0.4, 0.2], 0.2 * 2 ** -0.5) == pytest.approx(
        4 * 2**0.5, rel=1e-12)  # extrapolated on the last power, loss ~ 1/length
    assert catch_up([1, 2, 4], [0.8, 0.4, 0.2], 0.9) == 1
    assert catch_up([1, 2, 4], [0.8, 0.6, 0.6], 0.5) is None  # no longer falling


def test_auto_rate_loss_gap_fit_reads_closing_and_widening_gaps():
    """length_for: a closing gap reaches the threshold where the fit says; one that widens or
    has closed below 1x gives no length."""
    from src.figures.gallery.auto_rate import length_for
    slope, at = length_for([1, 2, 4], [1 + 8, 1 + 4, 1 + 2])  # ratio - 1 = 8 / length
    assert slope == pytest.approx(-1.0, rel=1e-12) and at == pytest.approx(8.0, rel=1e-12)
    assert length_for([1, 2, 4], [2.8, 3.0, 3.2])[1] is None  # widening
    assert length_for([1, 2, 4], [1.0, 0.9, 0.95]) == (pytest.approx(math.nan, nan_ok=True), None)


def rate_records(method: str, slope: float, c: float, loss: float) -> list[dict]:
    """min ||grad F||^2 = c T^slope exactly: per update for GD (a record measures theta_t,
    after t updates), per epoch of 10 updates on the whole set for SGD."""
    if method == "sgd":
        return [epoch_record(t, t / 10, **{"full/intrinsic_grad_sq": c * t**slope,
                                           "train/epoch_loss": loss}) for t in range(10, 401, 10)]
    records = [{"step": t, "epoch": float(t), "train/loss": loss + (t < 2),
                "intrinsic_grad_sq": c * (t + 1) ** slope} for t in range(40)]
    return [*records, epoch_record(40, 40, **{"train/epoch_loss": loss})]


@pytest.mark.parametrize("good", [True, False])
def test_auto_rate_convergence_claims(tmp_path, good):
    """Slopes fitted exactly; GD's best LR (lowest final loss) is 0.1, so the claims cover
    0.1 ... 100. Bad: GD's slope at LR 10 is -0.7, SGD's at 100 is -0.3, and projected GD
    trains at every LR."""
    lrs = (0.01, 0.1, 1, 10, 100)
    slopes = {"gd": dict.fromkeys(lrs, -1.0), "sgd": dict.fromkeys(lrs, -0.5)}
    slopes["gd"][0.01] = -0.2  # below the best LR: reported, not claimed
    if not good:
        slopes["gd"][10], slopes["sgd"][100] = -0.7, -0.3
    for lr in lrs:
        loss = 0.05 if lr == 0.1 else 0.2
        for method in ("gd", "sgd"):
            write_job(tmp_path / f"{method}{lr}", "fig_auto_rate_convergence",
                      [f"descent={method}", f"optimizer.lr={lr}", "seed=0"],
                      rate_records(method, slopes[method][lr], 3.0 * lr, loss), done())
        projected = rate_records("gd", -1.0, 1.0, loss)
        if good and lr == 100:  # at chance: below its first, above half of it
            projected[-2]["train/loss"] = 0.9 * projected[0]["train/loss"]
        write_job(tmp_path / f"pgd{lr}", "fig_auto_rate_convergence",
                  ["descent=projected_gd", f"optimizer.lr={lr}", "seed=0"], projected, done())
    found = measured(tmp_path, "fig_auto_rate_convergence")
    assert {k: c.holds for k, c in found.items()} == dict.fromkeys(
        ("gd_rate", "sgd_rate", "projected_gd_needs_tuning"), good)
    gd = found["gd_rate"].measured
    assert gd["best_gd_lr"] == 0.1 and gd["covered_lrs"] == [0.1, 1, 10, 100]
    for lr in lrs:
        fit = gd["per_lr"][f"lr={lr:g}"]
        assert fit["slope"] == pytest.approx(slopes["gd"][lr], abs=1e-12)
        # C = T min ||grad F||^2 at the last T = 40 updates: c T^slope x T
        assert fit["C"] == pytest.approx(3.0 * lr * 40 ** (slopes["gd"][lr] + 1), rel=1e-12)
        assert found["sgd_rate"].measured["per_lr"][f"lr={lr:g}"]["slope"] == pytest.approx(
            slopes["sgd"][lr], abs=1e-12)
    if good:
        assert gd["C_ratio"] == pytest.approx(1000.0, rel=1e-12) and gd["lr_ratio"] == 1000
        projected = found["projected_gd_needs_tuning"].measured
        assert projected["fails_where_gd_does_not"] == [100]
        assert projected["projected_final_over_first_loss"]["lr=100"] == [pytest.approx(0.9)]


EQ_SPE, EQ_SWITCH, EQ_END, EQ_WIDTH = 100, 5000, 15000, 1000


def equilibrium_grid(root, good: bool, seeds: int = 3):
    """fig_equilibrium's runs with WD 0.005 (the window, 2 / (0.4 x 0.005), is 1,000 updates),
    100 updates an epoch (the switch at epoch 50 is update 5,000, the end 15,000), an effective
    LR every 100 updates: before the switch each LR's own level, after it the common level 2
    (not good: LR 0.8's is 20 % higher), each seed 10 % above or below in alternate records
    and by its offset (-0.1, 0, +0.1), which the seeds' mean cancels."""
    levels = {1.6: 4.0, 0.8: 3.0, 0.4: 2.0}
    ends = {1.6: 2.0, 0.8: 2.08 if good else 2.4, 0.4: 2.02}
    for lr, level in levels.items():
        for s in range(seeds):
            records = [epoch_record(EQ_SPE, 1)]
            for t in range(50, EQ_END, 100):
                base = level if t < EQ_SWITCH else ends[lr]
                wobble = (1.1 if t % 200 == 50 else 0.9) + 0.1 * (s - 1)
                records.append({"step": t, "epoch": t / EQ_SPE,
                                "si/effective_lr": base * wobble})
            write_job(root / f"lr{lr}_{s}", "fig_equilibrium",
                      [f"optimizer.lr={lr}", "optimizer.weight_decay=0.005", f"seed={s}"],
                      records, done(steps=EQ_END))
    return root


@pytest.mark.parametrize("good", [True, False])
def test_equilibrium_claim(tmp_path, good):
    claim = measured(equilibrium_grid(tmp_path, good), "fig_equilibrium")["same_effective_lr"]
    assert claim.holds is good
    curves = claim.measured["curves"]
    assert curves["lr=0.4"]["window_updates"] == pytest.approx(EQ_WIDTH, rel=1e-12)
    assert curves["lr=0.8"]["switch_update"] == pytest.approx(EQ_SWITCH, rel=1e-12)
    # seed 0 of LR 1.6 in the last window: 5 records at 2 x 1.0 and 5 at 2 x 0.8
    assert curves["lr=1.6"]["seeds"]["seed 0"]["end"] == pytest.approx(1.8, rel=1e-12)
    assert curves["lr=1.6"]["end"] == pytest.approx(2.0, rel=1e-12)  # the seeds' mean
    assert curves["lr=0.4"]["before_switch"] == pytest.approx(2.0, rel=1e-12)
    assert claim.measured["spread_before_switch"] == pytest.approx(1.0, rel=1e-12)
    assert claim.measured["spread"] == pytest.approx(0.04 if good else 0.2, rel=1e-12)
    if not good:
        assert claim.why.startswith("the effective LRs at the end differ by 0.2")


def test_equilibrium_claim_needs_three_seeds(tmp_path):
    grid = equilibrium_grid(tmp_path, True, seeds=3)
    for folder in sorted(grid.glob("lr0.8_*"))[1:]:
        (folder / "summary.json").write_text('{"status": "preempted"}')
    claim = measured(grid, "fig_equilibrium")["same_effective_lr"]
    assert claim.holds is None
    assert claim.why == "n/a: the claim is on seed means: it needs 3 completed seeds a curve"

    write_job(tmp_path / "flat" / "lr0.4", "fig_equilibrium",
              ["optimizer.lr=0.4", "schedule.milestones=[]"],
              [epoch_record(EQ_SPE, 1)], done(steps=EQ_END))
    claim = measured(tmp_path / "flat", "fig_equilibrium")["same_effective_lr"]
    assert claim.why == "n/a: the runs have no switch: schedule.milestones is empty"


@pytest.mark.parametrize("good", [True, False])
def test_toy_claims(tmp_path, good):
    cases = ({"wd_only": (10, 0.0), "bn_only": (12, 0.0), "bn_wd": (5, 0.2)} if good else
             {"wd_only": (10, 0.01), "bn_only": (None, 0.0), "bn_wd": (5, 1e-4)})
    summary = done(steps=100)
    for case, (settled, relapse) in cases.items():
        summary.update({f"{case}/error": 0.0, f"{case}/settled_at": settled,
                        f"{case}/max_error_after_settling": relapse})
    write_job(tmp_path / "toy", "fig_toy", [], [], summary)
    assert holds(tmp_path, "fig_toy") == dict.fromkeys(
        ("wd_only_settles", "bn_only_settles", "bn_wd_does_not_settle"), good)
    summary["bn_wd/settled_at"] = None  # never below the threshold: too short to tell
    (tmp_path / "toy" / "summary.json").write_text(json.dumps(summary))
    claim = measured(tmp_path, "fig_toy")["bn_wd_does_not_settle"]
    assert claim.holds is None and "never fell below 0.001 in 100 steps" in claim.why


def test_table_json_carries_the_numbers_of_table_md(tmp_path):
    grid = schedule_grid(tmp_path, "fig_texp_vs_step", ("step", "texp"), False)
    draw(grid)
    table = (grid / "table.md").read_text()
    data = json.loads((grid / "table.json").read_text())
    assert data["figure"] == "fig_texp_vs_step" and data["jobs"] == {"completed": 2 * SEEDS}
    assert len(data["rows"]) == 4  # 2 curves x (test/acc, angle)
    for row in data["rows"]:
        ours = f"{row['mean']:.4g} ± {row['sd']:.2g} ({row['n']})"
        assert f"| {row['curve']} | {row['metric']} | {ours} | 0/{row['jobs']} |" in table
        if row["metric"] == "test/acc":
            assert row["paper"]["source"] == "read off the plot" and row["difference"] is None
            assert f"| {row['difference_text']} |" in table
    checks = get_figure("fig_texp_vs_step").checks
    assert [c["name"] for c in data["claims"]] == [c.name for c in checks]
    # the thresholds as numbers beside the words: the figure's own, by name
    assert [c["thresholds"] for c in data["claims"]] == [c.thresholds for c in checks]
    assert data["claims"][0]["thresholds"] == {"relative_difference": 1e-8}
    assert "## Claims" in table
    for claim in data["claims"]:
        assert claim["holds"] is False and claim["why"]
        assert f"| {claim['name']} |" in table and f"no: {claim['why']}" in table
        assert f"`{claim['name']}` does not hold ({claim['why']})" in data["note"]
        assert claim["why"] in table.split("| curve |")[0]  # the note, above the table
    test = next(c for c in data["claims"] if c["name"] == "test_acc_in_distribution")
    assert test["thresholds"] == {"significance": SIGNIFICANCE}
    assert test["measured"]["epochs"] == EPOCHS and test["measured"]["seeds"] == [SEEDS] * 2
    assert test["measured"]["p"] == pytest.approx(2 / 252, rel=1e-12)  # TEXP 10 sds above


def test_thm2_is_judged_where_the_gradients_are_memoryless(tmp_path):
    """A run whose gradients alternate (M = 0.8) sits at 0.8x Thm 2's norm: Thm 2's own claim
    leaves it out (it assumes M = 1) and judges the memoryless run; the claim with M judges
    both. With no memoryless run Thm 2 is not tested; a norm off both fails both."""
    name = "fig_rotational_equilibrium"

    def grid(case, second=None):
        write_job(tmp_path / case / "base", name, ["rotation=base"],
                  rotation_records(0.1, 5e-4, True, memory=0.8), done())
        if second is not None:
            write_job(tmp_path / case / "half_lr", name, ["rotation=half_lr"], second, done())
        return measured(tmp_path / case, name)

    found = grid("alternating")
    assert found["norm_matches_thm2"].holds is None
    assert "Thm 2 itself is not tested" in found["norm_matches_thm2"].why
    assert found["norm_matches_memory"].holds is True
    row = found["norm_matches_memory"].measured["constant lr=0.1 wd=0.0005"]
    assert row["gradient_memory"] == pytest.approx(0.8, rel=1e-12)
    assert row["mean_ratio"] == pytest.approx(0.8, rel=1e-12)
    assert row["ratio_over_memory"] == pytest.approx(1 / (1 - 0.1 * 5e-4 / 3.8), rel=1e-12)

    found = grid("and_memoryless", rotation_records(0.05, 1e-3, True))
    assert found["norm_matches_thm2"].holds is True
    assert not found["norm_matches_thm2"].measured["constant lr=0.1 wd=0.0005"]["decided"]

    agreeing = rotation_records(0.05, 1e-3, True, memory=1.3)  # Thm 2 alone misses by 1.3
    found = grid("and_agreeing", agreeing)
    assert found["norm_matches_thm2"].holds is None and found["norm_matches_memory"].holds

    # the same norms with buffers that show no memory: off both
    found = grid("off", [{k: v / 1.3 if k.endswith("momentum_sq") else v for k, v in r.items()}
                         for r in agreeing])
    assert found["norm_matches_thm2"].holds is False
    assert "1.300x Thm 2's" in found["norm_matches_thm2"].why
    assert found["norm_matches_memory"].holds is False


def rotation_records(lr, wd, good, divide_at=None, steps=6000, scale=1.0, memory=1.0):
    """Records of a run whose two sets turn by Delta* (good), or by 1.4x and 1x of it, with
    norms at Thm 2's for L = 2 times the gradients' memory (good) or 1.3x it, and momentum
    buffers that show that memory; `scale` multiplies the angles (a twin's)."""
    from src.theory.equilibrium import equilibrium_angle, equilibrium_norm4
    records = []
    for t in range(0, steps, 100):
        eta = lr / 10 if divide_at is not None and t >= divide_at else lr
        predicted = equilibrium_angle(eta * wd, 0.9)
        angles = [predicted, predicted] if good else [1.4 * predicted, predicted]
        if divide_at is not None and divide_at <= t < divide_at + (12000 if good else 100):
            angles = [predicted / 3, predicted / 3]  # on its way up (good: beyond the bound)
        norm = (memory * equilibrium_norm4(2.0, eta, wd, 0.9)) ** 0.25 * (1.0 if good else 1.3)
        momentum_sq = memory * 2.0 / norm**2 / (1 - 0.9**2)  # M = memory: see gradient_memory
        record = {"step": t, "epoch": t / 100, "si/angular_update_predicted": predicted,
                  "si/sets/angular_update_mean": scale * sum(angles) / 2}
        for name, a in zip(("a", "b"), angles, strict=True):
            record.update({f"si/set/{name}/angular_update": scale * a,
                           f"si/set/{name}/weight_norm": norm,
                           f"si/set/{name}/sphere_grad_sq": 2.0,
                           f"si/set/{name}/momentum_sq": momentum_sq})
        records.append(record)
    return records


@pytest.mark.parametrize("good", [True, False])
def test_rotational_equilibrium_claims(tmp_path, good):
    name = "fig_rotational_equilibrium"
    for rotation, lr, wd in (("base", 0.1, 5e-4), ("half_lr", 0.05, 1e-3)):
        write_job(tmp_path / rotation, name, [f"rotation={rotation}"],
                  rotation_records(lr, wd, good or rotation == "base"), done())
    write_job(tmp_path / "explr", name, ["rotation=explr"],
              rotation_records(0.1, 5e-4, True, scale=1.0 if good else 1.1), done())
    write_job(tmp_path / "step", name, ["rotation=step"],
              rotation_records(0.1, 5e-4, good, divide_at=1000, steps=60000), done())
    found = measured(tmp_path, name)
    assert {k: c.holds for k, c in found.items()} == {
        k: good for k in ("angle_matches_prediction", "equal_intrinsic_lr_equal_angle",
                          "rotational_balance", "twin_same_rotation",
                          "relaxation_after_division", "norm_matches_thm2",
                          "norm_matches_memory")}
    thm2 = found["norm_matches_thm2"].measured["constant lr=0.05 wd=0.001"]
    assert thm2["gradient_memory"] == pytest.approx(1.0, rel=1e-12) and thm2["decided"]
    assert thm2["mean_ratio"] == pytest.approx(1.0 if good else 1.3**4, rel=1e-12)
    relaxation = found["relaxation_after_division"].measured["step lr=0.1 wd=0.0005"]
    assert relaxation["lower_bound"] == pytest.approx(math.log(10) * 0.1 / (4 * 0.01 * 5e-4))
    assert relaxation["steps_to_95pct"] == (12000 if good else 100)
    ratio = found["angle_matches_prediction"].measured["constant lr=0.05 wd=0.001"]["ratio"]
    assert ratio == pytest.approx(1.0 if good else 1.2, rel=1e-12)
