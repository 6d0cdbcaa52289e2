"""Paper A's ablation: ExpLR whose LR is divided once without changing its exponent."""

from src.figures.figure import Figure
from src.figures.gallery.common import ACCURACY, LR, schedule
from src.figures.registry import register_figure


@register_figure
def fig_instant_decay() -> Figure:
    return Figure(
        "Paper A: dividing the LR without changing its exponent",
        curve=schedule, group_by=("schedule.name",),
        panels=(ACCURACY, LR),
        note="The paper reports this ablation only qualitatively: the division helps for about "
             "an epoch, then the accuracy falls back (not confirmed against the paper's text).",
    )
