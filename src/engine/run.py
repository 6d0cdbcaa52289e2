"""One run in its run folder: config -> build -> loop (or the toy's) -> records, under torchrun
too. Started, resumed from the folder's last checkpoint, or skipped when done."""

import json
import logging
from functools import partial
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.budget import apply_budget
from src.config import resolve_device, validate
from src.engine import distributed
from src.engine.build import build
from src.engine.distributed import World
from src.engine.loop import fit
from src.engine.preemption import Preempted
from src.engine.run_folder import RunFolder, Start, load_checkpoint
from src.engine.toy import run_toy
from src.tracking.metadata import run_metadata
from src.tracking.records import NullRecorder, Recorder, kept_records
from src.tracking.run_format import CHECKPOINTS, CONFIG, METADATA, RESUMES
from src.tracking.wandb_sink import start_wandb

log = logging.getLogger(__name__)


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """One run in run_dir: started, resumed from its last checkpoint, or skipped when done.
    Under torchrun, every process runs this; rank 0 decides and writes."""
    apply_budget(cfg)
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
    if state is None or not (run_dir / CONFIG).exists():  # a new run, or a new folder
        folder.write_config(cfg)
        (run_dir / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    if state is not None:
        log.info("resuming %s from step %d", run_dir, state["step"])
        with open(run_dir / RESUMES, "a") as f:
            f.write(json.dumps({"step": state["step"], **metadata}) + "\n")
    sinks = []
    if cfg.logger.kind == "wandb":
        config = {**OmegaConf.to_container(cfg, resolve=True), "metadata": metadata}
        resumed_from, kept = (({"run_id": state["wandb_id"], "step": state["step"]},
                               kept_records(run_dir, state["records_offset"]))
                              if state else (None, []))
        sink = start_wandb(cfg.logger, config, run_dir, resumed_from, kept)
        sinks = [sink] if sink else []
    if cfg.task == "train":
        run = partial(run, wandb_id=sinks[0].run_id if sinks else None)
    recorder = Recorder(run_dir, sinks, keep_bytes=state["records_offset"] if state else 0)
    try:
        summary = run(recorder=recorder)
        last = run_dir / CHECKPOINTS / "last.pt"
        if sinks and cfg.logger.get("log_checkpoints") and last.exists():
            sinks[0].log_checkpoint(last)
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
