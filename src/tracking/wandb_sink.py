"""Mirror of the records in Weights & Biases: offline by default, never able to stop training.

Any W&B failure (not installed, no key, a crash mid-run) is reported once and the run goes on
with its local records.
"""

import logging
import os

log = logging.getLogger(__name__)
LOGGER_KINDS = ("wandb", "none")  # logger.kind: mirror the records to W&B, or keep them local


class WandbSink:
    def __init__(self, run):
        self.run = run
        self.run_id = run.id  # kept in checkpoints: a resumed run goes on in the same W&B run

    def _guard(self, action, *args):
        if self.run is None:
            return
        try:
            action(*args)
        except Exception as e:  # noqa: BLE001 -- W&B must never stop training
            log.warning("W&B failed (%s); training goes on with local records only", e)
            self.run = None

    def log(self, record: dict) -> None:
        step = record["step"]
        self._guard(lambda: self.run.log({k: v for k, v in record.items() if k != "step"},
                                         step=step))

    def finish(self, summary: dict) -> None:
        def close():
            self.run.summary.update(summary)
            self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
        self._guard(close)
        self.run = None


def start_wandb(cfg, config: dict, run_dir, run_id: str | None = None) -> WandbSink | None:
    """cfg: the `logger` config group. Mode: WANDB_MODE, else logger.mode (offline default).
    run_id: the W&B run to go on with (a resumed run), else a new one."""
    mode = os.environ.get("WANDB_MODE") or cfg.mode
    try:
        import wandb

        run = wandb.init(
            project=cfg.project, entity=cfg.entity, group=cfg.group, job_type=cfg.job_type,
            tags=list(cfg.tags or []), name=cfg.name, mode=mode, dir=str(run_dir),
            config=config, settings=wandb.Settings(silent=True), id=run_id,
            resume="allow" if run_id else None,
        )
    except Exception as e:  # noqa: BLE001
        log.warning("W&B could not start (%s); training goes on with local records only", e)
        return None
    log.info("W&B run %s (mode %s) in %s", run.id, mode, run_dir)
    return WandbSink(run)
