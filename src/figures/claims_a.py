"""Paper A's claims on its figure grids: ExpLR (Figure 1), TEXP vs Step Decay, cosine vs its
exact twin, the other normalisations."""

import numpy as np

from src.figures.catalog import SCHEDULES
from src.figures.claims import (
    Check,
    NotEvaluable,
    at_least_two,
    band_check,
    completed,
    need,
    points,
    seed,
    seed_stats,
    steps_per_epoch,
    total_steps,
    where,
)
from src.optim.schedules import plain_factors
from src.theory.equivalence import exact_ratios, momenta, quasi_static_ratios, twin
from src.theory.explr import alpha_star, exp_lr_growth

GROWTH = 1e10          # Figure 1: the LR and ||w||^2 of the tracked layer grow at least this much
RATIO_SPREAD = 0.05    # Figure 1: ||w||^2 / LR after 1/(lr wd) updates, max/min - 1
# The twins' LRs are float64 products of up to 10^5 per-update ratios (sums of logs): their
# rounding stays below 1e-10 relative, while one update too many or too few shows as ~1e-3.
LR_REL_TOL = 1e-8
ACCURACY = 0.90        # BN, GN, LN and IN each train to this test accuracy
ANGLE = "si/angular_update_epoch"


def _tracked(job) -> str:
    names = job.value("trainer.track_params") or []
    if not names:
        raise NotEvaluable("trainer.track_params names no layer")
    return f"si/{names[0]}"


def _exp_jobs(jobs, failures):
    return completed(need(where(jobs, "schedule.name", "exp"), "schedule=exp"), "ExpLR",
                     failures)


def exp_lr_growth_measure(jobs):
    failures, measured = [], {}
    for job in need(_exp_jobs(jobs, failures), "completed schedule=exp"):
        opt = job.config.optimizer
        (s0, lr0), *_, (s1, lr1) = at_least_two(points(job, "lr"), "lr")
        key = _tracked(job) + "/weight_norm_sq"
        (_, w0), *_, (_, w1) = at_least_two(points(job, key), key)
        theorem = exp_lr_growth(alpha_star(opt.lr, opt.weight_decay, opt.momentum), s1 - s0)
        measured[seed(job)] = {"updates": s1 - s0, "lr": lr1 / lr0, "lr_theorem": theorem,
                               "weight_norm_sq": w1 / w0}
        for what, factor in (("LR", lr1 / lr0), ("||w||^2", w1 / w0)):
            if not factor >= GROWTH:
                failures.append(f"{seed(job)}: {what} x{factor:.3g} over {s1 - s0} updates")
    return measured, failures


def exp_lr_ratio_measure(jobs):
    failures, measured = [], {}
    for job in need(_exp_jobs(jobs, failures), "completed schedule=exp"):
        opt = job.config.optimizer
        if not opt.lr * opt.weight_decay > 0:
            raise NotEvaluable("optimizer.weight_decay is 0: no 1/(lr wd) time scale")
        start = 1.0 / (opt.lr * opt.weight_decay)
        spreads, halves = {}, {}
        for key in (_tracked(job) + "/norm_sq_over_lr", "si/norm_sq_over_lr"):
            values = [v for _, v in at_least_two(
                points(job, key, first=start), f"{key} after 1/(lr wd) = {start:.0f} updates")]
            spreads[key] = max(values) / min(values) - 1.0
            # beside the claim: how far the means of the two halves are apart (drift vs noise)
            means = [np.mean(values[:len(values) // 2]), np.mean(values[len(values) // 2:])]
            halves[key] = float(max(means) / min(means) - 1.0)
            if not spreads[key] <= RATIO_SPREAD:
                failures.append(f"{seed(job)}: {key} varies by {spreads[key]:.3g} (its halves' "
                                f"means by {halves[key]:.2g})")
        measured[seed(job)] = {"after_update": start, **spreads, "halves_means": halves}
    return measured, failures


def exp_lr_accuracy_measure(jobs):
    failures, stats = [], {}
    for name in ("exp", "constant"):
        group = completed(need(where(jobs, "schedule.name", name), f"schedule={name}"),
                          SCHEDULES[name], failures)
        stats[SCHEDULES[name]] = seed_stats(group, "test/acc")
    if min(n for _, _, n in stats.values()) < 2:
        raise NotEvaluable("a seed sd needs at least 2 finished seeds per curve")
    (m1, sd1, _), (m2, sd2, _) = stats.values()
    difference, bound = abs(m1 - m2), max(sd1, sd2)
    # Beside the claim, not in it: at a large intrinsic LR the test accuracy swings from epoch
    # to epoch by more than the sd of 3 seeds at one epoch shows; the last 5 epochs' mean
    # averages the swing out.
    last5 = {label: seed_stats(where(jobs, "schedule.name", name), "test/acc_last5")
             for name, label in ((n, SCHEDULES[n]) for n in ("exp", "constant"))}
    if not difference <= bound:
        (a, _, _), (b, _, _) = last5.values()
        failures.append(f"the means differ by {difference:.3g}, the larger sd is {bound:.3g} "
                        f"(the last 5 epochs' means: {a:.3g} and {b:.3g})")
    return {**{label: {"mean": m, "sd": sd, "n": n} for label, (m, sd, n) in stats.items()},
            "difference": difference, "largest_sd": bound,
            "last_5_epochs": {label: {"mean": m, "sd": sd, "n": n}
                              for label, (m, sd, n) in last5.items()}}, failures


def _phases(job, total: int) -> list[tuple[int, int, float]]:
    """(first update, end, LR of the imitated Step Decay) of each phase."""
    sched, spe = job.config.schedule, steps_per_epoch(job)
    starts = [0, *(round(m * spe) for m in sched.milestones)]
    if starts[-1] >= total:
        raise NotEvaluable(f"the run ends ({total} updates) before the last milestone "
                           f"({starts[-1]} updates)")
    ends = [*starts[1:], total]
    return [(s, e, job.config.optimizer.lr * sched.factor ** i)
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def texp_growth_measure(jobs):
    failures, measured = [], {}
    for job in need(completed(need(where(jobs, "schedule.name", "texp"), "schedule=texp"),
                              "TEXP", failures), "completed schedule=texp"):
        opt = job.config.optimizer
        phases = {}
        for i, (first, end, lr) in enumerate(_phases(job, total_steps(job)), start=1):
            (s0, lr0), *_, (s1, lr1) = at_least_two(points(job, "lr", first, end),
                                                    f"lr in phase {i}")
            alpha = alpha_star(lr, opt.weight_decay, opt.momentum)
            theorem = exp_lr_growth(alpha, s1 - s0)
            phases[f"phase {i}"] = {"updates": end - first, "phase_theorem":
                                    exp_lr_growth(alpha, end - first - 1),
                                    "recorded_updates": s1 - s0, "lr": lr1 / lr0,
                                    "lr_theorem": theorem}
            if not abs(lr1 / lr0 / theorem - 1.0) <= LR_REL_TOL:
                failures.append(f"{seed(job)} phase {i}: x{lr1 / lr0:.6g}, the theorem "
                                f"x{theorem:.6g}")
        measured[seed(job)] = phases
    return measured, failures


def _epoch_angles(job, milestone: int, spe: int) -> tuple[float, float]:
    """The per-epoch angle of the last whole epoch before a milestone and the first after."""
    found = points(job, ANGLE)
    before = [v for s, v in found if s <= milestone]
    after = [v for s, v in found if s - spe >= milestone]
    if not before or not after:
        raise NotEvaluable(f"{job.path.name} has no whole epoch on both sides of update "
                           f"{milestone}")
    return before[-1], after[0]


def angle_drop_measure(jobs):
    failures, measured = [], {}
    for name in ("step", "texp"):
        group = need(completed(need(where(jobs, "schedule.name", name), f"schedule={name}"),
                               SCHEDULES[name], failures), f"completed schedule={name}")
        spe = steps_per_epoch(group[0])
        for m in group[0].config.schedule.milestones:
            angles = np.array([_epoch_angles(job, round(m * spe), spe) for job in group])
            before, after = angles.mean(axis=0)
            measured[f"{SCHEDULES[name]}, epoch {m:g}"] = {"before": before, "after": after}
            if not after < before:
                failures.append(f"{SCHEDULES[name]} at epoch {m:g}: {before:.3g} -> {after:.3g}")
    return measured, failures


def cosine_twin_lr_measure(jobs):
    """The twin's recorded LRs against the theorem's twin of the cosine schedule."""
    failures, measured = [], {}
    for job in need(completed(need(where(jobs, "schedule.name", "equivalent"),
                                   "schedule=equivalent"), "twin", failures), "completed twin"):
        cfg, opt = job.config.schedule, job.config.optimizer
        total = total_steps(job)
        lrs = opt.lr * plain_factors(cfg, cfg.base, steps_per_epoch(job), total)
        wds = np.full(total, float(opt.weight_decay))
        m = momenta(lrs, opt.momentum)
        r = (exact_ratios(lrs, wds, m) if cfg.momentum_correction
             else quasi_static_ratios(lrs, wds, opt.momentum))
        theorem = twin(lrs, wds, m, r)[0]
        (s0, lr0), *_, (s1, lr1) = found = at_least_two(points(job, "lr"), "lr")
        deviation = max(abs(v / theorem[s] - 1.0) for s, v in found)
        measured[seed(job)] = {"recorded_updates": s1 - s0, "lr": lr1 / lr0,
                               "base_lr": lrs[s1] / lrs[s0], "largest_deviation": deviation}
        if not deviation <= LR_REL_TOL:
            failures.append(f"{seed(job)}: the LR is off the theorem's by {deviation:.3g}")
    return measured, failures


def norms_measure(jobs):
    failures, measured = [], {}
    for norm in dict.fromkeys(job.value("model.norm") for job in jobs):
        for name in dict.fromkeys(job.value("schedule.name") for job in jobs):
            group = where(where(jobs, "model.norm", norm), "schedule.name", name)
            label = f"{norm}, {SCHEDULES.get(name, name)}"
            mean, _, n = seed_stats(completed(group, label, failures), "test/acc")
            measured[label] = {"mean": mean, "n": n}
            if not mean >= ACCURACY:
                failures.append(f"{label}: {mean:.3g}")
    return measured, failures


_BAND = "each curve's seed-mean {what} lies inside the other's min-max band over seeds at " \
        "every epoch"
CHECKS = {
    "fig_exp_lr": (
        Check("lr_and_norm_growth", "under ExpLR the LR and ||w||^2 of the tracked layer grow "
              "by at least the threshold over the run (the LR as the theorem says)",
              f">= x{GROWTH:g}", exp_lr_growth_measure),
        Check("norm_sq_over_lr_constant", "under ExpLR ||w||^2 / LR (tracked layer and all "
              "scale-invariant weights) is constant after the first 1/(lr wd) updates",
              f"max/min - 1 <= {RATIO_SPREAD:g}", exp_lr_ratio_measure),
        Check("matches_constant_lr", "ExpLR and constant LR + WD (the process it is equivalent "
              "to) reach seed-mean final test accuracies within one seed sd",
              "|difference| <= the larger sd", exp_lr_accuracy_measure),
    ),
    "fig_texp_vs_step": (
        Check("texp_growth_per_phase", "inside each phase TEXP's LR grows by the theorem's "
              "alpha_I^-2 per update for the run's own LR, WD, momentum and milestones",
              f"relative difference <= {LR_REL_TOL:g}", texp_growth_measure),
        Check("test_acc_within_band", _BAND.format(what="test accuracy"), "inside",
              band_check("test/acc", ("step", "Step Decay"), ("texp", "TEXP"))),
        Check("angle_drops_at_milestones", "the per-epoch angle between w_t and w_t+1 drops at "
              "each milestone, for both schedules (the seed-mean of the last whole epoch "
              "before it against the first after it)", "after < before", angle_drop_measure),
    ),
    "fig_cosine": (
        Check("twin_lr_is_the_theorems", "the twin's LR at every recorded update is the "
              "theorem's exact twin of the cosine schedule with the run's LR, WD and momentum",
              f"relative difference <= {LR_REL_TOL:g}", cosine_twin_lr_measure),
        Check("test_acc_within_band", _BAND.format(what="test accuracy"), "inside",
              band_check("test/acc", ("cosine", "Cosine"), ("equivalent", "twin"))),
        Check("angle_within_band", _BAND.format(what="per-epoch angle") + " (no milestones: "
              "the twin's angle follows the cosine's)", "inside",
              band_check(ANGLE, ("cosine", "Cosine"), ("equivalent", "twin"))),
    ),
    "fig_norms": (
        Check("each_norm_trains", "with each normalisation (BN, GN, LN, IN) and each schedule "
              "the seed-mean final test accuracy reaches the threshold", f">= {ACCURACY:g}",
              norms_measure),
    ),
}
