"""One training update, as training, the verifier (src/verify.py) and the benchmark
(src/bench) all run it: forward under the precision settings, loss, backward, optimizer step
(projected SGD projects in it), the scheduler's step, overflow guard, NaN tracking, and on
logging steps the training record with the scale-invariance metrics. The scheduler, guard and
monitor are the public objects of src/api.py: a loop of one's own uses the same ones."""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from src.engine.distributed import World, all_max, all_sum
from src.engine.metrics import Monitor, intrinsic_grad_sq
from src.errors import UserError
from src.optim.groups import group_sets
from src.optim.renormalize import OverflowGuard


class Diverged(RuntimeError):
    """A loss, weight or LR became NaN or infinite; `step` is the update where it was seen."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """bf16 logits go to float32 for the loss; float64 ones stay float64."""
    return logits if logits.dtype == torch.float64 else logits.float()


def compiled(model, setting, mode: str = "default"):
    """The training forward: the model itself, or torch.compile's version of it (same
    parameters; checkpoints and metrics keep using the model); mode: trainer.compile_mode."""
    if setting is False:
        return model
    return torch.compile(model, backend="inductor" if setting is True else setting,
                         mode=None if mode == "default" else mode)


def data_parallel(model, device, world: World):
    """The training forward under DDP: gradients averaged over the processes."""
    if not world.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def invariant_monitor(optimizer, scheduler, cfg) -> Monitor | None:
    """The group's Monitor, on the trainer's logging steps (none without the group).
    cfg.track_params: names of scale-invariant tensors, or `all` (every set's own metrics)."""
    if not any(g["name"] == "scale_invariant" for g in optimizer.param_groups):
        if cfg.track_params and cfg.track_params != "all":
            raise UserError(f"trainer.track_params: {list(cfg.track_params)} are not "
                            f"scale-invariant parameters: this model has none")
        return None
    try:
        return Monitor(optimizer, scheduler, cfg.log_every_n_steps, cfg.track_params)
    except ValueError as e:
        raise UserError(f"trainer.track_params: {e}") from None


def epoch_totals(device) -> dict:
    return {"loss_sum": torch.zeros((), device=device, dtype=torch.float64),
            "correct": torch.zeros((), device=device, dtype=torch.int64),
            "seen": torch.zeros((), device=device, dtype=torch.int64)}


class TrainStep:
    """`step(x, y, t, epoch, totals)` runs update t (0-based) on the batch (x, y) and returns
    its training record on logging steps (every cfg.log_every_n_steps), else None. cfg: the
    `trainer` config; scheduler: the torch LRScheduler of src/optim/scheduler.py, at update t
    (stepped after each optimizer step). Nothing here waits for the device except logging
    steps and the guard's check (every cfg.renormalize_every_n_steps)."""

    def __init__(self, model, optimizer, scheduler, cfg, device, world: World | None = None):
        self.model, self.optimizer, self.scheduler, self.cfg = model, optimizer, scheduler, cfg
        self.device, self.world = device, world or World()
        self.forward = compiled(data_parallel(model, device, self.world), cfg.compile,
                                cfg.get("compile_mode") or "default")
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.guard = OverflowGuard(model, optimizer, scheduler, cfg.renormalize_above)
        self.monitor = invariant_monitor(optimizer, scheduler, cfg)
        # The LR logged is the scale-invariant group's (the rest's if there is none), as the
        # schedule gives it: records show the process without renormalisation.
        self.logged_name = next(g["name"] for g in optimizer.param_groups
                                if g["name"] in ("scale_invariant", "rest"))
        self.dtype = next(model.parameters()).dtype
        self.largest = torch.finfo(self.dtype).max
        self.first_nonfinite = torch.full((), -1, device=device)  # first NaN/inf loss, or -1

    def __call__(self, x, y, step: int, epoch: float, totals: dict | None = None) -> dict | None:
        optimizer, cfg = self.optimizer, self.cfg
        if self.scheduler.last_epoch != step:
            raise RuntimeError(f"the scheduler is at update {self.scheduler.last_epoch}, the "
                               f"loop at {step}")
        if any(g["lr"] > self.largest for g in optimizer.param_groups):
            raise Diverged(f"the learning rate overflows {self.dtype} at step {step} "
                           f"(trainer.renormalize_above keeps it finite)", step)
        with autocast(self.device, cfg.precision):
            logits = self.forward(x.contiguous(memory_format=self.memory_format))
        loss = F.cross_entropy(full_precision(logits), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # No host sync: the step is read at the next check.
        self.first_nonfinite = torch.where(
            (self.first_nonfinite < 0) & ~loss.detach().isfinite(), step, self.first_nonfinite)
        record = None
        if step % cfg.log_every_n_steps == 0:
            lr = self.scheduler.nominal_lr(self.logged_name)
            record = train_record(step, epoch, loss, logits, y, lr, self.world)
        optimizer.step()  # the monitor's hooks measure the update on logging steps
        self.scheduler.step()
        if record and self.monitor:
            record.update(self.monitor())
        if step % cfg.renormalize_every_n_steps == 0:
            self.guard.check()
        if totals is not None:
            totals["loss_sum"] += loss.detach() * len(y)
            totals["correct"] += (logits.argmax(1) == y).sum()
            totals["seen"] += len(y)
        return record

    def close(self) -> None:
        """Unhook the monitor from the optimizer (another TrainStep may take it over)."""
        if self.monitor:
            self.monitor.close()

    def full_gradient(self, x, y) -> dict:
        """Paper B's stationarity measure (full/intrinsic_grad_sq, ...) of the loss on (x, y) as
        one batch in train mode, at the current weights (e.g. the whole training set, where the
        updates see mini-batches). The parameters' gradients and BN's running statistics are
        left as they were."""
        model, sets, rest = self.model, group_sets(self.optimizer), self.monitor.core.rest
        buffers = [b.clone() for b in model.buffers()]
        with autocast(self.device, self.cfg.precision):
            logits = model(x)
        loss = F.cross_entropy(full_precision(logits), y)
        grads = iter(torch.autograd.grad(loss, [p for s in sets for p in s] + rest))
        set_grads = [[next(grads) for _ in s] for s in sets]
        measure = intrinsic_grad_sq(sets, set_grads, list(grads))
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers, strict=True):
                b.copy_(saved)
        return {"full/train_loss": loss.item(), **{f"full/{k}": v for k, v in measure.items()}}

    def check_finite(self, step: int) -> None:
        """Raise Diverged if a loss so far (in any process) or a parameter is NaN or infinite."""
        bad_step = int(all_max(self.world, self.first_nonfinite))
        if bad_step >= 0:
            raise Diverged(f"the training loss became NaN or infinite at step {bad_step}",
                           bad_step)
        norm = torch.nn.utils.get_total_norm([p.detach() for p in self.model.parameters()])
        if not norm.isfinite():
            raise Diverged(f"a parameter became NaN or infinite before step {step}", step)


def train_record(step, epoch, loss, logits, y, lr, world: World) -> dict:
    """Loss and accuracy of the batch (under DDP: of the global batch)."""
    correct = (logits.argmax(1) == y).sum()
    if world.distributed:
        sums = all_sum(world, torch.stack([loss.detach().double() * len(y), correct.double(),
                                           torch.tensor(len(y), device=y.device).double()]))
        loss, accuracy = (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()
    else:
        loss, accuracy = loss.item(), correct.item() / len(y)
    if not math.isfinite(loss):
        raise Diverged(f"training loss became {loss} at step {step}", step)
    return {"step": step, "epoch": epoch, "train/loss": loss, "train/acc": accuracy, "lr": lr}
