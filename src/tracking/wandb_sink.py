"""Mirror of the records in Weights & Biases: offline by default, never able to stop training.

Any W&B failure (not installed, no key, a crash mid-run) is reported once and the run goes on
with its local records.
"""

import logging

from omegaconf import OmegaConf

log = logging.getLogger(__name__)
LOGGER_KINDS = ("wandb", "none")  # logger.kind: mirror the records to W&B, or keep them local
WANDB_MODES = ("offline", "online", "disabled")  # logger.mode


class WandbSink:
    def __init__(self, run):
        self.run = run
        self.run_id = run.id  # kept in checkpoints: a resumed run's config names it

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

    def log_checkpoint(self, path) -> None:
        """The run's last checkpoint as an artifact (logger.log_checkpoints=true)."""
        def log():
            import wandb

            artifact = wandb.Artifact(f"checkpoint-{self.run.id}", type="model")
            artifact.add_file(str(path))
            self.run.log_artifact(artifact)
        self._guard(log)

    def finish(self, summary: dict) -> None:
        def close():
            self.run.summary.update(summary)
            self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
        self._guard(close)
        self.run = None


def start_wandb(cfg, config: dict, run_dir, resumed_from: dict | None = None,
                kept=()) -> WandbSink | None:
    """A new W&B run. cfg: the `logger` config group; its mode is already the command line's,
    else WANDB_MODE, else offline (conf/logger/wandb.yaml), and wandb.init's argument beats
    the environment.

    A resumed run (resumed_from: {"run_id": the launch before's W&B run, "step": the
    checkpoint's}) goes to a new run of the same group and job, tagged `resumed`, that first
    gets the records kept in metrics.jsonl (`kept`) again. The W&B run of a killed launch may
    hold steps past the checkpoint (W&B drops re-made steps below its last one) or, offline,
    nothing (a SIGKILLed launch's .wandb file can be its header alone); W&B's rewind
    (resume_from) would need that run on the server and the rewind preview enabled there."""
    mode = cfg.mode
    name, tags = cfg.name, list(cfg.tags or [])
    if resumed_from is not None:
        config = {**config, "resumed_from": resumed_from}
        base = cfg.name or resumed_from["run_id"]
        name = f"{base}-resumed-{resumed_from['step']}" if base else None
        tags.append("resumed")
    try:
        import wandb

        run = wandb.init(
            project=cfg.project, entity=cfg.entity, group=cfg.group, job_type=cfg.job_type,
            tags=tags, name=name, mode=mode, dir=str(run_dir), config=config,
            settings=wandb.Settings(silent=True),
        )
    except Exception as e:  # noqa: BLE001
        log.warning("W&B could not start (%s); training goes on with local records only", e)
        return None
    log.info("W&B run %s (mode %s) in %s", run.id, mode, run_dir)
    sink = WandbSink(run)
    for record in kept:
        sink.log(record)
    return sink


def log_grid(cfg, sweep_dir, files) -> None:
    """A figure grid's figure (as an image), table.md and table.json, as a W&B run of the
    grid's group (job_type figure) with the files in an artifact. cfg: the `logger` group."""
    from pathlib import Path

    sink = start_wandb(OmegaConf.merge(cfg, {"job_type": "figure", "name": "figure"}),
                       {"sweep_dir": str(sweep_dir)}, sweep_dir)
    if sink is None:
        return

    def log():
        import wandb

        images = {p.stem: wandb.Image(str(p)) for p in map(Path, files) if p.suffix == ".png"}
        sink.run.log(images)
        artifact = wandb.Artifact(f"grid-{sink.run.id}", type="figure")
        for path in files:
            artifact.add_file(str(path))
        sink.run.log_artifact(artifact)
    sink._guard(log)
    sink.finish({"status": "completed"})
