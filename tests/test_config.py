"""The config floor: every key that a config file brings has its check in the one table,
prepare(cfg) is the one step to a run's config and changes nothing when applied again, and
nothing below the floor imports it."""

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.config.checks import CHECKS, check_for, leaf_keys
from src.config.prepare import prepare
from src.config.resolvers import CONF, compose_config
from tests.conftest import EXPERIMENTS, ROOT

GROUPS = ("dataset", "model", "optimizer", "schedule", "trainer", "logger", "budget")


def every_config():
    """Each option of each group, each experiment, and the verifier's config."""
    for group in GROUPS:
        for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
            yield [f"{group}={option}"], "config"
    for experiment in EXPERIMENTS:
        yield [f"+experiment={experiment}"], "config"
    yield [], "verify"


def test_every_key_of_every_config_has_its_check():
    unchecked = set()
    for overrides, name in every_config():
        cfg = compose_config(overrides, config_name=name)
        unchecked |= {key for key in leaf_keys(cfg) if check_for(key) is None}
    assert not unchecked, f"keys without a check in src/config/checks.py: {sorted(unchecked)}"


def test_every_entry_of_the_table_is_used():
    """An entry no config file reaches is a leftover, except the keys a user adds (+key=...)
    and those the budget's mapping writes."""
    used = {check_for(key)[0] for overrides, name in every_config()
            for key in leaf_keys(compose_config(overrides, config_name=name))}
    added = {"model.kwargs.drop_rate", "model.kwargs.*", "budget.paper.*"}
    assert set(CHECKS) - used == added


@pytest.mark.parametrize("overrides", [["+experiment=exp_lr", "dataset=digits", "budget=mini"],
                                       ["+experiment=texp", "trainer=fast"],
                                       ["+experiment=toy_wd_bn"]])
def test_prepare_resolves_once_and_again_changes_nothing(overrides):
    cfg = prepare(compose_config(overrides))
    once = OmegaConf.to_container(cfg, resolve=True)
    assert cfg.trainer.device in ("cpu", "cuda") or cfg.task != "train"
    assert cfg.trainer.precision != "auto" or cfg.task != "train"
    assert OmegaConf.to_container(prepare(cfg), resolve=True) == once


def test_nothing_below_the_config_floor_imports_it():
    pattern = re.compile(r"from src\.(config|budget|resolvers|callbacks)|import src\.(config|"
                         r"budget)")
    below = ("engine", "tracking", "data", "models", "optim", "theory")
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in below
             for path in sorted((ROOT / "src" / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found


def test_no_module_level_state_records_what_a_run_applied():
    """What a build applied is computed from the prepared config (metadata.json's backends),
    never kept in a module's global."""
    source = (ROOT / "src" / "engine" / "build.py").read_text()
    assert not re.search(r"^[A-Z_]+: dict = \{\}", source, re.MULTILINE)
    assert Path(ROOT / "src" / "engine" / "backends.py").exists()
