"""Figure grids' job folders written by hand: a figure experiment's real config, with the
records and summary a test gives."""

import functools
import json

from omegaconf import OmegaConf

from src.config.resolvers import compose_config


@functools.cache
def config_yaml(name: str, overrides: tuple) -> str:
    # The group is set here: outside a Hydra launch there are no overrides to name it by.
    cfg = compose_config([f"+experiment={name}", f"logger.group={name}/paper", *overrides])
    return OmegaConf.to_yaml(cfg, resolve=True)


def write_job(folder, name: str, overrides, records, summary):
    """A job folder written by hand: config.yaml, metrics.jsonl and summary.json."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config_yaml(name, tuple(overrides)))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder
