"""What a figure is: its panels, how a job's config names its curve, the final metrics of its
table, the paper's numbers and its claims. Each figure is one module of src/figures/gallery.

A figure is a set of panels. In a curve panel each line is one curve (a label computed from a
job's config, e.g. "TEXP") and one metric of metrics.jsonl against `epoch` or `step`: the mean
over the curve's jobs (seeds), with their min-max as a band. In a sweep panel the x axis is a
config value (e.g. the LR) and each point is a job's final value.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from omegaconf import DictConfig

from src.figures.claims import Check
from src.figures.jobs import Job


@dataclass(frozen=True)
class Panel:
    title: str
    keys: tuple[str, ...]        # metrics, one line per key and curve
    ylabel: str
    log_y: bool = False
    x: str = "epoch"             # a metric, or for a sweep figure the swept config key
    log_x: bool = False
    guides: tuple[float, ...] = ()  # exponents p: a dashed line through C T^p for each


@dataclass(frozen=True)
class PaperNumber:
    curve: str
    key: str                     # a final metric, as in Figure.final
    low: float
    high: float                  # = low for a single value
    source: str                  # where it comes from, and whether it is confirmed
    setting: dict = field(default_factory=dict)  # the config it was measured with

    def text(self) -> str:
        return f"{self.low:.3f}" if self.low == self.high else f"{self.low:.3f}-{self.high:.3f}"


@dataclass(frozen=True)
class Figure:
    title: str
    curve: Callable[[DictConfig], str]   # a job's config -> its curve's label
    group_by: tuple[str, ...]    # the config keys the curve label comes from (W&B grouping)
    panels: tuple[Panel, ...]
    # the table's metrics: keys of summary.json (else the last record's), or
    # train/epoch_loss_last5, the mean training loss of the last 5 epochs
    final: tuple[str, ...] = ("test/acc",)
    facet: str | None = None     # a config key: one copy of the panels for each of its values
    sweep: str | None = None     # a config key: the x axis of every panel (a sweep figure)
    paper: tuple[PaperNumber, ...] = ()
    checks: tuple[Check, ...] = ()  # its claims, in table order
    labels: dict = field(default_factory=dict)  # a metric's name in legends of several metrics
    note: str = ""               # what the figure shows and what the paper reports


def curves(figure: Figure, jobs: list[Job]) -> dict[tuple, list[Job]]:
    """The jobs of each (facet value, curve label, sweep value), in the grid's order."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        key = (job.value(figure.facet), figure.curve(job.config), job.value(figure.sweep))
        groups.setdefault(key, []).append(job)
    return groups
