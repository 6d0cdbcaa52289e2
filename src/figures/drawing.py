"""A grid's figure: figure.png and figure.pdf, one panel per (facet value, panel) of the
Figure, with table.md and table.json beside them (src/figures/tables.py)."""

import math
import statistics
from pathlib import Path

import matplotlib.figure

from src.errors import UserError
from src.figures.figure import Figure, Panel, curves
from src.figures.jobs import finished, load_jobs, series, setting
from src.figures.registry import figure_of
from src.figures.tables import claims, markdown, rows, to_json

STYLES = ("-", "--", ":", "-.")


def _draw_curves(ax, panel: Panel, groups: dict, facet, names: dict) -> None:
    labels = list(dict.fromkeys(label for f, label, _ in groups if f == facet))
    lines = [(label, key, jobs) for (f, label, _), jobs in groups.items() if f == facet
             for key in panel.keys]
    for i, (label, key, jobs) in enumerate(lines):
        name = names.get(key, key)
        text = label if len(panel.keys) == 1 else name if len(labels) == 1 else f"{label}, {name}"
        xs, mean, low, high = series(jobs, panel.x, key)
        # several curves of several metrics: a colour per metric, a line style per curve
        both = len(labels) > 1 and len(panel.keys) > 1
        color = f"C{panel.keys.index(key) if both else i % 10}"
        style = STYLES[labels.index(label) % len(STYLES)] if both else "-"
        ax.plot(xs, mean, color=color, ls=style, lw=1.2, zorder=len(lines) - i,  # first on top
                label=text + (f" ({len(jobs)} seeds)" if len(jobs) > 1 else ""))
        if len(jobs) > 1:
            ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0)
    ends = sorted((line.get_xdata()[-1], line.get_ydata()[-1]) for line in ax.get_lines()
                  if len(line.get_xdata()))
    if ends and panel.guides:  # through the median curve's end, so that slopes compare by eye
        x_end, y_end = ends[len(ends) // 2]
        for p, style in zip(panel.guides, (":", "-."), strict=False):
            xs = [x_end / 100, x_end]
            ax.plot(xs, [y_end * (x / x_end) ** p for x in xs], color="k", ls=style, lw=1,
                    label=f"C T^{p:g}")
    ax.set_xlabel(panel.x)


def _draw_sweep(ax, figure: Figure, panel: Panel, groups: dict) -> None:
    labels = list(dict.fromkeys(label for _, label, _ in groups))
    for i, label in enumerate(labels):
        points = sorted((x, jobs) for (_, lab, x), jobs in groups.items() if lab == label)
        key = panel.keys[0]
        xs, means, sds, failed = [], [], [], []
        for x, jobs in points:
            values = [v for v in (job.final(key) for job in jobs) if math.isfinite(v)]
            if values:
                xs.append(x)
                means.append(statistics.fmean(values))
                sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
            if len(values) < len(jobs):
                failed.append(x)
        ax.errorbar(xs, means, yerr=sds, color=f"C{i}", marker="o", ms=4, capsize=3, lw=1.2,
                    label=label)
        if failed:  # diverged jobs have no final value: marked on the axis
            ax.plot(failed, [0] * len(failed), ls="", marker="x", ms=8, color=f"C{i}",
                    transform=ax.get_xaxis_transform(), clip_on=False)
    ax.set_xscale("log")
    ax.set_xlabel(figure.sweep + "  (x: a seed diverged)")


def _caption(found) -> str:
    """One line under the figure: each claim and whether it holds here (table.md says more)."""
    marks = {True: "holds", False: "does not hold", None: "n/a"}
    return "; ".join(f"{c.name}: {marks[c.holds]}" for c in found)


def _draw_panel(ax, figure: Figure, facet, panel: Panel, groups: dict) -> None:
    if figure.sweep:
        _draw_sweep(ax, figure, panel, groups)
    else:
        _draw_curves(ax, panel, groups, facet, figure.labels)
    ax.set_title(panel.title if facet is None else f"{figure.facet}={facet}: {panel.title}",
                 fontsize=9)
    ax.set_ylabel(panel.ylabel)
    if panel.log_y:
        ax.set_yscale("log")
    if panel.log_x:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def draw(sweep_dir) -> list[Path]:
    """figure.png, figure.pdf, table.md and table.json of the grid in sweep_dir, from its
    finished jobs."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder")
    jobs = load_jobs(sweep_dir)
    name, figure = figure_of(jobs, sweep_dir)
    done = finished(jobs)
    if not done:
        raise UserError(f"{sweep_dir}: none of its {len(jobs)} jobs has finished")
    groups = curves(figure, done)
    found = claims(name, done)
    facets = list(dict.fromkeys(f for f, _, _ in groups))
    cells = [(facet, panel) for facet in facets for panel in figure.panels]
    # matplotlib's object API, not pyplot: no backend, no global state
    fig = matplotlib.figure.Figure(figsize=(4.6 * len(cells), 3.6 + 0.3 * bool(found)))
    axes = fig.subplots(1, len(cells), squeeze=False)
    for ax, (facet, panel) in zip(axes[0], cells, strict=True):
        _draw_panel(ax, figure, facet, panel, groups)
    fig.suptitle(f"{figure.title}\n{setting(done)}", fontsize=10)
    if found:
        fig.text(0.5, 0.01, "claims: " + _caption(found), ha="center", va="bottom",
                 fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06 if found else 0, 1, 1))
    paths = [sweep_dir / name for name in ("figure.png", "figure.pdf", "table.md",
                                           "table.json")]
    fig.savefig(paths[0], dpi=100)
    fig.savefig(paths[1])
    table_rows = rows(figure, groups)
    paths[2].write_text(markdown(name, figure, jobs, table_rows, found, sweep_dir))
    paths[3].write_text(to_json(name, figure, jobs, table_rows, found, sweep_dir))
    return paths
