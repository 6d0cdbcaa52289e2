"""python -m src.train [+experiment=NAME] [overrides]: the Hydra entry point.

Hydra composes the config; src/config/prepare.py checks and resolves it; src/engine/run.py
trains it in the run folder; errors become one line and an exit status, or in a grid a record
of the failed job. torch and the rest are
imported inside main, so that `--help` answers at once.
"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import src.config.resolvers  # noqa: F401 -- the config's resolvers, before Hydra composes
from src.errors import UserError

log = logging.getLogger(__name__)
# Optuna's Hydra sweeper (1.3, on optuna 2.10) crashes on a NaN but records a None as a failed
# trial and goes on: it gets None where the others get NaN.
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def objective(summary: dict) -> float:
    """The value a sweeper optimises: the final test accuracy of a completed run, NaN for any
    other, so that a search never takes a diverged run's accuracy from before it diverged."""
    value = summary.get("test/acc") if summary.get("status") == "completed" else None
    return math.nan if value is None else float(value)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    value = _main(cfg)
    return None if math.isnan(value) and HydraConfig.get().sweeper._target_ == OPTUNA else value


def _main(cfg: DictConfig) -> float:
    from src.config.prepare import prepare
    from src.engine.preemption import Preempted
    from src.engine.run import train
    from src.engine.run_folder import RunFolder

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        summary = train(prepare(cfg), run_dir)
    except Preempted as e:
        log.warning("%s", e)
        e.pass_on()  # under submitit: requeue
        sys.exit(128 + e.signum)  # the shell's "terminated by signal" status
    except Exception as e:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if isinstance(e, UserError):
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            raise
        # In a grid one job's failure must not stop the others: it is recorded and listed
        # at the end of the grid (src/config/callbacks.py).
        if isinstance(e, UserError):
            log.error("error: %s", e)
        else:
            log.exception("job failed")
        RunFolder(run_dir).record_failure(str(e) if isinstance(e, UserError) else repr(e))
        return math.nan
    return objective(summary)


if __name__ == "__main__":
    main()
