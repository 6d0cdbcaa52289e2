"""A figure grid's jobs, read through the run folder format (src/tracking/run_format.py), and
the numbers the figure, its table and its claims take from them."""

import itertools
import math
import statistics
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.tracking import run_format

LAST_EPOCHS = 5  # <key>_last5: the mean of the last 5 epochs (paper B's training loss)
MIN_GRAD_SQ, GRAD_SQ, FULL_GRAD_SQ = "min_grad_sq", "intrinsic_grad_sq", "full/intrinsic_grad_sq"


class Job(run_format.Run):
    """A run folder of a grid, with its final metrics."""

    def final(self, key: str) -> float:
        """A final metric: the summary's, else the last record's, or for <key>_last5 the mean
        of key's last 5 epoch records (train/epoch_loss_last5, test/acc_last5), or the last
        min_grad_sq. NaN for a diverged job, whose last values come from before it diverged."""
        if self.status == "diverged":
            return math.nan
        if key.endswith("_last5"):
            base = key.removesuffix("_last5")
            values = [float(r[base]) for r in self.records if base in r][-LAST_EPOCHS:]
            return statistics.fmean(values) if values else math.nan
        if key == MIN_GRAD_SQ:
            points = self.points("T", key)
            return points[-1][1] if points else math.nan
        value = self.summary.get(key)
        if value is None:
            value = next((r[key] for r in reversed(self.records) if key in r), math.nan)
        return float(value)

    def points(self, x: str, key: str) -> list[tuple[float, float]]:
        """(x, value) of each record that has both, or of a derived series:
        min_grad_sq against x="T", paper B's min over t < T of ||grad F(theta_t)||^2 from the
        full-set measure of each epoch (SGD's runs) or else of each update (GD's)."""
        if key != MIN_GRAD_SQ:
            return [(float(r[x]), float(r[key])) for r in self.records if key in r and x in r]
        full = any(FULL_GRAD_SQ in r for r in self.records)
        # An update's record measures theta_t, so t + 1 updates have been seen; an epoch's
        # record measures the weights after its `step` updates.
        measured = ([(r["step"], r[FULL_GRAD_SQ]) for r in self.records if FULL_GRAD_SQ in r]
                    if full else [(r["step"] + 1, r[GRAD_SQ]) for r in self.records
                                  if GRAD_SQ in r])
        return list(zip([float(t) for t, _ in measured],
                        itertools.accumulate((float(v) for _, v in measured), min),
                        strict=True))

    def value(self, key: str | None):
        """A config value (None for no key or a key the config lacks)."""
        return None if key is None else OmegaConf.select(self.config, key)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder of a grid."""
    jobs = []
    for folder in run_format.job_folders(sweep_dir):
        run = run_format.read_run(folder)
        jobs.append(Job(run.path, run.config, run.summary, run.records))
    return jobs


def finished(jobs: list[Job]) -> list[Job]:
    """The jobs with a final status (run_format.FINAL): completed or diverged."""
    return [job for job in jobs if job.done]


def series(jobs: list[Job], x: str, key: str) -> tuple[list, list, list, list]:
    """x, and the mean, min and max over jobs of `key` at each x where any job has it."""
    at: dict[float, list[float]] = {}
    for job in jobs:
        for t, v in job.points(x, key):
            at.setdefault(t, []).append(v)
    xs = sorted(at)
    return (xs, [statistics.fmean(at[v]) for v in xs], [min(at[v]) for v in xs],
            [max(at[v]) for v in xs])


def setting(jobs: list[Job]) -> str:
    cfg = jobs[0].config
    if cfg.task != "train":
        return f"{cfg.task}, {len(jobs)} job(s)"
    def span(key: str) -> str:  # curves may differ in length, batch (GD's is the set), size
        values = sorted({OmegaConf.select(job.config, key) for job in jobs})
        return f"{values[0]}" if len(values) == 1 else f"{values[0]}-{values[-1]}"
    # CIFAR's images have their fixed size (no key); the digits and ImageNet name theirs
    size = "" if cfg.dataset.get("image_size") is None else f" {span('dataset.image_size')} px"
    return (f"{cfg.dataset.name}{size}, {cfg.model.name}, {span('trainer.epochs')} epochs, "
            f"batch {span('trainer.batch_size')}, {len(jobs)} job(s)")


def find_grids(root: Path) -> list[Path]:
    """The folders under root that hold the jobs of a figure grid."""
    grids = set()
    for config_path in Path(root).rglob(run_format.CONFIG):
        if "wandb" in config_path.parts or config_path.parent.parent in grids:
            continue  # W&B's own files; a grid seen already
        config = OmegaConf.load(config_path)
        if isinstance(config, DictConfig) and config.get("figure"):
            grids.add(config_path.parent.parent)
    return sorted(grids)
