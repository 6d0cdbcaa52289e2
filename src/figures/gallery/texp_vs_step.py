"""Paper A: Step Decay + weight decay against TEXP, its exponential equivalent."""

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
    steps_per_epoch,
    total_steps,
    where,
)
from src.figures.figure import Figure, PaperNumber
from src.figures.gallery.common import (
    ACCURACY,
    ANGLE,
    EPOCH_ANGLE,
    LR,
    LR_REL_TOL,
    PAPER_A,
    SCHEDULES,
    schedule,
)
from src.figures.registry import register_figure
from src.theory.explr import alpha_star, exp_lr_growth

SETTING = {**PAPER_A, "trainer.epochs": 300, "optimizer.weight_decay": 5e-4}


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


def growth_measure(jobs):
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
    found = points(job, EPOCH_ANGLE)
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


@register_figure
def fig_texp_vs_step() -> Figure:
    return Figure(
        "Paper A: Step Decay + weight decay vs TEXP",
        curve=schedule, group_by=("schedule.name",),
        panels=(ACCURACY, ANGLE, LR),
        final=("test/acc", EPOCH_ANGLE),
        paper=(PaperNumber("Step Decay", "test/acc", 0.950, 0.950, "read off the plot", SETTING),
               PaperNumber("TEXP", "test/acc", 0.948, 0.948, "read off the plot", SETTING)),
        checks=(
            Check("texp_growth_per_phase", "inside each phase TEXP's LR grows by the theorem's "
                  "alpha_I^-2 per update for the run's own LR, WD, momentum and milestones",
                  f"relative difference <= {LR_REL_TOL:g}", growth_measure,
                  {"relative_difference": LR_REL_TOL}),
            distribution_check("test_acc_in_distribution", "test accuracy", "test/acc",
                               ("schedule.name", "Step Decay", "step"),
                               ("schedule.name", "TEXP", "texp")),
            Check("angle_drops_at_milestones", "the per-epoch angle between w_t and w_t+1 drops "
                  "at each milestone, for both schedules (the seed-mean of the last whole epoch "
                  "before it against the first after it)", "after < before",
                  angle_drop_measure),
        ),
    )
