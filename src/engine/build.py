"""config -> (data, model, optimizer, schedule): what training, the verifier and the benchmark
all start from."""

import torch
from omegaconf import DictConfig

from src.data import build_data
from src.engine.distributed import World
from src.errors import UserError
from src.models import build_model
from src.optim.optimizer import build_optimizer
from src.optim.schedules import build_schedule

# cfg.task: a network's training, or paper A's toy example (src/engine/toy.py)
TASKS = ("train", "toy_wd_bn")
# trainer.precision -> the dtype of the weights (bf16: float32 weights under bf16 autocast)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.float32}


def total_steps(trainer: DictConfig, steps_per_epoch: int) -> int:
    """The run's length in updates: trainer.epochs, cut short by trainer.max_steps."""
    total = trainer.epochs * steps_per_epoch
    return total if trainer.max_steps is None else min(total, trainer.max_steps)


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
    invariant = optimizer.param_groups[0]["name"] == "scale_invariant"
    if cfg.trainer.full_gradient_images and not (invariant and hasattr(data.train, "first")):
        raise UserError("trainer.full_gradient_images needs scale-invariant weights and "
                        "dataset.loader=device (the training set as one tensor)")
    try:
        schedule = build_schedule(cfg.schedule, cfg.optimizer, len(data.train),
                                  total_steps(cfg.trainer, len(data.train)))
    except ValueError as e:  # no real alpha, or no exact twin for this schedule
        raise UserError(f"schedule={cfg.schedule.name} with optimizer={dict(cfg.optimizer)}: {e}"
                        ) from None
    return data, model, optimizer, schedule
