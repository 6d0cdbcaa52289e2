"""Runs as `python -m src.train` makes them, in this process."""

from src.config.prepare import prepare
from src.engine.run import train as train_prepared


def train(cfg, run_dir):
    """The config prepared (checked, mapped, resolved), then trained in run_dir."""
    return train_prepared(prepare(cfg), run_dir)
