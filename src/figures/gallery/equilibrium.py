"""Paper C: runs at different LRs, then at the same one, reach the same equilibrium."""

from src.figures.claims import Check, NotEvaluable, by_lr, completed, seed_stats
from src.figures.figure import Figure, Panel
from src.figures.gallery.common import ACCURACY
from src.figures.registry import register_figure

SPREAD = 0.05  # the curves' final effective LRs, max/min - 1


def same_effective_lr_measure(jobs):
    failures = []
    finals = {}
    for lr, group in by_lr(jobs).items():
        mean, _, n = seed_stats(completed(group, f"lr={lr:g}", failures), "si/effective_lr")
        if n:
            finals[f"lr={lr:g}"] = mean
    if len(finals) < 2:
        raise NotEvaluable("fewer than 2 curves have a final si/effective_lr")
    spread = max(finals.values()) / min(finals.values()) - 1.0
    if not spread <= SPREAD:
        failures.append(f"the final effective LRs differ by {spread:.3g} (max/min - 1)")
    return {"final_effective_lr": finals, "spread": spread}, failures


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
                  "effective LR lr/||w||^2 (si/effective_lr, seed-mean final values)",
                  f"max/min - 1 <= {SPREAD:g}", same_effective_lr_measure, {"spread": SPREAD}),
        ),
    )
