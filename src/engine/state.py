"""Where a run is, and the checkpoint that holds it: everything the rest of the run depends on.

A checkpoint (written by src/engine/run_folder.py as `checkpoints/last.pt`) is the dict of
TrainState.to_checkpoint: the run's config (its identity), the model (with BN's running
statistics), the optimizer (momentum buffers), the position (step; the epoch and batch to go
on from), the epoch's running totals, the overflow guard's scale, the epoch-start weights of
the angle metrics, the summary so far, the time spent, every random state, the size of
metrics.jsonl and the W&B run id.
"""

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from src.engine.distributed import World, all_gather
from src.engine.step import TrainStep, epoch_totals


def rng_state() -> dict:
    """Every global random state, as types a weights-only checkpoint can hold."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


@dataclass
class TrainState:
    """The run's position and running numbers; the tensors live in `train_step` (model,
    optimizer, guard, monitor). `epoch` and `batch`: where the loop goes on from."""
    train_step: TrainStep
    step: int = 0
    epoch: int = 0
    batch: int = 0
    totals: dict = field(default_factory=dict)
    summary: dict = field(default_factory=lambda: {"status": "running", "steps": 0,
                                                   "epochs": 0.0})
    wandb_id: str | None = None
    started: float = field(default_factory=time.perf_counter)  # minus earlier launches' time

    @property
    def elapsed(self) -> float:
        """Seconds of training over all launches."""
        return time.perf_counter() - self.started

    def start_epoch(self, device) -> None:
        self.totals = epoch_totals(device)
        if self.train_step.monitor:
            self.train_step.monitor.start_epoch()

    def to_checkpoint(self, world: World, config: dict, records_offset: int) -> dict:
        """config: the run's identity (a checkpoint resumes only the same config);
        records_offset: the size of metrics.jsonl now. Every process must call it (the
        epoch's totals are gathered from all); only rank 0 writes the result."""
        s = self.train_step
        return {
            "config": config, "records_offset": records_offset,
            "step": self.step, "epoch": self.epoch, "batch": self.batch,
            "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
            "totals": {k: all_gather(world, v) for k, v in self.totals.items()},  # a row a rank
            "guard": (s.guard.scale, s.guard.target),
            "monitor": s.monitor.core.epoch_start if s.monitor else None,
            "summary": self.summary, "elapsed": self.elapsed, "rng": rng_state(),
            "wandb_id": self.wandb_id,
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, train_step: TrainStep, device,
                        world: World) -> "TrainState":
        """The state a checkpoint holds, loaded into train_step's model and optimizer."""
        s = train_step
        s.model.load_state_dict(checkpoint["model"])
        s.optimizer.load_state_dict(checkpoint["optimizer"])
        scale, s.guard.target = checkpoint["guard"]
        # the scheduler goes on at the checkpoint's update, with the guard's scale
        s.scheduler.load_state_dict({"last_epoch": checkpoint["step"], "scale": scale})
        if s.monitor and checkpoint["monitor"] is not None:
            s.monitor.core.epoch_start = checkpoint["monitor"].to(device)
        # Each rank carries on its own totals, so that the epoch's sums add up in the order an
        # unbroken run adds them (bit for bit); on another number of processes rank 0 takes
        # them all.
        rows = checkpoint["totals"]
        same_world = all(len(v) == world.size for v in rows.values())
        totals = ({k: v[world.rank].to(device) for k, v in rows.items()} if same_world
                  else {k: v.sum(0).to(device) for k, v in rows.items()} if world.main
                  else epoch_totals(device))
        set_rng_state(checkpoint["rng"])
        return cls(s, step=checkpoint["step"], epoch=checkpoint["epoch"],
                   batch=checkpoint["batch"], totals=totals, summary=checkpoint["summary"],
                   wandb_id=checkpoint["wandb_id"],
                   started=time.perf_counter() - checkpoint["elapsed"])
