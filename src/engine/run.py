"""One run in its run folder: config -> build -> loop (or the toy's) -> records, under torchrun
too. Started, resumed from the folder's last checkpoint, or skipped when done."""

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from src.engine import distributed
from src.engine.backends import backends_record
from src.engine.build import build
from src.engine.distributed import World
from src.engine.lockstep import run_twin_gap
from src.engine.loop import Loop
from src.engine.preemption import Preempted
from src.engine.run_folder import RunFolder, Start, load_checkpoint
from src.engine.step import TrainStep
from src.engine.toy import run_toy
from src.errors import UserError
from src.tracking.metadata import run_metadata
from src.tracking.records import NullRecorder, Recorder, kept_records
from src.tracking.run_format import CHECKPOINTS, CONFIG, METADATA, RESUMES
from src.tracking.wandb_sink import start_wandb

log = logging.getLogger(__name__)
# cfg.task: a network's training, paper A's toy example (src/engine/toy.py), or a twin
# schedule and its source in lockstep (src/engine/lockstep.py)
TASKS = ("train", "toy_wd_bn", "twin_gap")


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """One run of a prepared config (src/config/prepare.py) in run_dir: started, resumed from
    its last checkpoint, or skipped when done. Under torchrun, every process runs this; rank 0
    decides and writes."""
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
    run, backends = _runner(cfg, folder, world, device_name, state)
    if not world.main:
        return run(recorder=NullRecorder(), wandb_id=None)
    metadata = _write_start(cfg, folder, state, run_metadata(backends))
    sinks = _sinks(cfg, run_dir, state, metadata)
    recorder = Recorder(run_dir, sinks, keep_bytes=state["records_offset"] if state else 0)
    try:
        summary = run(recorder=recorder, wandb_id=sinks[0].run_id if sinks else None)
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


def _runner(cfg, folder: RunFolder, world: World, device_name: str, state: dict | None):
    """What runs: run(recorder, wandb_id) -> summary, built for the task; and the backends
    record of metadata.json (None for the toy)."""
    if cfg.task == "toy_wd_bn":
        return (lambda recorder, wandb_id: run_toy(cfg.toy, recorder)), None
    device = torch.device(device_name)
    if cfg.task == "twin_gap":
        if world.distributed:
            raise UserError("task=twin_gap runs in one process: launch it without torchrun")
        return ((lambda recorder, wandb_id: run_twin_gap(cfg, device, recorder)),
                backends_record(cfg.trainer, device))
    data, model, optimizer, scheduler = build(cfg, device, world)
    log.info("%s on %s (%s%s): %d train / %d test images, %d steps per epoch, run folder %s",
             cfg.model.name, cfg.dataset.name, device,
             f", {world.size} processes" if world.distributed else "",
             data.train.num_samples, data.test.num_samples, len(data.train), folder.path)

    def run(recorder, wandb_id) -> dict:
        train_step = TrainStep(model, optimizer, scheduler, cfg.trainer, device, world)
        try:
            return Loop(train_step, data, recorder, cfg.trainer, folder).fit(state, wandb_id)
        finally:
            train_step.close()
    return run, backends_record(cfg.trainer, device)


def _write_start(cfg, folder: RunFolder, state: dict | None, metadata: dict) -> dict:
    """config.yaml and metadata.json of a new run (or folder), a line in resumes.jsonl for a
    resumed one."""
    run_dir = folder.path
    if state is None or not (run_dir / CONFIG).exists():
        folder.write_config(cfg)
        (run_dir / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    if state is not None:
        log.info("resuming %s from step %d", run_dir, state["step"])
        with open(run_dir / RESUMES, "a") as f:
            f.write(json.dumps({"step": state["step"], **metadata}) + "\n")
    return metadata


def _sinks(cfg, run_dir: Path, state: dict | None, metadata: dict) -> list:
    """The W&B mirror of the records, where logger.kind=wandb and W&B starts."""
    if cfg.logger.kind != "wandb":
        return []
    config = {**OmegaConf.to_container(cfg, resolve=True), "metadata": metadata}
    resumed_from, kept = (({"run_id": state["wandb_id"], "step": state["step"]},
                           kept_records(run_dir, state["records_offset"]))
                          if state else (None, []))
    sink = start_wandb(cfg.logger, config, run_dir, resumed_from, kept)
    return [sink] if sink else []
