"""Every config key's check, in one table, and the checks that join several keys.

Hydra refuses unknown keys and config-group options; these catch bad values, each with one line
naming the key and what is allowed. A key is checked wherever the composed config has it (a
dataset's `root`, an experiment's `toy`); tests/test_config.py fails when a config file brings a
key that no entry here matches. Why a table and not a typed schema (Hydra's structured
configs): the keys differ from option to option of a group, most checks are ranges no type
says, and Hydra reports a type error on several lines with its own context.
"""

import math
import numbers
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.resolvers import CONF
from src.data import CLASSES, DATASETS
from src.engine.backends import COMPILE_BACKENDS, COMPILE_MODES, DEVICES, PRECISIONS
from src.engine.run import TASKS
from src.errors import UserError
from src.models import NORMS
from src.optim.groups import LAYOUTS
from src.optim.optimizer import OPTIMIZERS
from src.optim.schedules import BASE_OF, PLAIN, SCHEDULES
from src.theory.explr import NoRealAlpha, alpha_star
from src.tracking.wandb_sink import LOGGER_KINDS, WANDB_MODES


def is_number(v) -> bool:
    """A finite real number; YAML's true/false are not numbers."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


Check = tuple[Callable[[object], bool], str]


def one_of(options) -> Check:
    return (lambda v: v in options), "one of " + ", ".join(map(str, options))


def integer(low: int, none: bool = False) -> Check:
    return ((lambda v: (none and v is None) or (is_integer(v) and v >= low)),
            ("null or " if none else "") + f"an integer >= {low}")


def number(low: float = -math.inf, high: float = math.inf, *, low_open=False, high_open=False,
           none=False) -> Check:
    """A number in the interval; *_open: the end itself is not allowed."""
    def ok(v):
        if none and v is None:
            return True
        return (is_number(v) and (v > low if low_open else v >= low)
                and (v < high if high_open else v <= high))
    if high == math.inf:
        text = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        text = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                f"{')' if high_open else ']'}")
    return ok, ("null or " if none else "") + text


def increasing(v) -> bool:
    """A list of increasing numbers > 0 (milestones, in epochs)."""
    return (isinstance(v, Sequence) and all(is_number(m) and m > 0 for m in v)
            and list(v) == sorted(v))


def numbers_of(length: int, positive: bool = False) -> Check:
    def ok(v):
        return (isinstance(v, Sequence) and not isinstance(v, str) and len(v) == length
                and all(is_number(x) and (x > 0 or not positive) for x in v))
    return ok, f"a list of {length} numbers" + (" > 0" if positive else "")


def text(none: bool = False) -> Check:
    return ((lambda v: (none and v is None) or (isinstance(v, str) and v != "")),
            ("null or " if none else "") + "a non-empty string")


BOOLEAN: Check = (lambda v: isinstance(v, bool), "true or false")
# Values only read through interpolations elsewhere (an experiment's tables per budget or
# method), or passed on as they are: any value.
ANY: Check | None = None
STRINGS: Check = (lambda v: isinstance(v, Sequence) and all(isinstance(s, str) for s in v),
                  "a list of strings")


def _conf_options(group: str) -> Check:
    return one_of(sorted(p.stem for p in (CONF / group).glob("*.yaml")))


CHECKS: dict[str, Check | None] = {
    "task": one_of(TASKS),
    "name": text(),
    "seed": integer(0),
    "figure": text(none=True),
    "method": _conf_options("descent"),
    # dataset (each key where the dataset has it)
    "dataset.name": one_of(DATASETS),
    "dataset.root": text(),
    "dataset.num_classes": integer(2),
    "dataset.image_size": integer(1),
    "dataset.test_fraction": number(0, 1, low_open=True, high_open=True),
    "dataset.split_seed": integer(0),
    "dataset.num_train": integer(1),
    "dataset.num_test": integer(1),
    "dataset.train_subset": (integer(1, none=True)[0], "null (all) or an integer >= 1"),
    "dataset.crop_padding": integer(0),
    "dataset.flip": BOOLEAN,
    "dataset.download": BOOLEAN,
    "dataset.loader": one_of(("device", "torch")),
    "dataset.num_workers": integer(0),
    "dataset.mean": numbers_of(3),
    "dataset.std": numbers_of(3, positive=True),
    # model
    "model.name": (lambda v: isinstance(v, str) and _is_timm_model(v),
                   "a timm model name (preresnet20/32/56/110 or any of timm.list_models())"),
    "model.norm": (lambda v: v is None or v in NORMS,
                   "null (the model's own) or one of " + ", ".join(NORMS)),
    "model.gn_groups": integer(1),
    "model.norm_eps": number(0, low_open=True, none=True),
    "model.scale_invariant": one_of(LAYOUTS),
    "model.head_seed": integer(0),
    "model.head_norm": number(0, low_open=True),
    "model.kwargs": (lambda v: isinstance(v, dict), "a mapping of timm.create_model's arguments"),
    "model.kwargs.width": number(0, low_open=True),  # ours (PreResNet, VGG): widths x width
    "model.kwargs.drop_rate": number(0, 1, high_open=True),
    "model.kwargs.*": ANY,  # timm.create_model refuses what the model does not take
    # optimizer
    "optimizer.name": one_of(tuple(OPTIMIZERS)),
    "optimizer.betas": (lambda v: numbers_of(2)[0](v) and all(0 <= b < 1 for b in v),
                        "a list of 2 numbers in [0, 1)"),
    "optimizer.eps": number(0),
    "optimizer.lr": number(0, low_open=True),
    "optimizer.weight_decay": number(0),
    "optimizer.rest_lr": number(0),
    "optimizer.rest_weight_decay": number(0),
    "optimizer.momentum": number(0, 1, high_open=True),
    "optimizer.projected": BOOLEAN,
    # schedule
    "schedule.name": one_of(SCHEDULES),
    "schedule.base": one_of(PLAIN),
    "schedule.milestones": (increasing, "increasing epochs > 0"),
    "schedule.factor": number(0, 1, low_open=True),
    "schedule.final_ratio": number(0, 1),
    "schedule.momentum_correction": BOOLEAN,
    # trainer
    "trainer.epochs": integer(1),
    "trainer.batch_size": integer(1),
    "trainer.device": one_of(DEVICES),
    "trainer.precision": one_of(PRECISIONS),
    "trainer.channels_last": (lambda v: isinstance(v, bool) or v == "auto",
                              "true, false or auto"),
    "trainer.compile": (lambda v: isinstance(v, bool) or v in COMPILE_BACKENDS,
                        "true, false or a backend: " + ", ".join(COMPILE_BACKENDS)),
    "trainer.compile_mode": one_of(COMPILE_MODES),
    "trainer.tf32": BOOLEAN,
    "trainer.deterministic": BOOLEAN,
    "trainer.sync_batchnorm": BOOLEAN,
    "trainer.log_every_n_steps": integer(1),
    "trainer.max_steps": integer(1, none=True),
    "trainer.track_params": (lambda v: v == "all" or (not isinstance(v, str) and STRINGS[0](v)),
                             "all or a list of scale-invariant parameters' names"),
    "trainer.full_gradient_images": integer(1, none=True),
    "trainer.renormalize_above": number(0, low_open=True, none=True),
    "trainer.renormalize_every_n_steps": integer(1),
    "trainer.bn_recalibration_batches": integer(0),
    "trainer.eval_every_n_epochs": integer(1),
    "trainer.checkpoint_every_n_epochs": integer(1, none=True),
    "trainer.checkpoint_every_n_steps": integer(1, none=True),
    "trainer.resume": (lambda v: isinstance(v, str) and v != "",
                       "auto, never or the path of a checkpoint file"),
    # logger
    "logger.kind": one_of(LOGGER_KINDS),
    "logger.mode": (lambda v: v is None or v in WANDB_MODES, "one of " + ", ".join(WANDB_MODES)
                    + " (logger.mode, else the environment's WANDB_MODE)"),
    "logger.project": text(),
    "logger.entity": text(none=True),
    "logger.group": ANY,  # a grid's reads Hydra's overrides: resolved by W&B's start only
    "logger.job_type": text(),
    "logger.tags": STRINGS,
    "logger.name": text(none=True),
    "logger.log_checkpoints": BOOLEAN,
    # budget (src/config/budget.py)
    "budget.name": one_of(("paper", "mini")),
    "budget.k": number(1),
    "budget.steps_per_epoch": integer(1),
    "budget.batch_size": integer(1, none=True),
    "budget.digits_size": integer(1, none=True),
    "budget.paper_epochs": number(0, low_open=True, none=True),
    "budget.paper.*": ANY,  # the paper's values, written by the mapping itself
    "budget.*.*": ANY,      # an experiment's tables read through interpolations (k_of, seeds)
    # paper A's toy example (task=toy_wd_bn)
    "toy.lr": number(0, low_open=True),
    "toy.weight_decay": number(0),
    "toy.steps": integer(1),
    "toy.init": numbers_of(2),
    "toy.quadrature_points": integer(2),
    "toy.threshold": number(0, 1, low_open=True, high_open=True),
    "toy.log_every": integer(1),
    # python -m src.verify (conf/verify.yaml)
    "verify.milestones": (increasing, "increasing epochs > 0"),
    "verify.optimizers": (lambda v: isinstance(v, Sequence) and len(v) > 0
                          and all(o in OPTIMIZERS for o in v),
                          "a list of optimizers: " + ", ".join(OPTIMIZERS)),
    "verify.probe_size": integer(1),
}


def _is_timm_model(name: str) -> bool:
    import timm

    return timm.is_model(name)


def check_for(key: str) -> tuple[str, Check | None] | None:
    """The table's entry for a key: its own, else the first pattern that matches it."""
    if key in CHECKS:
        return key, CHECKS[key]
    return next(((p, c) for p, c in CHECKS.items() if "*" in p and fnmatchcase(key, p)), None)


def leaf_keys(node, prefix: str = "") -> list[str]:
    """The dotted keys of a config's values (an empty mapping counts as a value)."""
    if isinstance(node, DictConfig) and len(node):
        return [k for name in node for k in leaf_keys(node._get_node(name), f"{prefix}{name}.")]
    return [prefix.rstrip(".")]


def _plain(value):
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


def check_values(cfg: DictConfig) -> None:
    """Each key's value against its check; UserError naming the first bad one."""
    for key in leaf_keys(cfg):
        found = check_for(key)
        parent = key.rpartition(".")[0]
        if found is None and parent and check_for(parent):
            found = check_for(parent)  # a mapping checked whole (model.kwargs: {})
            key = parent
        if found is None or found[1] is None:
            continue
        ok, allowed = found[1]
        value = _plain(OmegaConf.select(cfg, key, throw_on_missing=False))
        if not ok(value):
            raise UserError(f"{key}={value!r}{_derived(cfg, key)} is not allowed: use {allowed}")


def _derived(cfg: DictConfig, key: str) -> str:
    """Where an interpolated value comes from (' = ${...}'), since the key to change is there."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig) or not OmegaConf.is_interpolation(node, name):
        return ""
    return f" (= {OmegaConf.to_container(node, resolve=False)[name]})"


def check_relations(cfg: DictConfig) -> None:
    """What one key's check cannot see: values that must fit together, and the hardware."""
    dataset = cfg.dataset
    if dataset.name in CLASSES and dataset.get("num_classes", CLASSES[dataset.name]) != CLASSES[
            dataset.name]:
        raise UserError(f"dataset.num_classes={dataset.num_classes} is not allowed: "
                        f"{dataset.name} has {CLASSES[dataset.name]} classes")
    if cfg.model.scale_invariant and cfg.model.norm == "none":
        raise UserError(f"model.scale_invariant={str(cfg.model.scale_invariant).lower()} needs a "
                        f"norm layer: model.norm=none has none")
    schedule = cfg.schedule
    base = schedule.get("base") if schedule.name == "equivalent" else schedule.name
    for key, needed in (("milestones", ("step", "texp", "instant_decay")), ("factor", (
            "step", "texp", "instant_decay")), ("final_ratio", ("cosine",)), ("base", ())):
        if (base in needed or (key == "base" and schedule.name == "equivalent")) and (
                key not in schedule):
            raise UserError(f"schedule={schedule.name} needs schedule.{key}")
    opt = cfg.optimizer
    if opt.name != "sgd" and (schedule.name == "instant_decay" or opt.get("projected")):
        what = "schedule=instant_decay" if schedule.name == "instant_decay" else "projected"
        raise UserError(f"{what} is SGD's (paper A's ablation, paper B's projection): use "
                        f"optimizer=sgd, not optimizer={opt.name}")
    if opt.name != "sgd" and schedule.name not in PLAIN and opt.lr * opt.weight_decay >= 1:
        raise UserError(f"schedule={schedule.name} with optimizer={opt.name}: optimizer.lr x "
                        f"optimizer.weight_decay = {opt.lr * opt.weight_decay:.6g} must be below "
                        f"1 for the twin to exist")
    if schedule.name in BASE_OF and opt.name == "sgd":  # SGD's exponential LR needs a real alpha
        try:
            alpha_star(opt.lr, opt.weight_decay, opt.momentum)
        except NoRealAlpha as e:
            raise UserError(
                f"schedule={schedule.name} with optimizer.lr={opt.lr}, optimizer.weight_decay="
                f"{opt.weight_decay}, optimizer.momentum={opt.momentum}: {e}"
            ) from None
    if cfg.get("task") == "twin_gap" and schedule.name not in ("exp", "texp", "equivalent"):
        raise UserError(f"task=twin_gap trains a twin beside its source: schedule={schedule.name} "
                        f"is no twin (use exp, texp or equivalent)")
    trainer = cfg.trainer
    if trainer.sync_batchnorm and not torch.cuda.is_available():
        raise UserError("trainer.sync_batchnorm=true needs CUDA devices: PyTorch's SyncBatchNorm "
                        "has no CPU kernels")
    if trainer.device == "cuda" and not torch.cuda.is_available():
        raise UserError("trainer.device=cuda but no CUDA device is available: use auto or cpu")
    if trainer.compile_mode != "default" and trainer.compile not in (True, "inductor"):
        raise UserError(f"trainer.compile_mode={trainer.compile_mode} is inductor's: it "
                        f"needs trainer.compile=true (or inductor), not {trainer.compile!r}")
