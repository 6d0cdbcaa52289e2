"""Checks of a composed config: each bad value gives one line naming the key and what is allowed.

Hydra already refuses unknown keys and config-group options; this catches bad values.
"""

from pathlib import Path

import timm
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.checks import is_integer, is_number
from src.data import DATASETS, check_dataset
from src.engine.build import DTYPES, TASKS
from src.engine.step import COMPILE_BACKENDS
from src.errors import UserError
from src.models import NORMS
from src.optim.schedules import BASE_OF, PLAIN, SCHEDULES
from src.theory.explr import NoRealAlpha, alpha_star
from src.tracking.run_format import NOT_IDENTITY
from src.tracking.wandb_sink import LOGGER_KINDS

CONF = Path(__file__).resolve().parents[1] / "conf"
DEVICES = ("auto", "cpu", "cuda")


# Keys that name nothing a grid computes: left out of a figure grid's folder names.
NOT_IN_FOLDER_NAMES = ("experiment", "name", *NOT_IDENTITY)


def _as_in_a_job(override: str) -> tuple[str, str]:
    """(key, the override as Hydra writes it among a job's overrides): the command line's
    `x=1e-2` is `x=0.01` there, and both must give the same folder name."""
    parsed = OverridesParser.create().parse_override(override)
    if parsed.is_sweep_override() or parsed.value() is None:
        return parsed.key_or_group, override
    return parsed.key_or_group, f"{parsed.get_key_element()}={parsed.get_value_element_as_str()}"


def _in_folder_name(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_IN_FOLDER_NAMES)


def grid_folder_names(overrides, swept, part: str) -> str:
    """A figure grid's folder names, from a job's (or the launch's) overrides.

    part="launch": the overrides of the command line that the grid does not sweep (e.g.
    `dataset=digits,trainer.epochs=6`, or `paper` for none), so that small-budget launches and
    the paper's own do not mix; part="job": the swept values alone (e.g. `schedule=step,seed=0`).
    """
    swept = set(swept or ())
    chosen = sorted(o for key, o in map(_as_in_a_job, overrides or ()) if _in_folder_name(key)
                    and (key in swept) == (part == "job"))
    return ",".join(chosen) or ("paper" if part == "launch" else "default")


OmegaConf.register_new_resolver("grid_folder", grid_folder_names, replace=True)
# Hydra's job folder names leave out the keys that do not change a run's numbers.
OmegaConf.register_new_resolver("not_identity", lambda: list(NOT_IDENTITY), replace=True)
# ${ratio:a,b} = a / b, e.g. the step factor that takes a swept LR to a common one.
OmegaConf.register_new_resolver("ratio", lambda a, b: a / b, replace=True)


def compose_config(overrides=(), config_name: str = "config") -> DictConfig:
    """The config `python -m src.train OVERRIDES` would run, composed from Python."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))




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
    "trainer.precision": _one_of(tuple(DTYPES)),
    "trainer.renormalize_above": (lambda v: v is None or (is_number(v) and v > 0),
                                  "null or a number > 0"),
    "trainer.renormalize_every_n_steps": (lambda v: is_integer(v) and v > 0, "an integer > 0"),
    "trainer.bn_recalibration_batches": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
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
    "schedule.name": _one_of(SCHEDULES),
    "logger.kind": _one_of(LOGGER_KINDS),
}


def validate(cfg) -> None:
    for key, (ok, allowed) in CHECKS.items():
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        if not ok(value):
            raise UserError(f"{key}={value!r} is not allowed: use {allowed}")
    check_dataset(cfg.dataset)
    if cfg.model.scale_invariant and cfg.model.norm == "none":
        raise UserError("model.scale_invariant=true needs a norm layer: model.norm=none has none")
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
