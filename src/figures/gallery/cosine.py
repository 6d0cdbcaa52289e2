"""Paper A: cosine LR + weight decay against its exact exponential twin (no weight decay)."""

import numpy as np

from src.figures.claims import (
    Check,
    at_least_two,
    completed,
    distribution_check,
    need,
    points,
    seed,
    steps_per_epoch,
    total_steps,
    where,
)
from src.figures.figure import Figure
from src.figures.gallery.common import ACCURACY, ANGLE, EPOCH_ANGLE, LR, LR_REL_TOL, schedule
from src.figures.registry import register_figure
from src.optim.schedules import plain_factors
from src.theory.equivalence import exact_ratios, momenta, quasi_static_ratios, twin


def twin_lr_measure(jobs):
    """The twin's recorded LRs against the theorem's twin of the cosine schedule."""
    failures, measured = [], {}
    for job in need(completed(need(where(jobs, "schedule.name", "equivalent"),
                                   "schedule=equivalent"), "twin", failures), "completed twin"):
        cfg, opt = job.config.schedule, job.config.optimizer
        total = total_steps(job)
        spe = steps_per_epoch(job)
        lrs = opt.lr * plain_factors(cfg.base, total, [round(m * spe) for m in cfg.milestones],
                                     cfg.factor, cfg.final_ratio)
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


@register_figure
def fig_cosine() -> Figure:
    pair = ("schedule.name", "Cosine", "cosine"), ("schedule.name", "twin", "equivalent")
    return Figure(
        "Paper A: cosine LR + weight decay vs its exact exponential twin",
        curve=schedule, group_by=("schedule.name",),
        panels=(ACCURACY, ANGLE, LR),
        final=("test/acc", EPOCH_ANGLE),
        note="The paper's numbers for the cosine comparison are not known to us.",
        checks=(
            Check("twin_lr_is_the_theorems", "the twin's LR at every recorded update is the "
                  "theorem's exact twin of the cosine schedule with the run's LR, WD and "
                  "momentum", f"relative difference <= {LR_REL_TOL:g}", twin_lr_measure,
                  {"relative_difference": LR_REL_TOL}),
            distribution_check("test_acc_in_distribution", "test accuracy", "test/acc", *pair),
            distribution_check("angle_in_distribution", "per-epoch angle", EPOCH_ANGLE, *pair),
        ),
    )
