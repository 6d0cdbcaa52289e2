"""Each figure's claims, measured on grids written by hand: one where the claim holds, one where
it does not, and grids too small to decide it (n/a). table.json carries table.md's numbers."""

import json
import math

import pytest
from omegaconf import OmegaConf

from src.figures import claims, draw, get_figure, load_jobs
from src.figures.claims import band_null_fraction
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


def exp_lr_grid(root, good: bool):
    """ExpLR and constant LR + WD, 2 seeds each, 60,000 updates recorded every 10,000."""
    alpha = alpha_star(0.1, 5e-4, 0.9)
    spread = 0.01 if good else 0.1
    accs = {"exp": [0.80, 0.82], "constant": [0.81, 0.83] if good else [0.90, 0.91]}
    for schedule, values in accs.items():
        for seed, acc in enumerate(values):
            records = []
            for i, t in enumerate(range(0, 60001, 10000)):
                lr = 0.1 if schedule == "constant" else (
                    exp_lr(t, 0.1, alpha) if good else 0.1 * 1.0001 ** t)
                ratio = 100.0 * (1 + spread * (i % 2))  # max/min - 1 = spread
                records.append({"step": t, "epoch": t / 100, "lr": lr,
                                f"{TRACKED}/weight_norm_sq": ratio * lr,
                                f"{TRACKED}/norm_sq_over_lr": ratio, "si/norm_sq_over_lr": 50.0})
            records.append(epoch_record(60000, 600, **{"test/acc": acc}))
            write_job(root / f"{schedule}{seed}", "fig_exp_lr",
                      [f"schedule={schedule}", f"seed={seed}"], records, done(**{"test/acc": acc}))
    return root


@pytest.mark.parametrize("good", [True, False])
def test_exp_lr_claims(tmp_path, good):
    grid = exp_lr_grid(tmp_path, good)
    assert holds(grid, "fig_exp_lr") == dict.fromkeys(
        ("lr_and_norm_growth", "norm_sq_over_lr_constant", "matches_constant_lr"), good)
    found = measured(grid, "fig_exp_lr")
    # after update 1/(lr wd) = 20,000 the tracked ratios are 100, r, 100, r, 100: the
    # measure's halves are the first 2, [100, r], and the last 3, [100, r, 100]
    r = 100.0 * (1 + (0.01 if good else 0.1))
    halves = found["norm_sq_over_lr_constant"].measured["seed 0"]["halves_means"]
    assert halves[f"{TRACKED}/norm_sq_over_lr"] == pytest.approx(
        ((100 + r) / 2) / ((200 + r) / 3) - 1, rel=1e-12)
    assert halves["si/norm_sq_over_lr"] == 0.0
    last5 = found["matches_constant_lr"].measured["last_5_epochs"]
    assert last5["ExpLR"]["mean"] == pytest.approx(0.81, rel=1e-12)  # one epoch record each
    growth = found["lr_and_norm_growth"].measured["seed 0"]
    if good:  # the records are the theorem's ExpLR: measured and predicted growth agree
        assert growth["lr"] == pytest.approx(growth["lr_theorem"], rel=1e-12)
        assert growth["lr"] > 1e26


SPE, MILESTONES, EPOCHS = 50, (2, 4), 6


def schedule_grid(root, name, schedules, good: bool, every=5, milestones=True):
    """Two schedules, seeds 0 and 1, EPOCHS epochs of SPE updates: their real LRs (perturbed
    in phase 1 of the second when not good), per-epoch angles and accuracies."""
    base = [0.3, 0.5, 0.6, 0.7, 0.72, 0.75]
    angle = [0.3, 0.3, 0.05, 0.08, 0.005, 0.006]  # drops at epochs 2 and 4
    for k, schedule in enumerate(schedules):
        for seed in (0, 1):
            overrides = [f"schedule={schedule}", f"seed={seed}", f"trainer.epochs={EPOCHS}",
                         *[f"schedule.milestones=[{MILESTONES[0]},{MILESTONES[1]}]"][:milestones]]
            cfg = OmegaConf.create(config_yaml(name, tuple(overrides)))
            lrs = build_schedule(cfg.schedule, cfg.optimizer, SPE, SPE * EPOCHS).groups[
                "scale_invariant"].lr
            records = [{"step": t, "epoch": t / SPE, "lr": float(lrs[t]) * (
                1 + 1e-6 * t * (k == 1 and not good and t < 100))}
                for t in range(0, SPE * EPOCHS, every)]
            for e in range(EPOCHS):
                acc = base[e] + (0.02 if seed else -0.02) / (k + 1)
                if k == 1 and not good and e == 3:
                    acc += 0.1
                a = angle[e] * (1 + 0.1 * seed) * (20 if k == 1 and not good and e == 2 else 1)
                records.append(epoch_record(SPE * (e + 1), e + 1, **{
                    "test/acc": acc, "si/angular_update_epoch": a}))
            write_job(root / f"{schedule}{seed}", name, overrides, records,
                      done(steps=SPE * EPOCHS, **{"test/acc": acc}))
    return root


@pytest.mark.parametrize("good", [True, False])
def test_texp_vs_step_claims(tmp_path, good):
    grid = schedule_grid(tmp_path, "fig_texp_vs_step", ("step", "texp"), good)
    assert holds(grid, "fig_texp_vs_step") == dict.fromkeys(
        ("texp_growth_per_phase", "test_acc_within_band", "angle_drops_at_milestones"), good)
    phases = measured(grid, "fig_texp_vs_step")["texp_growth_per_phase"].measured["seed 0"]
    assert [p["updates"] for p in phases.values()] == [100, 100, 100]
    # the theorem's factor for a whole phase of 100 updates at LR 0.1, 0.01, 0.001
    for p, lr in zip(phases.values(), (0.1, 0.01, 0.001), strict=True):
        assert p["phase_theorem"] == pytest.approx(alpha_star(lr, 5e-4, 0.9) ** -198, rel=1e-12)


@pytest.mark.parametrize("good", [True, False])
def test_cosine_claims(tmp_path, good):
    grid = schedule_grid(tmp_path, "fig_cosine", ("cosine", "equivalent"), good, every=1,
                         milestones=False)
    assert holds(grid, "fig_cosine") == dict.fromkeys(
        ("twin_lr_is_the_theorems", "test_acc_within_band", "angle_within_band"), good)


def test_claims_that_the_records_cannot_decide_say_why(tmp_path):
    """One seed, a run that ends before a milestone: n/a with the reason, no crash."""
    grid = schedule_grid(tmp_path, "fig_texp_vs_step", ("step", "texp"), True)
    for folder in grid.glob("*1"):
        (folder / "summary.json").write_text('{"status": "failed"}')
    short = tmp_path / "texp0" / "summary.json"
    short.write_text(json.dumps(done(steps=150)))  # milestone 2 is update 100, 4 is 200
    found = measured(grid, "fig_texp_vs_step")
    assert found["test_acc_within_band"].holds is None
    assert found["test_acc_within_band"].why == ("n/a: a seed band needs at least 2 finished "
                                                 "seeds per curve")
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


@pytest.mark.parametrize("good", [True, False])
def test_auto_rate_claims(tmp_path, good):
    losses = {"sgd": {0.1: 0.5, 10: 0.6, 100: 0.9 if good else 1.2},
              "no_norm": {0.1: 0.4, 10: None, 100: None}}
    if not good:
        losses["sgd"][10], losses["no_norm"][10] = None, 2.3
    for setting, by_lr in losses.items():
        for lr, loss in by_lr.items():
            records = [epoch_record(10 * (e + 1), e + 1, **{"train/epoch_loss": loss})
                       for e in range(5)] if loss else []
            write_job(tmp_path / f"{setting}{lr}", "fig_auto_rate",
                      [f"auto_rate={setting}", f"optimizer.lr={lr}", "seed=0"], records,
                      done() if loss else {"status": "diverged"})
    assert holds(tmp_path, "fig_auto_rate") == dict.fromkeys(
        ("sgd_never_diverges", "sgd_loss_flat_in_lr", "no_norm_diverges"), good)
    flat = measured(tmp_path, "fig_auto_rate")["sgd_loss_flat_in_lr"].measured
    assert flat["ratio"] == pytest.approx((0.9 if good else 1.2) / 0.5, rel=1e-15)


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


@pytest.mark.parametrize("good", [True, False])
def test_equilibrium_claim(tmp_path, good):
    for lr, final in zip((1.6, 0.4, 0.1), (1.0, 1.04, 1.01) if good else (1.0, 1.2, 1.0),
                         strict=True):
        write_job(tmp_path / f"lr{lr}", "fig_equilibrium", [f"optimizer.lr={lr}"],
                  [{"step": 5, "epoch": 0.5, "si/effective_lr": 9.0},
                   {"step": 9, "epoch": 0.9, "si/effective_lr": final}], done())
    claim = measured(tmp_path, "fig_equilibrium")["same_effective_lr"]
    assert claim.holds is good
    assert claim.measured["spread"] == pytest.approx(0.04 if good else 0.2, rel=1e-12)
    for folder in list(tmp_path.iterdir())[1:]:
        (folder / "summary.json").write_text('{"status": "preempted"}')
    assert measured(tmp_path, "fig_equilibrium")["same_effective_lr"].holds is None


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
    assert data["figure"] == "fig_texp_vs_step" and data["jobs"] == {"completed": 4}
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
    band = next(c for c in data["claims"] if c["name"] == "test_acc_within_band")
    assert band["measured"]["epochs"] == EPOCHS and math.isclose(
        band["measured"]["largest_excess"], 0.1 - 0.01, rel_tol=1e-9)  # TEXP's low edge
    assert band["measured"]["fraction_outside_if_same_distribution"] == (
        band_null_fraction(2, 2))


def test_band_null_fraction_is_what_same_distribution_curves_give():
    """One seed a curve: the band is the point itself, always missed. More seeds, fewer misses
    (Monte Carlo of 200,000 draws: sd about 0.001, so 0.01 separates the values)."""
    f = band_null_fraction
    assert f(1, 1) == 1.0
    values = [f(n, n) for n in (2, 3, 4, 6, 10)]
    assert all(a > b + 0.01 for a, b in zip(values, values[1:], strict=False))
    assert abs(f(2, 3) - f(3, 2)) < 0.01  # the check is symmetric in the two curves


def rotation_records(lr, wd, good, divide_at=None, steps=6000, scale=1.0):
    """Records of a run whose two sets turn by Delta* (good), or by 1.4x and 1x of it, with
    norms at Thm 2's for L = 2 (good) or 1.3x it; `scale` multiplies the angles (a twin's)."""
    from src.theory.equilibrium import equilibrium_angle, equilibrium_norm4
    records = []
    for t in range(0, steps, 100):
        eta = lr / 10 if divide_at is not None and t >= divide_at else lr
        predicted = equilibrium_angle(eta * wd, 0.9)
        angles = [predicted, predicted] if good else [1.4 * predicted, predicted]
        if divide_at is not None and divide_at <= t < divide_at + (12000 if good else 100):
            angles = [predicted / 3, predicted / 3]  # on its way up (good: beyond the bound)
        norm = equilibrium_norm4(2.0, eta, wd, 0.9) ** 0.25 * (1.0 if good else 1.3)
        record = {"step": t, "epoch": t / 100, "si/angular_update_predicted": predicted,
                  "si/sets/angular_update_mean": scale * sum(angles) / 2}
        for name, a in zip(("a", "b"), angles, strict=True):
            record.update({f"si/set/{name}/angular_update": scale * a,
                           f"si/set/{name}/weight_norm": norm,
                           f"si/set/{name}/sphere_grad_sq": 2.0})
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
                          "relaxation_after_division", "norm_matches_thm2")}
    relaxation = found["relaxation_after_division"].measured["step lr=0.1 wd=0.0005"]
    assert relaxation["lower_bound"] == pytest.approx(math.log(10) * 0.1 / (4 * 0.01 * 5e-4))
    assert relaxation["steps_to_95pct"] == (12000 if good else 100)
    ratio = found["angle_matches_prediction"].measured["constant lr=0.05 wd=0.001"]["ratio"]
    assert ratio == pytest.approx(1.0 if good else 1.2, rel=1e-12)
