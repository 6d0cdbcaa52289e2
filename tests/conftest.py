from pathlib import Path

import pytest
from PIL import Image

from src.resolvers import CONF, compose_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# Tiny, fast and offline: every composed config in the tests starts from these.
TINY = ["dataset=synthetic", "logger=none", "trainer.epochs=1", "trainer.batch_size=16",
        "trainer.device=cpu"]


@pytest.fixture
def tiny_cfg():
    """compose_config with the TINY overrides first; later overrides win."""
    return lambda *overrides: compose_config([*TINY, *overrides])


def write_image_folder(root: Path, classes=("a", "b"), per_class: int = 2) -> Path:
    """A tiny ImageNet in torchvision's ImageFolder layout: {train,val}/<class>/<i>.png."""
    for split in ("train", "val"):
        for k, label in enumerate(classes):
            (root / split / label).mkdir(parents=True)
            for i in range(per_class):
                image = Image.new("RGB", (40, 36), (60 * i, 90 * k, 200))
                image.save(root / split / label / f"{i}.png")
    return root
