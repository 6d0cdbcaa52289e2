"""python -m src.train [+experiment=NAME] [overrides]: the Hydra entry point.

config -> build (data, model, optimizer, schedule) -> loop -> records in the run folder.
"""

import json
import logging
import sys
from functools import partial
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.config import resolve_device, validate
from src.data import build_data
from src.engine import distributed
from src.engine.distributed import World
from src.engine.loop import fit
from src.engine.preemption import Preempted
from src.engine.run_folder import RunFolder, Start, load_checkpoint
from src.engine.toy import run_toy
from src.errors import UserError
from src.models import build_model
from src.optim.optimizer import build_optimizer
from src.optim.schedules import build_schedule
from src.tracking.metadata import run_metadata
from src.tracking.records import NullRecorder, Recorder
from src.tracking.wandb_sink import start_wandb

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.float32}


def build(cfg: DictConfig, device: torch.device, world: World | None = None):
    """(data, model, optimizer, schedule) for a validated config, ready for the loop."""
    world = world or World()
    dtype = DTYPES[cfg.trainer.precision]
    data = build_data(cfg.dataset, batch_size=cfg.trainer.batch_size, seed=cfg.seed,
                      device=device, dtype=dtype, rank=world.rank, world=world.size)
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(cfg.model, data.num_classes)
    except (TypeError, ValueError) as e:
        raise UserError(f"model.name={cfg.model.name} with model.norm={cfg.model.norm}: {e}"
                        ) from None
    model.to(device=device, dtype=dtype)
    if cfg.trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.trainer.sync_batchnorm and world.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model, cfg.optimizer, input_shape=data.input_shape,
                                scale_invariant=cfg.model.scale_invariant)
    try:
        schedule = build_schedule(cfg.schedule, cfg.optimizer, len(data.train),
                                  cfg.trainer.epochs * len(data.train))
    except ValueError as e:  # no real alpha, or no exact twin for this schedule
        raise UserError(f"schedule={cfg.schedule.name} with optimizer={dict(cfg.optimizer)}: {e}"
                        ) from None
    return data, model, optimizer, schedule


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """One run in run_dir: started, resumed from its last checkpoint, or skipped when done.
    Under torchrun, every process runs this; rank 0 decides and writes."""
    validate(cfg)
    world, device_name = distributed.start(cfg.trainer.device)
    folder = RunFolder(distributed.broadcast(world, run_dir))
    try:
        return _train(cfg, folder, world, device_name)
    finally:
        folder.unlock()
        distributed.stop(world)


def _train(cfg, folder: RunFolder, world: World, device_name: str) -> dict:
    run_dir = folder.path
    if world.main:
        folder.lock()
        start = folder.start(cfg, cfg.trainer.resume)
    else:  # the other processes read what rank 0 chose
        start = Start()
    done, path = distributed.broadcast(world, (start.summary, start.path))
    if done:
        log.info("%s already holds a %s run: nothing to do", run_dir, done["status"])
        return done
    state = start.state if world.main else load_checkpoint(path) if path else None
    if cfg.task == "train":
        device = resolve_device(device_name)
        data, model, optimizer, schedule = build(cfg, device, world)
        log.info("%s on %s (%s%s): %d train / %d test images, %d steps per epoch, run folder %s",
                 cfg.model.name, cfg.dataset.name, device,
                 f", {world.size} processes" if world.distributed else "",
                 data.train.num_samples, data.test.num_samples, len(data.train), run_dir)
        run = partial(fit, model, optimizer, schedule, data, cfg=cfg.trainer, device=device,
                      folder=folder, resume=state, world=world)
    else:
        run = partial(run_toy, cfg.toy)
    if not world.main:
        return run(recorder=NullRecorder())

    metadata = run_metadata()
    if state is None or not (run_dir / "config.yaml").exists():  # a new run, or a new folder
        folder.write_config(cfg)
        (run_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if state is not None:
        log.info("resuming %s from step %d", run_dir, state["step"])
        with open(run_dir / "resumes.jsonl", "a") as f:
            f.write(json.dumps({"step": state["step"], **metadata}) + "\n")
    sinks = []
    if cfg.logger.kind == "wandb":
        config = {**OmegaConf.to_container(cfg, resolve=True), "metadata": metadata}
        run_id = state["wandb_id"] if state else None
        sinks = [sink for sink in [start_wandb(cfg.logger, config, run_dir, run_id)] if sink]
    if cfg.task == "train":
        run = partial(run, wandb_id=sinks[0].run_id if sinks else None)
    recorder = Recorder(run_dir, sinks, keep_bytes=state["records_offset"] if state else 0)
    try:
        summary = run(recorder=recorder)
    except BaseException as e:
        status = {Preempted: "preempted", KeyboardInterrupt: "interrupted"}.get(type(e), "failed")
        summary = {"status": status, "error": str(e) if status == "preempted" else repr(e)}
        raise
    finally:
        recorder.finish(summary)
    log.info("%s after %d steps: %s", summary["status"], summary.get("steps", 0),
             ", ".join(f"{k}={v:.4g}" for k, v in summary.items()
                       if k.startswith("test/") or k.endswith("/error")))
    return summary


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
