"""Paper C: runs at different LRs, then at the same one, reach the same equilibrium."""

import numpy as np

from src.figures.claims import (
    Check,
    NotEvaluable,
    at_least_two,
    by_lr,
    completed,
    points,
    seed,
    steps_per_epoch,
    total_steps,
)
from src.figures.figure import Figure, Panel
from src.figures.gallery.common import ACCURACY
from src.figures.registry import register_figure

SPREAD = 0.05  # the curves' seed-mean effective LRs at the end, max/min - 1
WINDOWS = 2    # the end: the last WINDOWS x 1 / (lr wd) updates of the common LR


def _window_mean(job, end: float, width: float) -> float:
    found = at_least_two(points(job, "si/effective_lr", first=end - width, end=end),
                         f"si/effective_lr in updates [{end - width:.0f}, {end:.0f})")
    return float(np.mean([v for _, v in found]))


def same_effective_lr_measure(jobs):
    """The effective LR lr/||w||^2 relaxes to its equilibrium in O(1 / (lr wd)) updates (paper
    C), about which single records fluctuate: each run's mean over the last WINDOWS x
    1 / (lr wd) updates at the common LR, averaged over seeds. The same window just before the
    switch, where the LRs still differ, is measured beside it: there the curves must differ."""
    failures, curves = [], {}
    for lr, group in by_lr(jobs).items():
        runs = {}
        for job in completed(group, f"lr={lr:g}", failures):
            opt, schedule = job.config.optimizer, job.config.schedule
            if not schedule.get("milestones"):
                raise NotEvaluable("the runs have no switch: schedule.milestones is empty")
            width = WINDOWS / (lr * schedule.factor * opt.weight_decay)
            switch = schedule.milestones[0] * steps_per_epoch(job)
            runs[seed(job)] = {"end": _window_mean(job, total_steps(job) + 1, width),
                               "before_switch": _window_mean(job, switch, width)}
        if runs:
            curves[f"lr={lr:g}"] = {
                "seeds": runs, "window_updates": width, "switch_update": switch,
                **{at: float(np.mean([r[at] for r in runs.values()]))
                   for at in ("end", "before_switch")}}
    if len(curves) < 2:
        raise NotEvaluable("fewer than 2 curves have a completed run")
    if min(len(c["seeds"]) for c in curves.values()) < 3:
        raise NotEvaluable("the claim is on seed means: it needs 3 completed seeds a curve")
    spreads = {at: max(c[at] for c in curves.values()) / min(c[at] for c in curves.values())
               - 1.0 for at in ("end", "before_switch")}
    if not spreads["end"] <= SPREAD:
        failures.append(f"the effective LRs at the end differ by {spreads['end']:.3g} "
                        "(max/min - 1)")
    return {"spread": spreads["end"], "spread_before_switch": spreads["before_switch"],
            "curves": curves}, failures


@register_figure
def fig_equilibrium() -> Figure:
    return Figure(
        "Paper C: different LRs, then the same one: the same equilibrium",
        curve=lambda cfg: (f"LR {cfg.optimizer.lr:g}, then "
                           f"{cfg.optimizer.lr * cfg.schedule.factor:g}"),
        group_by=("optimizer.lr",),
        panels=(ACCURACY,
                Panel("||w|| (all scale-invariant weights)", ("si/weight_norm",), "||w||",
                      log_y=True),
                Panel("effective LR lr/||w||^2", ("si/effective_lr",), "effective LR",
                      log_y=True)),
        final=("test/acc", "si/effective_lr"),
        note="Paper C's runs (5 LR/WD schedules for 500 epochs, then the same) are not "
             "repeated: this is the experiment in small. It reports no number we can compare.",
        checks=(
            Check("same_effective_lr", "the runs that started at different LRs end at the same "
                  "effective LR lr/||w||^2: each run's mean over the last "
                  f"{WINDOWS} x 1/(lr wd) updates of the common LR, averaged over the seeds "
                  "(the same window before the switch is measured beside it)",
                  f"max/min - 1 <= {SPREAD:g}", same_effective_lr_measure,
                  {"spread": SPREAD, "windows_of_1_over_lr_wd": WINDOWS}),
        ),
    )
