"""What Hydra needs before it composes: the config folder, its resolvers and the folder names
of grids. No torch, timm or torchvision here, so `python -m src.train --help` starts fast."""

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.tracking.run_format import NOT_IDENTITY

CONF = Path(__file__).resolve().parents[2] / "conf"

# Keys that name nothing a grid computes: left out of a figure grid's folder names.
NOT_IN_FOLDER_NAMES = ("experiment", "name", *NOT_IDENTITY)


def _as_in_a_job(override: str) -> tuple[str, str]:
    """(key, the override as Hydra writes it among a job's overrides): the command line's
    `x=1e-2` is `x=0.01` there, and both must give the same folder name."""
    parsed = OverridesParser.create().parse_override(override)
    if parsed.is_sweep_override() or parsed.value() is None:
        return parsed.key_or_group, override
    return parsed.key_or_group, f"{parsed.get_key_element()}={parsed.get_value_element_as_str()}"


def _under(key: str, keys) -> bool:
    return any(key == k or key.startswith(k + ".") for k in keys)


def grid_folder_names(overrides, swept, part: str) -> str:
    """A figure grid's folder names, from a job's (or the launch's) overrides.

    part="launch": the overrides of the command line that the grid does not sweep (e.g.
    `dataset=digits,trainer.epochs=6`, or `paper` for none), so that small-budget launches and
    the paper's own do not mix; part="job": the swept values alone (e.g. `schedule=step,seed=0`).
    """
    swept = set(swept or ())
    chosen = sorted(o for key, o in map(_as_in_a_job, overrides or ())
                    if not _under(key, NOT_IN_FOLDER_NAMES) and (key in swept) == (part == "job"))
    return ",".join(chosen) or ("paper" if part == "launch" else "default")


def not_identity_keys(overrides) -> list[str]:
    """The keys among `overrides` that do not change a run's numbers (`logger.mode` as well as
    `logger`): Hydra's exclude_keys match whole keys only."""
    return [key for key, _ in map(_as_in_a_job, overrides or ()) if _under(key, NOT_IDENTITY)]


def experiments(grids: bool) -> str:
    """A line for each experiment (grids=False) or figure grid (True): its name and the first
    sentence of its file's header comment (the help page)."""
    lines = []
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        if path.stem.startswith("fig_") != grids:
            continue
        comment = " ".join(line.lstrip("# ").strip() for line in path.read_text().splitlines()
                           if line.startswith("#") and "@package" not in line)
        first = re.split(r"(?<=[a-z0-9)])\. ", comment, maxsplit=1)[0].rstrip(".")
        if len(first) > 70:
            first = first[:67].rsplit(" ", 1)[0] + " ..."
        lines.append(f"  {path.stem:<25} {first}")
    return "\n".join(lines)


def options(*groups: str) -> str:
    """`  group: option | option ...`, a line for each config group named (the help page)."""
    return "\n".join(f"  {g:<10}" + " | ".join(sorted(p.stem for p in (CONF / g).glob("*.yaml")))
                     for g in groups)


OmegaConf.register_new_resolver("grid_folder", grid_folder_names, replace=True)
# Hydra's job folder names leave out the keys that do not change a run's numbers.
OmegaConf.register_new_resolver("not_identity", not_identity_keys, replace=True)
# ${ratio:a,b} = a / b, e.g. the step factor that takes a swept LR to a common one.
OmegaConf.register_new_resolver("ratio", lambda a, b: a / b, replace=True)
# the help page (conf/config.yaml, hydra.help)
OmegaConf.register_new_resolver("experiments", experiments, replace=True)
OmegaConf.register_new_resolver("options", options, replace=True)


def compose_config(overrides=(), config_name: str = "config", hydra: bool = False
                   ) -> DictConfig:
    """The config `python -m src.train OVERRIDES` would run, composed from Python; with
    hydra=True also Hydra's own (cfg.hydra: launcher, sweeper, job)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=hydra)
