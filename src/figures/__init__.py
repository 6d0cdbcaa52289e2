"""The papers' figures, drawn from a grid's run folders: each job's config.yaml, metrics.jsonl
and summary.json (never from W&B). draw(sweep_dir) writes figure.png, figure.pdf and table.md
into the grid's folder; src/figures/catalog.py says what each figure holds."""

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.figure
from omegaconf import DictConfig, OmegaConf

from src.engine.run_folder import DONE
from src.errors import UserError
from src.figures.catalog import FIGURES, LABELS, Figure, Panel

LAST_EPOCHS = 5  # train/epoch_loss_last5: paper B's "average training loss of the last 5 epochs"


@dataclass
class Job:
    path: Path
    config: DictConfig
    summary: dict
    records: list[dict]

    @property
    def status(self) -> str:
        return self.summary.get("status", "running")

    def final(self, key: str) -> float:
        """A final metric: the summary's, else the last record's, or the mean training loss of
        the last epochs. NaN for a diverged job, whose last values come from before it
        diverged."""
        if self.status == "diverged":
            return math.nan
        if key == "train/epoch_loss_last5":
            losses = [float(r["train/epoch_loss"]) for r in self.records
                      if "train/epoch_loss" in r][-LAST_EPOCHS:]
            return statistics.fmean(losses) if losses else math.nan
        value = self.summary.get(key)
        if value is None:
            value = next((r[key] for r in reversed(self.records) if key in r), math.nan)
        return float(value)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder of a grid (a folder below sweep_dir with a config.yaml)."""
    jobs = []
    for config_path in sorted(Path(sweep_dir).glob("*/config.yaml")):
        folder = config_path.parent
        summary_path, metrics_path = folder / "summary.json", folder / "metrics.jsonl"
        try:
            summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
            records = ([json.loads(line) for line in metrics_path.read_text().splitlines()
                        if line.strip()] if metrics_path.exists() else [])
        except ValueError as e:
            raise UserError(f"{folder}: unreadable records ({e})") from None
        jobs.append(Job(folder, OmegaConf.load(config_path), summary, records))
    return jobs


def figure_of(jobs: list[Job], sweep_dir: Path) -> tuple[str, Figure]:
    names = {job.config.get("figure") for job in jobs}
    if not jobs or names == {None}:
        raise UserError(f"{sweep_dir} holds no job of a figure grid (folders with a "
                        f"config.yaml from an experiment=fig_* run)")
    if len(names) > 1:
        raise UserError(f"{sweep_dir} mixes jobs of several figures: {sorted(map(str, names))}")
    name = names.pop()
    if name not in FIGURES:
        raise UserError(f"{sweep_dir}: no figure named {name!r}; known: {', '.join(FIGURES)}")
    return name, FIGURES[name]


def _value(job: Job, key: str | None):
    return None if key is None else OmegaConf.select(job.config, key)


def curves(figure: Figure, jobs: list[Job]) -> dict[tuple, list[Job]]:
    """The jobs of each (facet value, curve label, sweep value), in the grid's order."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        key = (_value(job, figure.facet), figure.curve(job.config), _value(job, figure.sweep))
        groups.setdefault(key, []).append(job)
    return groups


def series(jobs: list[Job], x: str, key: str) -> tuple[list, list, list, list]:
    """x, and the mean, min and max over jobs of `key` at each x where any job has it."""
    at: dict[float, list[float]] = {}
    for job in jobs:
        for r in job.records:
            if key in r and x in r:
                at.setdefault(float(r[x]), []).append(float(r[key]))
    xs = sorted(at)
    return (xs, [statistics.fmean(at[v]) for v in xs], [min(at[v]) for v in xs],
            [max(at[v]) for v in xs])


def _draw_curves(ax, panel: Panel, groups: dict, facet) -> None:
    labels = {label for f, label, _ in groups if f == facet}
    lines = [(label, key, jobs) for (f, label, _), jobs in groups.items() if f == facet
             for key in panel.keys]
    for i, (label, key, jobs) in enumerate(lines):
        name = LABELS.get(key, key)
        text = label if len(panel.keys) == 1 else name if len(labels) == 1 else f"{label}, {name}"
        xs, mean, low, high = series(jobs, panel.x, key)
        color = f"C{i % 10}"
        ax.plot(xs, mean, color=color, lw=1.2, zorder=len(lines) - i,  # the first on top
                label=text + (f" ({len(jobs)} seeds)" if len(jobs) > 1 else ""))
        if len(jobs) > 1:
            ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0)
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


def draw(sweep_dir) -> list[Path]:
    """figure.png, figure.pdf and table.md of the grid in sweep_dir, from its finished jobs."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder")
    jobs = load_jobs(sweep_dir)
    name, figure = figure_of(jobs, sweep_dir)
    done = [job for job in jobs if job.status in DONE]
    if not done:
        raise UserError(f"{sweep_dir}: none of its {len(jobs)} jobs has finished")
    groups = curves(figure, done)
    facets = list(dict.fromkeys(f for f, _, _ in groups))
    cells = [(facet, panel) for facet in facets for panel in figure.panels]
    # matplotlib's object API, not pyplot: no backend, no global state
    fig = matplotlib.figure.Figure(figsize=(4.6 * len(cells), 3.6))
    axes = fig.subplots(1, len(cells), squeeze=False)
    for ax, (facet, panel) in zip(axes[0], cells, strict=True):
        if figure.sweep:
            _draw_sweep(ax, figure, panel, groups)
        else:
            _draw_curves(ax, panel, groups, facet)
        ax.set_title(panel.title if facet is None else f"{figure.facet}={facet}: {panel.title}",
                     fontsize=9)
        ax.set_ylabel(panel.ylabel)
        if panel.log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{figure.title}\n{setting(done)}", fontsize=10)
    fig.tight_layout()
    paths = [sweep_dir / "figure.png", sweep_dir / "figure.pdf", sweep_dir / "table.md"]
    fig.savefig(paths[0], dpi=100)
    fig.savefig(paths[1])
    paths[2].write_text(table(name, figure, jobs, groups, sweep_dir))
    return paths


def setting(jobs: list[Job]) -> str:
    cfg = jobs[0].config
    if cfg.task != "train":
        return f"{cfg.task}, {len(jobs)} job(s)"
    return (f"{cfg.dataset.name}, {cfg.model.name}, {cfg.trainer.epochs} epochs, batch "
            f"{cfg.trainer.batch_size}, {len(jobs)} job(s)")


def _difference(paper, mean: float, jobs: list[Job]) -> str:
    other = sorted({f"{k}={_value(job, k)}" for job in jobs for k, v in paper.setting.items()
                    if _value(job, k) != v})
    if other:
        return "n/a: not the paper's setting (" + ", ".join(other) + ")"
    if not math.isfinite(mean):
        return "n/a"
    if paper.low <= mean <= paper.high and paper.low < paper.high:
        return "within the range"
    return f"{mean - (paper.low + paper.high) / 2:+.3f}"


def table(name: str, figure: Figure, jobs: list[Job], groups: dict, sweep_dir: Path) -> str:
    """The final numbers of each curve beside the paper's, as Markdown."""
    counts = Counter(job.status for job in jobs)
    lines = [f"# {name}: {figure.title}", "",
             f"Grid `{sweep_dir}`: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f". Setting: {setting([j for j in jobs if j.status in DONE])}.", ""]
    if counts.keys() - set(DONE):
        lines += ["Jobs that did not finish are left out of the figure and the table.", ""]
    if figure.note:
        lines += [figure.note, ""]
    lines += ["| curve | metric | ours: mean ± sd (n) | diverged | paper | source | difference |",
              "|---|---|---|---|---|---|---|"]
    for (facet, label, x), group in groups.items():
        curve = ", ".join(str(p) for p in (facet and f"{figure.facet}={facet}", label,
                                            x is not None and f"{figure.sweep}={x}") if p)
        diverged = sum(job.status == "diverged" for job in group)
        for key in figure.final:
            values = [v for v in (job.final(key) for job in group) if math.isfinite(v)]
            mean = statistics.fmean(values) if values else math.nan
            ours = (f"{mean:.4g} ± {statistics.stdev(values):.2g} ({len(values)})"
                    if len(values) > 1 else f"{mean:.4g} (1)" if values else "—")
            paper = next((p for p in figure.paper if p.curve == label and p.key == key), None)
            cells = ([paper.text(), paper.source, _difference(paper, mean, group)] if paper
                     else ["—", "—", "—"])
            lines.append(f"| {curve} | {key} | {ours} | {diverged}/{len(group)} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def find_grids(root: Path) -> list[Path]:
    """The folders under root that hold the jobs of a figure grid."""
    grids = set()
    for config_path in Path(root).rglob("config.yaml"):
        if "wandb" in config_path.parts or config_path.parent.parent in grids:
            continue  # W&B's own files; a grid seen already
        config = OmegaConf.load(config_path)
        if isinstance(config, DictConfig) and config.get("figure"):
            grids.add(config_path.parent.parent)
    return sorted(grids)
