"""Checks of a composed config: each bad value gives one line naming the key and what is allowed.

Hydra already refuses unknown keys and config-group options; this catches bad values.
"""

import timm
import torch
from omegaconf import OmegaConf

from src.checks import is_integer, is_number
from src.data import DATASETS, check_dataset
from src.engine.build import COMPILE_MODES, PRECISIONS, TASKS, resolve_precision
from src.engine.step import COMPILE_BACKENDS
from src.errors import UserError
from src.models import LAYOUTS, NORMS
from src.optim.schedules import BASE_OF, PLAIN, SCHEDULES
from src.theory.explr import NoRealAlpha, alpha_star
from src.tracking.wandb_sink import LOGGER_KINDS, WANDB_MODES

DEVICES = ("auto", "cpu", "cuda")


def _one_of(options):
    return (lambda v: v in options), "one of " + ", ".join(map(str, options))


CHECKS = {
    "task": _one_of(TASKS),
    "seed": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
    "optimizer.lr": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "optimizer.weight_decay": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "optimizer.rest_lr": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "optimizer.rest_weight_decay": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "optimizer.momentum": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "trainer.epochs": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.batch_size": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.log_every_n_steps": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.max_steps": (lambda v: v is None or (is_integer(v) and v > 0),
                          "null or an integer > 0"),
    "trainer.device": _one_of(DEVICES),
    "trainer.precision": _one_of(PRECISIONS),
    "trainer.tf32": (lambda v: isinstance(v, bool), "true or false"),
    "trainer.deterministic": (lambda v: isinstance(v, bool), "true or false"),
    "trainer.compile_mode": _one_of(COMPILE_MODES),
    "trainer.renormalize_above": (lambda v: v is None or (is_number(v) and v > 0),
                                  "null or a number > 0"),
    "trainer.renormalize_every_n_steps": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.bn_recalibration_batches": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
    "trainer.eval_every_n_epochs": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.checkpoint_every_n_epochs": (lambda v: v is None or (is_integer(v) and v > 0),
                                          "null or an integer > 0"),
    "trainer.checkpoint_every_n_steps": (lambda v: v is None or (is_integer(v) and v > 0),
                                         "null or an integer > 0"),
    "trainer.resume": (lambda v: isinstance(v, str) and v != "",
                       "auto, never or the path of a checkpoint file"),
    "optimizer.projected": _one_of((False, True)),
    "trainer.channels_last": _one_of((False, True)),
    "trainer.sync_batchnorm": _one_of((False, True)),
    "trainer.compile": (lambda v: isinstance(v, bool) or v in COMPILE_BACKENDS,
                        "true, false or a backend: " + ", ".join(COMPILE_BACKENDS)),
    "dataset.name": _one_of(DATASETS),
    "model.name": (lambda v: isinstance(v, str) and timm.is_model(v),
                   "a timm model name (preresnet20/32/56/110 or any of timm.list_models())"),
    "model.norm": (lambda v: v is None or v in NORMS, "null (the model's own) or one of "
                   + ", ".join(NORMS)),
    "model.gn_groups": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "model.scale_invariant": _one_of(LAYOUTS),
    "trainer.full_gradient_images": (lambda v: v is None or (is_integer(v) and v > 0),
                                     "null or an integer > 0"),
    "schedule.name": _one_of(SCHEDULES),
    "logger.kind": _one_of(LOGGER_KINDS),
    "logger.mode": (lambda v: v is None or v in WANDB_MODES, "one of " + ", ".join(WANDB_MODES)
                    + " (logger.mode, else the environment's WANDB_MODE)"),
}


def validate(cfg) -> None:
    for key, (ok, allowed) in CHECKS.items():
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        if not ok(value):
            raise UserError(f"{key}={value!r} is not allowed: use {allowed}")
    check_dataset(cfg.dataset)
    if cfg.model.scale_invariant and cfg.model.norm == "none":
        raise UserError(f"model.scale_invariant={str(cfg.model.scale_invariant).lower()} needs a "
                        f"norm layer: model.norm=none has none")
    schedule = cfg.schedule
    base = schedule.get("base") if schedule.name == "equivalent" else schedule.name
    if schedule.name == "equivalent" and base not in PLAIN:
        raise UserError(f"schedule.base={base!r} is not allowed: use one of {', '.join(PLAIN)}")
    if base in ("step", "texp", "instant_decay"):
        milestones = schedule.milestones
        if not all(is_number(m) and m > 0 for m in milestones) or list(milestones) != sorted(
                milestones):
            raise UserError(f"schedule.milestones={list(milestones)} must be increasing epochs > 0")
        if not (is_number(schedule.factor) and 0 < schedule.factor <= 1):
            raise UserError(f"schedule.factor={schedule.factor!r} must be a number in (0, 1]")
    ratio = schedule.get("final_ratio")
    if base == "cosine" and not (is_number(ratio) and 0 <= ratio <= 1):
        raise UserError(f"schedule.final_ratio={schedule.final_ratio!r} must be in [0, 1]")
    if schedule.name in BASE_OF:  # the exponential schedules: they need a real alpha
        opt = cfg.optimizer
        try:
            alpha_star(opt.lr, opt.weight_decay, opt.momentum)
        except NoRealAlpha as e:
            raise UserError(
                f"schedule={schedule.name} with optimizer.lr={opt.lr}, optimizer.weight_decay="
                f"{opt.weight_decay}, optimizer.momentum={opt.momentum}: {e}"
            ) from None
    if cfg.trainer.sync_batchnorm and not torch.cuda.is_available():
        raise UserError("trainer.sync_batchnorm=true needs CUDA devices: PyTorch's SyncBatchNorm "
                        "has no CPU kernels")
    if cfg.trainer.device == "cuda" and not torch.cuda.is_available():
        raise UserError("trainer.device=cuda but no CUDA device is available: use auto or cpu")
    if cfg.trainer.compile_mode != "default" and cfg.trainer.compile not in (True, "inductor"):
        raise UserError(f"trainer.compile_mode={cfg.trainer.compile_mode} is inductor's: it "
                        f"needs trainer.compile=true (or inductor), not {cfg.trainer.compile!r}")
    # Before the run folder compares or writes the config: config.yaml holds the precision
    # the run's numbers come from, and a resume on hardware that would choose another is
    # refused as a different config.
    resolve_precision(cfg.trainer, resolve_device(cfg.trainer.device))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
