"""python -m src.train [+experiment=NAME] [overrides]: the Hydra entry point.

Hydra composes the config; src/engine/run.py trains it in the run folder; errors become one
line and an exit status, or in a grid a record of the failed job.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.engine.preemption import Preempted
from src.engine.run import train
from src.engine.run_folder import RunFolder
from src.errors import UserError

log = logging.getLogger(__name__)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        summary = train(cfg, run_dir)
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
        # at the end of the grid (src/callbacks.py).
        if isinstance(e, UserError):
            log.error("error: %s", e)
        else:
            log.exception("job failed")
        RunFolder(run_dir).record_failure(str(e) if isinstance(e, UserError) else repr(e))
        return None
    return summary.get("test/acc")  # the value a Hydra sweeper would optimise


if __name__ == "__main__":
    main()
