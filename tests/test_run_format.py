"""The run folder's format is one module's: Hydra's job folder names leave out exactly the keys
that do not change a run's numbers, and every reader reads the same files."""

import pytest
from omegaconf import OmegaConf

from src.config.resolvers import compose_config
from src.errors import UserError
from src.tracking.run_format import ADDED_KEYS, FINAL, NOT_IDENTITY, job_folders, read_run
from tests.helpers.runs import train


def test_hydra_folder_names_exclude_the_identity_neutral_keys():
    """Hydra's exclude_keys match whole keys: the list holds each identity-neutral override's
    own key, `logger.mode` as well as `logger`."""
    values = {"logger": "wandb", "trainer.resume": "never", "trainer.device": "cpu",
              "trainer.checkpoint_every_n_epochs": 2, "trainer.checkpoint_every_n_steps": 5}
    assert set(values) == set(NOT_IDENTITY)
    overrides = ["seed=1", *(f"{k}={v}" for k, v in values.items()), "logger.mode=disabled",
                 "+logger.notes=x"]
    cfg = compose_config(overrides, hydra=True)
    assert list(cfg.hydra.job.config.override_dirname.exclude_keys) == [
        *values, "logger.mode", "logger.notes"]


def test_a_finished_run_reads_back_as_written(tiny_cfg, tmp_path):
    summary = train(tiny_cfg("trainer.max_steps=2", "trainer.log_every_n_steps=1"),
                    tmp_path / "job")
    [folder] = job_folders(tmp_path)
    run = read_run(folder)
    assert run.done and run.status == summary["status"] in FINAL
    assert run.summary == summary
    assert [r["step"] for r in run.records] == [0, 1, 2]  # two updates, then the evaluation
    assert run.config.trainer.max_steps == 2


def test_a_folder_from_before_a_key_was_added_is_the_same_run_at_its_old_value(tiny_cfg,
                                                                             tmp_path):
    defaults = compose_config([])
    for key, value in ADDED_KEYS.items():
        assert OmegaConf.select(defaults, key) == value, key
    cfg = tiny_cfg("trainer.max_steps=2")
    summary = train(cfg, tmp_path)
    saved = OmegaConf.load(tmp_path / "config.yaml")
    for key in ADDED_KEYS:  # as an older version wrote it
        *parents, leaf = key.split(".")
        OmegaConf.select(saved, ".".join(parents)).pop(leaf)
    OmegaConf.save(saved, tmp_path / "config.yaml")
    assert train(cfg, tmp_path) == summary  # done: skipped, not refused
    with pytest.raises(UserError, match=r"trainer.eval_every_n_epochs=1 there, 2 now"):
        train(tiny_cfg("trainer.max_steps=2", "trainer.eval_every_n_epochs=2"), tmp_path)
