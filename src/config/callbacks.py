"""Hydra callbacks (conf/config.yaml, hydra.callbacks): checks before a launch; after a grid, its
figure (for experiment=fig_*) and the status of its jobs."""

import os
import sys
from collections import Counter
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback

from src.errors import UserError
from src.tracking.run_format import FINAL, SUMMARY, read_summary


def _check_writable(key: str, folder: str) -> None:
    """Hydra makes the folder itself, with a traceback when it cannot: say it in one line."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_check.{os.getpid()}"  # processes of torchrun check at once
        probe.touch()
        probe.unlink()
    except OSError as e:
        print(f"error: {key}={folder}: cannot write there ({e.strerror}); choose a folder you "
              f"can write to", file=sys.stderr)
        sys.exit(2)


def _check_figure_grid(config) -> None:
    """A figure grid names its folder by the command line's overrides, except the keys it
    sweeps: a value list for another key would give each job a folder of its own."""
    swept = set(config.hydra.sweeper.params or {})
    extra = [o.input_line for o in OverridesParser.create().parse_overrides(
        list(config.hydra.overrides.task)) if o.is_sweep_override() and o.key_or_group not in swept]
    if extra:
        print(f"error: {' '.join(extra)}: {config.figure} sweeps only {', '.join(sorted(swept))}; "
              f"launch it once for each value of the others", file=sys.stderr)
        sys.exit(2)


def grid_status(sweep_dir: Path) -> tuple[str, bool]:
    """A report of every job folder under sweep_dir, and whether any job failed."""
    counts, lines = Counter(), []
    for path in sorted(Path(sweep_dir).rglob(SUMMARY)):
        try:
            summary = read_summary(path.parent)
        except UserError:
            summary = {"status": "failed", "error": f"{SUMMARY} is not valid JSON"}
        status = summary.get("status", "unknown")
        counts[status] += 1
        if status not in FINAL:
            job = path.parent.relative_to(sweep_dir)
            lines.append(f"  {status:<11} {job}: {summary.get('error', '')}")
    report = f"grid {sweep_dir}: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                       or f"no job has a {SUMMARY}")
    return "\n".join([report, *lines]), counts["failed"] > 0


class RunFolders(Callback):
    def on_run_start(self, config, **kwargs) -> None:
        _check_writable("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        if config.get("figure"):
            _check_figure_grid(config)
        _check_writable("hydra.sweep.dir", config.hydra.sweep.dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if config.get("figure"):
            from src.figures import draw  # matplotlib: about 1 s, paid by figure grids only

            try:
                paths = draw(sweep_dir)
                print(f"figure of {sweep_dir}: " + ", ".join(p.name for p in paths))
                if config.logger.kind == "wandb":
                    from src.tracking.wandb_sink import log_grid

                    HydraConfig.instance().set_config(config)  # logger.group reads ${hydra:}
                    log_grid(config.logger, sweep_dir, paths)
            except UserError as e:  # e.g. every job failed: the status below says why
                print(f"error: no figure: {e}", file=sys.stderr)
        report, failed = grid_status(sweep_dir)
        print(report, file=sys.stderr if failed else sys.stdout)
        if failed:
            sys.exit(1)
