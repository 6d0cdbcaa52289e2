"""Beyond the papers: paper A's theorem for AdamW. AdamW with weight decay beside its exact
no-weight-decay twin (the same in distribution across seeds, the same norm in the source's
units) and its naive twin, which keeps the betas: its norm is smaller by the square root of
its second moment's predicted bias."""

import math
import statistics

from src.figures.claims import Check, NotEvaluable, completed, distribution_check, need, where
from src.figures.figure import Figure, Panel
from src.figures.registry import register_figure
from src.theory.adaptive import naive_v_bias

SAME_NORM = 0.05     # |exact twin's norm in the source's units / the source's - 1|
BIAS_NORM = 0.10     # |naive twin's norm ratio / the predicted bias^(-1/2) - 1|
NORM, ANGLE = "si/weight_norm", "si/sets/angular_update_mean"


def curve(cfg) -> str:
    if cfg.schedule.name == "constant":
        return "AdamW + WD"
    return "exact twin" if cfg.schedule.momentum_correction else "naive twin"


def source_units_norm(jobs) -> float:
    """The mean over the jobs and the last third of their records of ||w_t|| A_t, A_t =
    (1 - lr wd)^t the factor a twin's weights are divided by (1 for the source itself)."""
    values = []
    for job in jobs:
        opt = job.config.optimizer
        a = 1.0 - opt.lr * opt.weight_decay if job.value("schedule.name") == "exp" else 1.0
        found = [(int(r["step"]), float(r[NORM])) for r in job.records if NORM in r]
        if len(found) < 6:
            raise NotEvaluable(f"{job.path.name} has too few records of {NORM}")
        values += [norm * a**step for step, norm in found[len(found) * 2 // 3:]]
    return statistics.fmean(values)


def _curve_jobs(jobs, label: str, failures) -> list:
    return need(completed([j for j in jobs if curve(j.config) == label], label, failures), label)


def exact_norm_measure(jobs):
    failures = []
    source, exact = (source_units_norm(_curve_jobs(jobs, c, failures))
                     for c in ("AdamW + WD", "exact twin"))
    ratio = exact / source
    if abs(ratio - 1.0) > SAME_NORM:
        failures.append(f"the exact twin's norm is {ratio:.3f}x the source's")
    return {"source": source, "exact_twin": exact, "ratio": ratio}, failures


def naive_norm_measure(jobs):
    failures = []
    source, naive = (source_units_norm(_curve_jobs(jobs, c, failures))
                     for c in ("AdamW + WD", "naive twin"))
    opt = where(jobs, "schedule.name", "constant")[0].config.optimizer
    bias = naive_v_bias(opt.lr, opt.weight_decay, opt.betas[1])
    if not math.isfinite(bias):
        raise NotEvaluable("(1 - lr wd)^2 <= beta2: the naive twin's bias has no limit")
    predicted, ratio = bias ** -0.5, naive / source
    if abs(ratio / predicted - 1.0) > BIAS_NORM:
        failures.append(f"the naive twin's norm is {ratio:.3f}x the source's, the prediction "
                        f"{predicted:.3f}x")
    return {"source": source, "naive_twin": naive, "ratio": ratio, "predicted_v_bias": bias,
            "predicted_ratio": predicted}, failures


@register_figure
def fig_adamw_twin() -> Figure:
    return Figure(
        "Beyond the papers: AdamW + weight decay, its exact twin and the naive twin",
        curve=curve, group_by=("schedule.name", "schedule.momentum_correction"),
        panels=(Panel("test accuracy", ("test/acc",), "test accuracy"),
                Panel("angle per update, mean over sets", (ANGLE,), "radians", log_y=True,
                      x="step"),
                Panel("||w|| (all scale-invariant weights)", (NORM,), "||w||", log_y=True,
                      x="step")),
        final=("test/acc", ANGLE),
        note="The twin sets the LR lr a^-(t+1) R_t and the betas beta1 a, beta2 a^2 (a = 1 - "
             "lr wd, R_t the ratio of the bias corrections) at update t: its weights are "
             "A_t^-1 times the source's at every step in exact arithmetic (src/theory/"
             "adaptive.py; python -m src.verify checks it to round-off). The naive twin "
             "turns by the same angle, at a norm smaller by bias^(-1/2).",
        checks=(
            distribution_check("exact_twin_in_distribution", "test accuracy", "test/acc",
                               ("schedule.name", "AdamW + WD", "constant"),
                               ("schedule.momentum_correction", "exact twin", True)),
            Check("exact_twin_same_norm", "the exact twin's ||w|| A_t equals the source's "
                  "||w|| (means over seeds and the last third of the run)",
                  f"within {SAME_NORM:.0%}", exact_norm_measure, {"tolerance": SAME_NORM}),
            Check("naive_twin_norm_bias", "the naive twin's ||w|| A_t is the source's ||w|| "
                  "times bias^(-1/2), bias = (1 - beta2) / (1 - beta2 / a^2) its second "
                  "moment's predicted bias (means over seeds and the last third)",
                  f"within {BIAS_NORM:.0%}", naive_norm_measure, {"tolerance": BIAS_NORM}),
        ),
    )
