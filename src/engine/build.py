"""A prepared config -> (data, model, optimizer, schedule): what training, the verifier and the
benchmark all start from, after the trainer's backend settings (TF32, determinism) are applied
for the device."""


import torch
from omegaconf import DictConfig

from src.data import build_data
from src.engine.backends import DTYPES, apply_backend_settings, backend_settings
from src.engine.distributed import World
from src.errors import UserError
from src.models import build_model
from src.optim.optimizer import build_optimizer
from src.optim.scheduler import TableLR
from src.optim.schedules import build_schedule


def total_steps(trainer: DictConfig, steps_per_epoch: int) -> int:
    """The run's length in updates: trainer.epochs, cut short by trainer.max_steps."""
    total = trainer.epochs * steps_per_epoch
    return total if trainer.max_steps is None else min(total, trainer.max_steps)


def build(cfg: DictConfig, device: torch.device, world: World | None = None):
    """(data, model, optimizer, scheduler) for a prepared config (src/config/prepare.py), ready
    for the loop: the scheduler (a torch LRScheduler, src/optim/scheduler.py) has set the
    values of update 0."""
    world = world or World()
    for key, value in (("precision", cfg.trainer.precision),
                       ("channels_last", cfg.trainer.channels_last)):
        if value == "auto":
            raise ValueError(f"trainer.{key}=auto: prepare the config first "
                             f"(src.config.prepare.prepare resolves auto)")
    apply_backend_settings(backend_settings(cfg.trainer, device.type))
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
    invariant = optimizer.param_groups[0]["name"] == "scale_invariant"  # groups: si, rest
    if cfg.trainer.full_gradient_images and not (invariant and hasattr(data.train, "first")):
        raise UserError("trainer.full_gradient_images needs scale-invariant weights and "
                        "dataset.loader=device (the training set as one tensor)")
    try:
        table = build_schedule(cfg.schedule, cfg.optimizer, len(data.train),
                               total_steps(cfg.trainer, len(data.train)))
    except ValueError as e:  # no real alpha, or no exact twin for this schedule
        raise UserError(f"schedule={cfg.schedule.name} with optimizer={dict(cfg.optimizer)}: {e}"
                        ) from None
    return data, model, optimizer, TableLR(optimizer, table)
