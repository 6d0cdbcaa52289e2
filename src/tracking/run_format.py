"""The run folder's format, in one place: its file names, the statuses that end a run, the
config keys that do not change a run's numbers, and the one reader of a finished folder.

A run folder holds `config.yaml` (written at the start, never changed), `metadata.json`,
`metrics.jsonl` (one JSON object a line), `summary.json`, `resumes.jsonl` (a line per resumed
launch) and `checkpoints/{last,previous}.pt`. Figures, callbacks, the report and the run
folder's own life (src/engine/run_folder.py) all go through this module.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.errors import UserError

CONFIG = "config.yaml"
METADATA = "metadata.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
RESUMES = "resumes.jsonl"
CHECKPOINTS = "checkpoints"
CHECKPOINT_FORMAT = 1

# A run with one of these statuses is done: launched again, it is skipped.
FINAL = ("completed", "diverged")
# Keys that do not change the run's numbers: they may differ between launches of one run, and
# Hydra leaves them out of a job's folder name (conf/config.yaml's exclude_keys, checked
# against this list by a test).
NOT_IDENTITY = ("logger", "trainer.resume", "trainer.device", "trainer.checkpoint_every_n_epochs",
                "trainer.checkpoint_every_n_steps")
# Keys added to the config after runs were written without them, each at the value that gives
# the runs from before: a folder or checkpoint whose config lacks one is the same run as a
# launch with that value. A new key that changes no earlier run goes here when it is added.
ADDED_KEYS = {"trainer.eval_every_n_epochs": 1}


def identity(cfg) -> dict:
    """The config as plain data, without the keys in NOT_IDENTITY."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return config


def jsonable(value):
    """JSON has no NaN or inf: they are written as strings ("nan", "inf"), readable as floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_summary(folder: Path) -> dict | None:
    """summary.json of a run folder, None if there is none."""
    path = Path(folder) / SUMMARY
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise UserError(f"{path} is not valid JSON; move it away to resume this run") from None


def read_metrics(folder: Path) -> list[dict]:
    path = Path(folder) / METRICS
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except ValueError as e:
        raise UserError(f"{path}: unreadable records ({e})") from None


@dataclass
class Run:
    """A run folder's records, read once: its config, summary (empty while it runs) and
    metrics."""
    path: Path
    config: DictConfig
    summary: dict
    records: list[dict]

    @property
    def status(self) -> str:
        return self.summary.get("status", "running")

    @property
    def done(self) -> bool:
        return self.status in FINAL


def read_run(folder: Path) -> Run:
    folder = Path(folder)
    return Run(folder, OmegaConf.load(folder / CONFIG), read_summary(folder) or {},
               read_metrics(folder))


def job_folders(sweep_dir: Path) -> list[Path]:
    """The run folders of a grid: the folders right below sweep_dir that hold a config.yaml."""
    return sorted(p.parent for p in Path(sweep_dir).glob(f"*/{CONFIG}"))
