import os
from pathlib import Path

# A pytest-xdist worker (pyproject's -n auto: one a core) computes on one thread, and so do the
# processes its tests start: two threads a worker would oversubscribe the cores. Set before
# torch is imported, which reads it once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import pytest
from PIL import Image

from src.config.resolvers import CONF, compose_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# Tiny, fast and offline: every composed config in the tests starts from these. 8x8 images
# (the digits' size; the PreResNets' stages run at 8, 4 and 2) make an update about 10x
# cheaper than CIFAR's 32x32; a test about resolution sets dataset.image_size itself.
TINY = ["dataset=synthetic", "dataset.image_size=8", "dataset.crop_padding=1", "logger=none",
        "trainer.epochs=1", "trainer.batch_size=16", "trainer.device=cpu"]


def tiny(*overrides: str) -> list[str]:
    """TINY, then the overrides (later ones win); another dataset keeps its own image keys."""
    other = any(o.startswith("dataset=") for o in overrides)
    return [*(o for o in TINY if not (other and o.startswith("dataset."))), *overrides]


@pytest.fixture
def tiny_cfg():
    """compose_config of tiny(overrides)."""
    return lambda *overrides: compose_config(tiny(*overrides))


def write_image_folder(root: Path, classes=("a", "b"), per_class: int = 2) -> Path:
    """A tiny ImageNet in torchvision's ImageFolder layout: {train,val}/<class>/<i>.png."""
    for split in ("train", "val"):
        for k, label in enumerate(classes):
            (root / split / label).mkdir(parents=True)
            for i in range(per_class):
                image = Image.new("RGB", (40, 36), (60 * i, 90 * k, 200))
                image.save(root / split / label / f"{i}.png")
    return root
