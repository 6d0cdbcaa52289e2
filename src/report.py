"""python -m src.report SWEEP_DIR: a figure grid as a W&B report, panel for panel.

The report's panels are the figure's (its module in src/figures/gallery) over the W&B runs of
the grid's group, with the grid's table.md below them. Online (WANDB_MODE=online or --mode
online, with a W&B key) the report is saved and its URL printed. Offline (the default, as for
the runs) its spec goes to SWEEP_DIR/report.json, with the two commands that publish it:
`wandb sync` of the jobs' offline runs, then this command online.
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

import wandb
import wandb_workspaces.reports.v2 as wr
from pydantic import TypeAdapter
from wandb_workspaces import expr

from src.errors import UserError
from src.figures import curves, figure_of, load_jobs, setting
from src.figures.figure import Figure, Panel

# Final metrics W&B has no copy of: the closest one it has.
IN_WANDB = {"train/epoch_loss_last5": "train/epoch_loss"}


def _panel(figure: Figure, panel: Panel):
    if figure.sweep:  # final values against a config value, a point a run
        return wr.ScatterPlot(title=panel.title, x=wr.Config(figure.sweep),
                              y=wr.SummaryMetric(IN_WANDB.get(panel.keys[0], panel.keys[0])),
                              log_x=True, log_y=panel.log_y)
    return wr.LinePlot(title=panel.title, x="Step" if panel.x == "step" else panel.x,
                       y=list(panel.keys), log_y=panel.log_y, groupby_aggfunc="mean",
                       groupby_rangefunc="minmax")


def build_report(sweep_dir: Path, entity: str, project: str):
    """The report object of a grid (built offline: nothing is sent)."""
    jobs = load_jobs(sweep_dir)
    name, figure = figure_of(jobs, sweep_dir)
    group = jobs[0].config.logger.group
    facets = list(dict.fromkeys(f for f, _, _ in curves(figure, jobs)))
    blocks = [wr.P(f"{setting(jobs)}. W&B group: {group}.")]
    for facet in facets:
        filters = [expr.Metric("Group") == group]
        if facet is not None:
            filters.append(expr.Config(figure.facet) == facet)
        runset = wr.Runset(entity=entity, project=project, filters=filters,
                           groupby=list(figure.group_by),
                           name=name if facet is None else f"{figure.facet}={facet}")
        if facet is not None:
            blocks.append(wr.H2(f"{figure.facet}={facet}"))
        blocks.append(wr.PanelGrid(runsets=[runset],
                                   panels=[_panel(figure, p) for p in figure.panels]))
    table = sweep_dir / "table.md"
    if table.exists():
        blocks.append(wr.MarkdownBlock(text=table.read_text()))
    return wr.Report(entity=entity, project=project, title=f"{name}: {figure.title}",
                     description=f"Drawn from the grid {sweep_dir}", blocks=blocks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.report",
                                     description="A figure grid as a W&B report.")
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                        help="a figure grid's folder (outputs/multirun/fig_*/<launch>)")
    parser.add_argument("--mode", choices=("offline", "online"),
                        help="online saves the report (default: WANDB_MODE, else the grid's "
                             "logger.mode)")
    args = parser.parse_args(argv)
    sweep_dir = args.sweep_dir
    try:
        if not sweep_dir.is_dir():
            raise UserError(f"{sweep_dir} is not a folder")
        jobs = load_jobs(sweep_dir)
        figure_of(jobs, sweep_dir)
        logger = jobs[0].config.logger
        if logger.kind != "wandb":
            raise UserError(f"{sweep_dir} was run with logger={logger.kind}: it has no W&B runs "
                            f"to report on")
        mode = args.mode or os.environ.get("WANDB_MODE") or logger.get("mode", "offline")
        if mode == "online":
            url = publish(sweep_dir, logger)
            print(f"report saved: {url}")
            return 0
        report = build_report(sweep_dir, logger.entity or "", logger.project)
        spec = sweep_dir / "report.json"
        spec.write_text(_to_json(report))
        folder = shlex.quote(str(sweep_dir))  # folder names hold [ ] and =
        print(f"report spec written to {spec} (offline). To publish it:\n"
              f"  wandb sync {folder}/*/wandb/offline-run-*\n"
              f"  WANDB_MODE=online python -m src.report {folder}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _to_json(report) -> str:
    return TypeAdapter(wr.Report).dump_json(report, indent=2).decode() + "\n"


def publish(sweep_dir: Path, logger) -> str:
    """Save the report on the W&B server; its URL."""
    try:
        entity = logger.entity or wandb.Api().default_entity
        report = build_report(sweep_dir, entity, logger.project)
        report.save()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 -- no key, no network, no such project: one line
        raise UserError(f"W&B could not save the report ({e}); log in with `wandb login`, "
                        f"sync the runs with `wandb sync`, or run offline") from None
    return report.url


if __name__ == "__main__":
    sys.exit(main())
