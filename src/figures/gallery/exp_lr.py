"""Paper A, Figure 1: ExpLR without weight decay against constant LR + weight decay, the
process it is equivalent to."""

import numpy as np

from src.figures.claims import (
    Check,
    NotEvaluable,
    at_least_two,
    completed,
    distribution_check,
    need,
    points,
    seed,
    where,
)
from src.figures.figure import Figure, Panel, PaperNumber
from src.figures.gallery.common import PAPER_A, schedule
from src.figures.registry import register_figure
from src.theory.equilibrium import relaxation_steps
from src.theory.explr import alpha_star, exp_lr_growth

GROWTH = 1e10          # the LR and ||w||^2 of the tracked layer grow at least this much
RATIO_SPREAD = 0.05    # ||w||^2 / LR after 1/(lr wd) updates: seed-mean window means' max/min - 1
RELAXATIONS = 5        # a window: this many relaxation times (1 - momentum) / (4 lr wd)
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


def windows(found: list[tuple[int, float]], start: float, width: float) -> list[float]:
    """The means of the values in each whole window [start + i width, start + (i+1) width)."""
    last = max(step for step, _ in found)
    count = int((last + 1 - start) // width)
    means = [[v for step, v in found if start + i * width <= step < start + (i + 1) * width]
             for i in range(count)]
    return [float(np.mean(m)) for m in means if m]


def ratio_measure(jobs):
    """||w||^2 / LR is the equivalent process's ||w||^2 / lr: constant at its equilibrium,
    around which single records fluctuate. The equilibrium is a mean over that noise, so the
    claim is judged on the seeds' mean in each window of RELAXATIONS relaxation times
    (1 - momentum) / (4 lr wd), after the first 1/(lr wd) updates; each seed's own window
    means and their spread are kept beside it."""
    failures, per_seed, spans = [], {}, set()
    for job in need(_exp_jobs(jobs, failures), "completed schedule=exp"):
        opt = job.config.optimizer
        if not opt.lr * opt.weight_decay > 0:
            raise NotEvaluable("optimizer.weight_decay is 0: no 1/(lr wd) time scale")
        start = 1.0 / (opt.lr * opt.weight_decay)
        width = RELAXATIONS * relaxation_steps(opt.lr * opt.weight_decay, opt.momentum)
        spans.add((start, width))
        means = {}
        for key in (_tracked(job) + "/norm_sq_over_lr", "si/norm_sq_over_lr"):
            means[key] = windows(at_least_two(points(job, key, first=start), key), start,
                                 width)
            if len(means[key]) < 2:
                raise NotEvaluable(f"fewer than 2 windows of {width:.0f} updates after update "
                                   f"{start:.0f}")
        per_seed[seed(job)] = {key: {"window_means": m, "spread": max(m) / min(m) - 1.0}
                               for key, m in means.items()}
    if len(spans) != 1:
        raise NotEvaluable("the ExpLR runs differ in lr x wd or momentum: no common windows")
    (start, width), = spans
    seed_means, errors, spreads = {}, {}, {}
    for key in next(iter(per_seed.values())):
        runs = [own[key]["window_means"] for own in per_seed.values()]
        # the windows every seed has (a completed run of another length has fewer or more)
        columns = [np.array(column) for column in zip(*runs, strict=False)]
        seed_means[key] = [float(c.mean()) for c in columns]
        # the measure's resolution: each seed mean's standard error over the seeds, relative
        errors[key] = [float(c.std(ddof=1) / np.sqrt(len(c)) / c.mean()) if len(c) > 1
                       else None for c in columns]
        spreads[key] = max(seed_means[key]) / min(seed_means[key]) - 1.0
        if not spreads[key] <= RATIO_SPREAD:
            failures.append(f"{key}'s seed-mean window means vary by {spreads[key]:.3g}")
    return {"after_update": start, "window_updates": width, "seeds": len(per_seed),
            "spread": spreads, "seed_mean_window_means": seed_means,
            "seed_mean_relative_standard_errors": errors, "per_seed": per_seed}, failures


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
                  "scale-invariant weights) is constant after the first 1/(lr wd) updates: "
                  f"the seeds' mean over each window of {RELAXATIONS} relaxation times "
                  "(1 - momentum) / (4 lr wd); single records fluctuate about the equilibrium",
                  f"seed-mean window means' max/min - 1 <= {RATIO_SPREAD:g}", ratio_measure,
                  {"spread": RATIO_SPREAD, "relaxations_per_window": RELAXATIONS}),
            distribution_check("matches_constant_lr", "test accuracy", "test/acc",
                               ("schedule.name", "Constant LR + WD", "constant"),
                               ("schedule.name", "ExpLR", "exp")),
        ),
    )
