"""Paper A, Figure 1: ExpLR without weight decay against constant LR + weight decay, the
process it is equivalent to."""

import numpy as np

from src.figures.claims import (
    Check,
    NotEvaluable,
    at_least_two,
    completed,
    need,
    points,
    seed,
    seed_stats,
    where,
)
from src.figures.figure import Figure, Panel, PaperNumber
from src.figures.gallery.common import PAPER_A, SCHEDULES, schedule
from src.figures.registry import register_figure
from src.theory.explr import alpha_star, exp_lr_growth

GROWTH = 1e10          # the LR and ||w||^2 of the tracked layer grow at least this much
RATIO_SPREAD = 0.05    # ||w||^2 / LR after 1/(lr wd) updates, max/min - 1
TRACKED = "si/stages.0.1.conv1.weight"  # the layer the figure draws (trainer.track_params)


def _tracked(job) -> str:
    names = job.value("trainer.track_params") or []
    if not names:
        raise NotEvaluable("trainer.track_params names no layer")
    return f"si/{names[0]}"


def _exp_jobs(jobs, failures):
    return completed(need(where(jobs, "schedule.name", "exp"), "schedule=exp"), "ExpLR",
                     failures)


def growth_measure(jobs):
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


def ratio_measure(jobs):
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


def accuracy_measure(jobs):
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
    # to epoch by more than the sd of a few seeds at one epoch shows; the last 5 epochs' mean
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


def _paper(key: str, low: float, high: float) -> PaperNumber:
    return PaperNumber("ExpLR", key, low, high, "Figure 1, read off the plot (epochs 100-160)",
                       {**PAPER_A, "trainer.epochs": 160})


@register_figure
def fig_exp_lr() -> Figure:
    return Figure(
        "Paper A, Figure 1: exponential LR instead of weight decay",
        curve=schedule, group_by=("schedule.name",),
        panels=(Panel("accuracy", ("train/epoch_acc", "test/acc"), "accuracy"),
                Panel("first conv of the 2nd residual block",
                      (f"{TRACKED}/weight_norm", f"{TRACKED}/weight_norm_sq", "lr"), "",
                      log_y=True)),
        final=("train/epoch_acc", "test/acc"),
        paper=(_paper("test/acc", 0.88, 0.895), _paper("train/epoch_acc", 0.90, 0.905)),
        labels={"test/acc": "test", "train/epoch_acc": "train", "lr": "LR",
                f"{TRACKED}/weight_norm": "||w_t||", f"{TRACKED}/weight_norm_sq": "||w_t||^2"},
        checks=(
            Check("lr_and_norm_growth", "under ExpLR the LR and ||w||^2 of the tracked layer "
                  "grow by at least the threshold over the run (the LR as the theorem says)",
                  f">= x{GROWTH:g}", growth_measure, {"growth": GROWTH}),
            Check("norm_sq_over_lr_constant", "under ExpLR ||w||^2 / LR (tracked layer and all "
                  "scale-invariant weights) is constant after the first 1/(lr wd) updates",
                  f"max/min - 1 <= {RATIO_SPREAD:g}", ratio_measure,
                  {"spread": RATIO_SPREAD}),
            Check("matches_constant_lr", "ExpLR and constant LR + WD (the process it is "
                  "equivalent to) reach seed-mean final test accuracies within one seed sd",
                  "|difference| <= the larger sd", accuracy_measure),
        ),
    )
