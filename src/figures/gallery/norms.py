"""Paper A's equivalence with other normalisations: Step Decay vs TEXP with BN, GN, LN, IN."""

from src.figures.claims import Check, completed, seed_stats, where
from src.figures.figure import Figure
from src.figures.gallery.common import ACCURACY, SCHEDULES, schedule
from src.figures.registry import register_figure

TRAINED = 0.90  # BN, GN, LN and IN each train to this test accuracy


def trains_measure(jobs):
    failures, measured = [], {}
    for norm in dict.fromkeys(job.value("model.norm") for job in jobs):
        for name in dict.fromkeys(job.value("schedule.name") for job in jobs):
            group = where(where(jobs, "model.norm", norm), "schedule.name", name)
            label = f"{norm}, {SCHEDULES.get(name, name)}"
            mean, _, n = seed_stats(completed(group, label, failures), "test/acc")
            measured[label] = {"mean": mean, "n": n}
            if not mean >= TRAINED:
                failures.append(f"{label}: {mean:.3g}")
    return measured, failures


@register_figure
def fig_norms() -> Figure:
    return Figure(
        "Paper A's equivalence with other normalisations: Step Decay vs TEXP",
        curve=schedule, group_by=("schedule.name",),
        facet="model.norm",
        panels=(ACCURACY,),
        note="The papers state the equivalence for BN, GN, LN and IN; they report no run.",
        checks=(
            Check("each_norm_trains", "with each normalisation (BN, GN, LN, IN) and each "
                  "schedule the seed-mean final test accuracy reaches the threshold",
                  f">= {TRAINED:g}", trains_measure, {"accuracy": TRAINED}),
        ),
    )
