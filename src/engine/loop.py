"""The training loop: schedule -> step -> records. No math of the papers lives here.

Records: a training record per `log_every_n_steps` updates, with `step` = t, the index of the
update (0-based), and the loss, LR and weights theta_t that update t used; an evaluation record
after every epoch with `step` = the number of updates done.
"""

import contextlib
import itertools
import math
import time

import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from src.engine.distributed import World, all_max, all_sum
from src.engine.metrics import ScaleInvariantMonitor
from src.engine.preemption import PreemptionSignals
from src.engine.run_folder import rng_state, set_rng_state
from src.errors import UserError
from src.optim.renormalize import Renormalizer


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


@torch.no_grad()
def recalibrate_batch_norm(model, loader, epoch: int, batches: int, device, precision) -> None:
    """Recompute BN's running statistics at the current weights from `batches` training batches
    (a plain average). The running averages of training mix statistics of weights from many
    updates; under ExpLR those weights also differ in scale, so evaluation lags behind."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms or not batches:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: equal weights
    model.train()
    for x, _ in itertools.islice(loader.epoch(epoch), batches):
        with autocast(device, precision):
            model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def evaluate(model, loader, device, precision, world: World | None = None) -> dict:
    """Under DDP each process evaluates its share of the test set; the sums are combined."""
    model.eval()
    sums = torch.zeros(3, device=device, dtype=torch.float64)  # loss, correct, images
    for x, y in loader.epoch(0):
        with autocast(device, precision):
            logits = model(x)
        sums += torch.stack([F.cross_entropy(full_precision(logits), y, reduction="sum").double(),
                             (logits.argmax(1) == y).sum().double(),
                             torch.tensor(len(y), device=device, dtype=torch.float64)])
    loss_sum, correct, n = all_sum(world or World(), sums).tolist()
    return {"test/loss": loss_sum / n, "test/acc": correct / n}


def scale_invariant_monitor(model, optimizer, tracked) -> ScaleInvariantMonitor | None:
    names = {id(p): n for n, p in model.named_parameters()}
    named = {names[id(p)]: p for g in optimizer.param_groups if g["name"] == "scale_invariant"
             for p in g["params"]}
    unknown = [name for name in tracked if name not in named]
    if unknown:
        raise UserError(f"trainer.track_params: {unknown} are not scale-invariant parameters of "
                        f"this model; some that are: {list(named)[:4]}")
    return ScaleInvariantMonitor(named, list(tracked)) if named else None


def fit(model, optimizer, schedule, data, recorder, cfg, device, folder=None, resume=None,
        wandb_id=None, world: World | None = None) -> dict:
    """Train for cfg.epochs (or cfg.max_steps updates); returns the run's summary.

    folder: the RunFolder that checkpoints go to (None: no checkpoints); resume: a checkpoint
    to continue from, exactly where it was taken; world: the DDP processes (default: this one).
    """
    world = world or World()
    # The LR logged is the scale-invariant group's (the rest's if there is none), as the
    # schedule gives it: records show the process without renormalisation.
    group = next(g for g in optimizer.param_groups if g["name"] in ("scale_invariant", "rest"))
    monitor = scale_invariant_monitor(model, optimizer, cfg.track_params)
    guard = Renormalizer(model, optimizer, cfg.renormalize_above)
    dtype = next(model.parameters()).dtype
    largest = torch.finfo(dtype).max
    steps_per_epoch = len(data.train)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    summary = {"status": "running", "steps": 0, "epochs": 0.0}
    step, first_epoch, first_batch, elapsed = 0, 0, 0, 0.0
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step, first_epoch, first_batch = resume["step"], resume["epoch"], resume["batch"]
        # The epoch's totals so far are over all processes: rank 0 carries them on.
        totals = ({k: v.to(device) for k, v in resume["totals"].items()} if world.main
                  else epoch_totals(device))
        guard.scale, guard.target = resume["guard"]
        if monitor and resume["monitor"] is not None:
            monitor.epoch_start = {k: [t.to(device) for t in v]
                                   for k, v in resume["monitor"].items()}
        summary, elapsed = resume["summary"], resume["elapsed"]
        set_rng_state(resume["rng"])
    first_nonfinite = torch.full((), -1, device=device)  # first step with a NaN/inf loss, or -1
    forward = compiled(data_parallel(model, device, world), cfg.compile)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def save(epoch: int, batch: int) -> None:
        """A checkpoint from which the run goes on at batch `batch` of epoch `epoch`."""
        check_finite(model, first_nonfinite, step, world)
        epoch_sums = {k: all_sum(world, v) for k, v in totals.items()}
        if folder is None or not world.main:
            return
        folder.save_checkpoint({
            "config": folder.config, "step": step, "epoch": epoch, "batch": batch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "totals": epoch_sums, "guard": (guard.scale, guard.target),
            "monitor": monitor.epoch_start if monitor else None,
            "summary": summary, "elapsed": elapsed + time.perf_counter() - start,
            "rng": rng_state(), "records_offset": recorder.offset(), "wandb_id": wandb_id,
        })

    start = time.perf_counter()
    progress = tqdm(total=total, initial=step, disable=None if world.main else True,
                    dynamic_ncols=True, unit="step")
    try:
        with PreemptionSignals() as signals:
            for epoch in range(first_epoch, cfg.epochs):
                model.train()
                if first_batch == 0:  # else a resumed epoch: its totals come from the checkpoint
                    totals = epoch_totals(device)
                    if monitor:
                        monitor.start_epoch()
                batches = data.train.epoch(epoch, start=first_batch)
                for i, (x, y) in enumerate(batches, start=first_batch):
                    if step >= total:
                        break
                    schedule.apply(optimizer, step, guard.scale)
                    if any(g["lr"] > largest for g in optimizer.param_groups):
                        raise Diverged(f"the learning rate overflows {dtype} at step {step} "
                                       f"(trainer.renormalize_above keeps it finite)", step)
                    x = x.contiguous(memory_format=memory_format)
                    with autocast(device, cfg.precision):
                        logits = forward(x)
                    loss = F.cross_entropy(full_precision(logits), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    # No host sync: the step is read at the next check.
                    first_nonfinite = torch.where(
                        (first_nonfinite < 0) & ~loss.detach().isfinite(), step, first_nonfinite)
                    record = None
                    if step % cfg.log_every_n_steps == 0:
                        lr = float(schedule.groups[group["name"]].lr[step])
                        record = train_record(step, epoch + i / steps_per_epoch, loss, logits, y,
                                              lr, world)
                        if monitor:
                            record.update(monitor.before_step(group["lr"], guard.scale))
                            record["si/renorm_scale"] = guard.scale
                    optimizer.step()
                    if record:
                        if monitor:
                            record.update(monitor.after_step())
                        recorder.log(record)
                        guard.check()
                        progress.set_postfix(loss=f"{record['train/loss']:.4f}", refresh=False)
                    totals["loss_sum"] += loss.detach() * len(y)
                    totals["correct"] += (logits.argmax(1) == y).sum()
                    totals["seen"] += len(y)
                    step += 1
                    progress.update()
                    if stop_requested(signals, world, step % cfg.log_every_n_steps == 0, device):
                        save(epoch, i + 1)
                        raise signals.stop(step)
                    if cfg.checkpoint_every_n_steps and step % cfg.checkpoint_every_n_steps == 0:
                        save(epoch, i + 1)
                first_batch = 0
                epoch_sums = {k: all_sum(world, v) for k, v in totals.items()}
                seen = int(epoch_sums["seen"])
                if not seen:
                    break
                epoch_loss = epoch_sums["loss_sum"].item() / seen
                check_finite(model, first_nonfinite, step, world)
                done = epoch + seen / data.train.num_samples
                record = {"step": step, "epoch": done, "train/epoch_loss": epoch_loss,
                          "train/epoch_acc": epoch_sums["correct"].item() / seen}
                if monitor:
                    record.update(monitor.end_epoch())
                recalibrate_batch_norm(model, data.train, epoch, cfg.bn_recalibration_batches,
                                       device, cfg.precision)
                record.update(evaluate(model, data.test, device, cfg.precision, world))
                recorder.log(record)
                summary.update({k: v for k, v in record.items() if k not in ("step", "epoch")},
                               steps=step, epochs=done)
                last = epoch + 1 == cfg.epochs or step >= total
                every = cfg.checkpoint_every_n_epochs
                if every and ((epoch + 1) % every == 0 or last):
                    save(epoch + 1, 0)
        summary["status"] = "completed"
    except Diverged as e:
        summary.update(status="diverged", error=str(e), steps=step, diverged_at_step=e.step)
    finally:
        progress.close()
        summary["wall_time_s"] = elapsed + time.perf_counter() - start
    return summary


def data_parallel(model, device, world: World):
    """The training forward under DDP: gradients averaged over the processes."""
    if not world.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def stop_requested(signals, world: World, at_check: bool, device) -> bool:
    """A stop signal seen by this process, or under DDP by any, at a step where all of them
    ask (a collective needs every process)."""
    if not world.distributed:
        return signals.received is not None
    if not at_check:
        return False
    received = torch.tensor(signals.received or 0, device=device)
    signals.received = int(all_max(world, received)) or None
    return signals.received is not None


def compiled(model, setting):
    """The training forward: the model itself, or torch.compile's version of it (same
    parameters; checkpoints and metrics keep using the model)."""
    if setting is False:
        return model
    return torch.compile(model, backend="inductor" if setting is True else setting)


def epoch_totals(device) -> dict:
    return {"loss_sum": torch.zeros((), device=device, dtype=torch.float64),
            "correct": torch.zeros((), device=device, dtype=torch.int64),
            "seen": torch.zeros((), device=device, dtype=torch.int64)}


def check_finite(model, first_nonfinite: torch.Tensor, step: int, world: World) -> None:
    """Raise Diverged if a loss so far (in any process) or a parameter is NaN or infinite."""
    bad_step = int(all_max(world, first_nonfinite))
    if bad_step >= 0:
        raise Diverged(f"the training loss became NaN or infinite at step {bad_step}", bad_step)
    norms = torch._foreach_norm([p.detach() for p in model.parameters()])
    if not torch.stack(norms).isfinite().all():
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
