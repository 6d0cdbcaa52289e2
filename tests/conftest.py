from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# Tiny, fast and offline: every composed config in the tests starts from these.
TINY = ["dataset=synthetic", "logger=none", "trainer.epochs=1", "trainer.batch_size=16",
        "trainer.device=cpu"]


def compose_config(overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def tiny_cfg():
    """compose_config with the TINY overrides first; later overrides win."""
    return lambda *overrides: compose_config([*TINY, *overrides])
