"""The training loop: epochs of train steps (src/engine/step.py), an evaluation after each,
checkpoints and stop signals. No math of the papers lives here.

Records: a training record per `log_every_n_steps` updates, with `step` = t, the index of the
update (0-based), and the loss, LR and weights theta_t that update t used; an evaluation record
after every epoch with `step` = the number of updates done.
"""

import datetime
import itertools
import logging
import time

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from src.engine.build import total_steps
from src.engine.distributed import World, all_max, all_sum
from src.engine.preemption import PreemptionSignals
from src.engine.state import TrainState
from src.engine.step import Diverged, TrainStep, autocast, full_precision

log = logging.getLogger(__name__)


@torch.no_grad()
def recalibrate_batch_norm(model, loader, epoch: int, batches: int, device, precision) -> None:
    """Recompute BN's running statistics at the current weights from `batches` training batches
    (a plain average: torch's update_bn, on a slice of the epoch, under the run's precision).
    The running averages of training mix statistics of weights from many updates; under ExpLR
    those weights also differ in scale, so evaluation lags behind."""
    if batches:  # update_bn of no batch would leave the statistics reset
        with autocast(device, precision):
            update_bn(itertools.islice(loader.epoch(epoch), batches), model)


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


class Loop:
    """The run's epochs of train_step on data, from a start state to the end (cfg.epochs, or
    cfg.max_steps updates), writing records to `recorder` and checkpoints to `folder` (None:
    no checkpoints). cfg: the `trainer` config."""

    def __init__(self, train_step: TrainStep, data, recorder, cfg, folder=None):
        self.train_step, self.data, self.recorder, self.cfg = train_step, data, recorder, cfg
        self.folder, self.world, self.device = folder, train_step.world, train_step.device
        self.total = total_steps(cfg, len(data.train))
        self.last = {}  # the latest training record

    def fit(self, resume: dict | None = None, wandb_id: str | None = None) -> dict:
        """Train from the checkpoint `resume` (None: from the start); the run's summary."""
        state = (TrainState.from_checkpoint(resume, self.train_step, self.device, self.world)
                 if resume else TrainState(self.train_step))
        state.wandb_id, self.state = wandb_id, state
        # the bar only on a terminal (disable=None); the log lines of the epochs go around it
        self.progress = tqdm(total=self.total, initial=state.step, dynamic_ncols=True,
                             disable=None if self.world.main else True, unit="step")
        self.launch = (time.perf_counter(), state.step)
        try:
            with PreemptionSignals() as signals, logging_redirect_tqdm():
                for epoch in range(state.epoch, self.cfg.epochs):
                    if not self.epoch(epoch, signals):
                        break
            state.summary["status"] = "completed"
        except Diverged as e:
            state.summary.update(status="diverged", error=str(e), steps=state.step,
                                 diverged_at_step=e.step)
        finally:
            self.progress.close()
            state.summary["wall_time_s"] = state.elapsed
        return state.summary

    def epoch(self, epoch: int, signals) -> bool:
        """One epoch (or what is left of a resumed one) and its end; False when the run ends."""
        state, cfg = self.state, self.cfg
        began = (time.perf_counter(), state.step)
        if state.batch == 0:  # else a resumed epoch: its totals come from the checkpoint
            state.start_epoch(self.device)
        self.train_step.model.train()
        batches = self.data.train.epoch(epoch, start=state.batch)
        for i, (x, y) in enumerate(batches, start=state.batch):
            if state.step >= self.total:
                break
            record = self.train_step(x, y, state.step, epoch + i / len(self.data.train),
                                     state.totals)
            if record:
                self.recorder.log(record)
                self.last = record
                self.progress.set_postfix(loss=f"{record['train/loss']:.4f}", refresh=False)
            state.step += 1
            self.progress.update()
            stop = stop_requested(signals, self.world, state.step % cfg.log_every_n_steps == 0,
                                  self.device)
            if stop or (cfg.checkpoint_every_n_steps
                        and state.step % cfg.checkpoint_every_n_steps == 0):
                self.save(epoch, i + 1)
            if stop:
                raise signals.stop(state.step)
        state.batch = 0
        final = epoch + 1 == cfg.epochs or state.step >= self.total
        if not self.end_epoch(epoch, final):
            return False
        if self.world.main:
            log.info("%s", epoch_line(state, self.last, began, self.launch, self.total, cfg))
        every = cfg.checkpoint_every_n_epochs
        if every and ((epoch + 1) % every == 0 or final):
            self.save(epoch + 1, 0)
        return not final

    def save(self, epoch: int, batch: int) -> None:
        """A checkpoint from which the run goes on at batch `batch` of epoch `epoch` (none
        without a run folder). Every process calls it: the checks and totals are collective."""
        state = self.state
        state.train_step.check_finite(state.step)
        state.epoch, state.batch = epoch, batch
        if self.folder is None:
            return
        checkpoint = state.to_checkpoint(self.world, self.folder.config, self.recorder.offset())
        if self.world.main:
            self.folder.save_checkpoint(checkpoint)

    def end_epoch(self, epoch: int, final: bool) -> bool:
        """The epoch's record (its totals, the angle over it, a test-set evaluation at
        recomputed BN statistics every cfg.eval_every_n_epochs epochs and at the last), logged
        and put into the summary; False when the epoch saw no batch."""
        state, cfg, data, world = self.state, self.cfg, self.data, self.world
        epoch_sums = {k: all_sum(world, v) for k, v in state.totals.items()}
        seen = int(epoch_sums["seen"])
        if not seen:
            return False
        model, monitor = state.train_step.model, state.train_step.monitor
        state.train_step.check_finite(state.step)
        done = epoch + seen / data.train.num_samples
        record = {"step": state.step, "epoch": done,
                  "train/epoch_loss": epoch_sums["loss_sum"].item() / seen,
                  "train/epoch_acc": epoch_sums["correct"].item() / seen}
        if monitor:
            record.update(monitor.end_epoch())
        if cfg.full_gradient_images:
            record.update(state.train_step.full_gradient(
                *data.train.first(cfg.full_gradient_images)))
        if final or (epoch + 1) % cfg.eval_every_n_epochs == 0:
            recalibrate_batch_norm(model, data.train, epoch, cfg.bn_recalibration_batches,
                                   self.device, cfg.precision)
            record.update(evaluate(model, data.test, self.device, cfg.precision, world))
        self.recorder.log(record)
        state.summary.update({k: v for k, v in record.items() if k not in ("step", "epoch")},
                             steps=state.step, epochs=done)
        return True


def epoch_line(state: TrainState, last: dict, began, launch, total: int, cfg) -> str:
    """The epoch's log line, written with or without a terminal (SLURM, Docker, joblib).
    began, launch: (time, step) at the start of the epoch and of this launch; last: the
    latest training record."""
    now, summary = time.perf_counter(), state.summary
    eta = (total - state.step) * (now - launch[0]) / max(state.step - launch[1], 1)
    parts = [f"epoch {summary['epochs']:.4g}/{cfg.epochs}", f"step {state.step}/{total}",
             f"loss {summary['train/epoch_loss']:.4g}"]
    parts += [f"test/acc {summary['test/acc']:.4f}"] if "test/acc" in summary else []
    parts += [f"{name} {last[key]:.4g}" for name, key in (("lr", "lr"),
              ("effective lr", "si/effective_lr")) if key in last]
    images = (state.step - began[1]) * cfg.batch_size / (now - began[0])
    return ", ".join([*parts, f"{images:.0f} images/s",
                      f"ETA {datetime.timedelta(seconds=round(eta))}"])


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


