"""The run folder's format is one module's: Hydra's job folder names leave out exactly the keys
that do not change a run's numbers, and every reader reads the same files."""

from src.engine.run import train
from src.resolvers import compose_config
from src.tracking.run_format import FINAL, NOT_IDENTITY, job_folders, read_run


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
