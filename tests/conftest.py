from pathlib import Path

import pytest

from src.config import CONF, compose_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# Tiny, fast and offline: every composed config in the tests starts from these.
TINY = ["dataset=synthetic", "logger=none", "trainer.epochs=1", "trainer.batch_size=16",
        "trainer.device=cpu"]


@pytest.fixture
def tiny_cfg():
    """compose_config with the TINY overrides first; later overrides win."""
    return lambda *overrides: compose_config([*TINY, *overrides])
