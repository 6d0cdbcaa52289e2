"""Beyond the papers: the rotational equilibrium under SGD with momentum, AdamW and Lion. Each
run's angle per update against its optimizer's predicted equilibrium angle, equal eta*lambda
giving equal angles for each optimizer, and each exact twin turning like its source."""

import statistics

from src.figures.claims import Check, NotEvaluable, completed, need
from src.figures.figure import Figure, Panel
from src.figures.gallery.common import SCHEDULES
from src.figures.gallery.rotational_equilibrium import (
    SAME_ANGLE,
    TWIN,
    same_angle_spread,
    twin_against_source,
)
from src.figures.registry import register_figure
from src.theory.equilibrium import predicted_angle, relaxation_steps, relaxation_steps_decoupled

ANGLE_TOLERANCE = 0.10    # measured / predicted - 1, for runs of >= RELAXATIONS relaxation times
RELAXATIONS = 5
PREDICTED, MEAN = "si/angular_update_predicted", "si/sets/angular_update_mean"
OPTIMIZERS = {"sgd": "SGD", "adamw": "AdamW", "lion": "Lion"}


def label(job) -> str:
    return (f"{job.value('optimizer.name')} {job.value('schedule.name')} "
            f"lr={job.value('optimizer.lr'):g} wd={job.value('optimizer.weight_decay'):g}")


def _setting(job) -> tuple[str, float, object]:
    """(optimizer, lr x wd of the process, its momentum or betas), from the run's config."""
    opt = job.config.optimizer
    hyper = opt.momentum if opt.name == "sgd" else tuple(opt.betas)
    return opt.name, opt.lr * opt.weight_decay, hyper


def equilibrium(job) -> dict:
    """The last third of the run: the measured angle (mean over the sets and the records),
    the recorded prediction, Kosson et al.'s first-order formula, and the relaxation time."""
    records = [r for r in job.records if PREDICTED in r and MEAN in r]
    if len(records) < 6:
        raise NotEvaluable(f"{job.path.name} has too few records with {PREDICTED} and {MEAN}")
    tail = records[len(records) * 2 // 3:]
    kind, intrinsic, hyper = _setting(job)
    measured = statistics.fmean(r[MEAN] for r in tail)
    predicted = tail[-1][PREDICTED]
    tau = (relaxation_steps(intrinsic, hyper) if kind == "sgd"
           else relaxation_steps_decoupled(intrinsic))
    return {"measured": measured, "predicted": predicted, "ratio": measured / predicted,
            "first_order": predicted_angle(kind, intrinsic, 1.0, hyper),
            "relaxations": int(records[-1]["step"]) / tau, "intrinsic_lr": intrinsic}


def _jobs(jobs, failures):
    return need(completed(jobs, "rotation", failures), "completed")


def angle_measure(jobs):
    measured, failures = {}, []
    for job in _jobs(jobs, failures):
        e = equilibrium(job)
        row = {k: e[k] for k in ("measured", "predicted", "ratio", "relaxations")}
        row["first_order_ratio"] = e["measured"] / e["first_order"]
        measured[label(job)] = row
        if e["relaxations"] < RELAXATIONS:
            row["decided"] = False
        elif abs(e["ratio"] - 1.0) > ANGLE_TOLERANCE:
            failures.append(f"{label(job)}: measured {e['measured']:.4g} rad, "
                            f"{e['ratio']:.3f}x the prediction")
    if not any(row.get("decided", True) for row in measured.values()):
        raise NotEvaluable(f"no run lasts {RELAXATIONS} relaxation times")
    return measured, failures


def same_angle_measure(jobs):
    return same_angle_spread(jobs, equilibrium, label, lambda job, e: (
        f"{job.value('optimizer.name')} lr*wd={e['intrinsic_lr']:.6g}"))


def twin_measure(jobs):
    return twin_against_source(jobs, equilibrium, label)


@register_figure
def fig_rotation_optimizers() -> Figure:
    return Figure(
        "Beyond the papers: the equilibrium angle per update under SGD, AdamW and Lion",
        curve=lambda cfg: (f"{SCHEDULES[cfg.schedule.name]}, lr {cfg.optimizer.lr:g}, "
                           f"wd {cfg.optimizer.weight_decay:g}"),
        group_by=("optimizer.name", "schedule.name", "optimizer.lr", "optimizer.weight_decay"),
        facet="optimizer.name",
        panels=(Panel("angle per update, mean over sets", (MEAN, PREDICTED), "radians",
                      log_y=True, x="step"),),
        final=("test/acc", MEAN),
        labels={MEAN: "measured", PREDICTED: "predicted"},
        note="Kosson et al. (ICML 2024) give the angles to first order in lr x wd: "
             "sqrt(2 lr wd / (1 + momentum)) for SGD, sqrt(2 lr wd (1 - beta1) / (1 + beta1)) "
             "for AdamW, sqrt(pi lr wd ((1 - beta1)^2 + beta1^2 (1 - beta2) / (1 + beta2))) for "
             "Lion (a linearised sign). The recorded prediction keeps the decay 1 - lr wd, the "
             "update's lean against w and, for Lion, the arcsine law "
             "(src/theory/equilibrium.py); first_order_ratio compares with Kosson et al.'s.",
        checks=(
            Check("angle_matches_prediction", "each run's angle per update (mean over the sets "
                  "and the last third of the run) is its optimizer's predicted equilibrium "
                  f"angle, for every run that lasts >= {RELAXATIONS} relaxation times "
                  "((1 - momentum) / (4 lr wd) for SGD, 1 / (2 lr wd) for AdamW and Lion)",
                  f"within {ANGLE_TOLERANCE:.0%}", angle_measure,
                  {"tolerance": ANGLE_TOLERANCE, "relaxations": RELAXATIONS}),
            Check("equal_intrinsic_lr_equal_angle", "for each optimizer, constant-LR runs that "
                  "share lr x wd turn by the same angle", f"max/min - 1 <= {SAME_ANGLE:g}",
                  same_angle_measure, {"spread": SAME_ANGLE}),
            Check("twin_same_rotation", "each optimizer's exact no-weight-decay twin turns by "
                  "its source's angle", f"within {TWIN:.0%}", twin_measure, {"tolerance": TWIN}),
        ),
    )
