"""prepare(cfg): the one step from a composed config to the config a run computes with.

Every entry point (src.train, src.verify, src.bench) calls it before anything is built: each
value is checked (src/config/checks.py), budget=mini is mapped (src/config/budget.py), the
values that must fit together are checked, and `auto` is resolved for the device and the
precision. The result is what the run folder's config.yaml records; applying it again changes
nothing.
"""

import logging

from omegaconf import DictConfig, open_dict

from src.config.budget import apply_budget
from src.config.checks import check_relations, check_values
from src.engine.backends import (
    bf16_support,
    choose_channels_last,
    choose_precision,
    resolve_device,
)

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> DictConfig:
    """cfg prepared in place (and returned): checked, mapped, device and precision resolved.
    Raises UserError, naming the key, for the first value that is not allowed."""
    check_values(cfg)
    _warn_unused(cfg)
    apply_budget(cfg)
    check_relations(cfg)
    if "trainer" in cfg and cfg.get("task", "train") != "toy_wd_bn":
        _resolve_hardware(cfg.trainer)
    return cfg


# the optimizer keys only some optimizers read (src/optim/optimizer.py)
OWN_KEYS = {"momentum": ("sgd",), "projected": ("sgd",), "betas": ("adamw", "lion"),
            "eps": ("adamw",)}


def _warn_unused(cfg: DictConfig) -> None:
    """An experiment's SGD recipe run with optimizer=adamw keeps its momentum key, unused:
    say so, once, rather than refuse the experiment."""
    opt = cfg.get("optimizer")
    if opt is None:
        return
    unused = [k for k, kinds in OWN_KEYS.items() if k in opt and opt.name not in kinds]
    if unused:
        log.warning("optimizer=%s does not use %s", opt.name,
                    ", ".join(f"optimizer.{k}={opt[k]}" for k in unused))


def _resolve_hardware(trainer: DictConfig) -> None:
    """trainer.device=auto -> cpu or cuda, trainer.precision=auto -> what this device computes
    fastest, trainer.channels_last=auto -> the memory layout measured faster for it. A resume
    on hardware that would choose another precision is then refused as a different config,
    since its numbers would come from another arithmetic."""
    device = resolve_device(trainer.device)
    with open_dict(trainer):
        trainer.device = device.type
        if trainer.precision == "auto":
            precision, why = choose_precision(bf16_support(device))
            trainer.precision = precision
            log.info("trainer.precision=auto on %s: %s (%s)", device.type, precision, why)
        if trainer.channels_last == "auto":
            trainer.channels_last, why = choose_channels_last(device, trainer.precision)
            log.debug("trainer.channels_last=auto: %s (%s)", trainer.channels_last, why)
