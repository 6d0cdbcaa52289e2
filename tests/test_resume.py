"""Runs that survive: SIGKILL and relaunch, SIGTERM preemption, signals passed on to submitit,
divergence, idempotent grids. Bit-identical means byte-identical metrics.jsonl."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from src.config.resolvers import compose_config
from src.data.loaders import TensorLoader
from src.engine.preemption import Preempted
from src.engine.run_folder import RunFolder
from src.errors import UserError
from tests.conftest import ROOT, TINY, tiny
from tests.helpers.runs import train

# fp64 on digits: 3 updates an epoch (+ 1 evaluation record), 12 in all, a record per update.
RUN = ["dataset=digits", "dataset.train_subset=96", "model=preresnet20", "trainer.precision=fp64",
       "trainer.batch_size=32", "trainer.epochs=4", "trainer.log_every_n_steps=1",
       "trainer.device=cpu", "logger=none"]


def launch(run_dir, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "src.train", *RUN, *extra,
                             f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def records(run_dir) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def stop_after(process, run_dir, lines: int, sig) -> None:
    """Send `sig` once the run has written `lines` records; the run must still be going."""
    while records(run_dir) < lines:
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.005)
    process.send_signal(sig)
    process.wait(timeout=300)


def finish(run_dir, *extra, env=None) -> None:
    process = launch(run_dir, *extra, env=env)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]


def summary_of(run_dir) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("wall_time_s")
    return summary


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference")
    finish(run_dir)
    assert records(run_dir) == 16
    return run_dir


def test_sigkill_anywhere_then_relaunch_is_bit_identical(reference, tmp_path):
    # Killed mid-epoch 0 (no checkpoint yet: starts over); mid-epoch 1 with a checkpoint every
    # 2 updates (resumes mid-epoch); mid-epoch 3 (resumes from the end of epoch 2); then
    # relaunched to the end. Checkpoint intervals do not change the run: they may differ.
    stop_after(launch(tmp_path), tmp_path, 2, signal.SIGKILL)
    stop_after(launch(tmp_path, "trainer.checkpoint_every_n_steps=2"), tmp_path, 7,
               signal.SIGKILL)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt")
    assert checkpoint["batch"] != 0 and checkpoint["epoch"] == 1  # mid-epoch
    stop_after(launch(tmp_path), tmp_path, 14, signal.SIGKILL)
    finish(tmp_path)
    assert (tmp_path / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert summary_of(tmp_path) == summary_of(reference)
    assert len((tmp_path / "resumes.jsonl").read_text().splitlines()) == 2


def test_sigterm_checkpoints_and_exits_cleanly_then_continues(reference, tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    process = launch(tmp_path, "logger=wandb", env=env)
    stop_after(process, tmp_path, 6, signal.SIGTERM)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in process.stderr.read()
    summary = json.loads((tmp_path / "summary.json").read_text())
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt")
    assert summary["status"] == "preempted" and "SIGTERM" in summary["error"]
    assert checkpoint["step"] > 4  # taken at the signal, not at the end of epoch 0

    finish(tmp_path, "logger=wandb", env=env)
    assert (tmp_path / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert summary_of(tmp_path) == summary_of(reference)
    # The resumed launch wrote a new W&B run (see tests/test_wandb_resume.py).
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and runs[0].name.split("-")[-1] != runs[1].name.split("-")[-1]


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_signal_is_passed_on_to_the_previous_handler(sig, tiny_cfg, tmp_path, monkeypatch):
    """Under submitit the handler before ours requeues the job: it must get the signal, after
    our checkpoint."""
    received = []
    epoch = TensorLoader.epoch

    def signalling_epoch(self, *args, **kwargs):
        for i, batch in enumerate(epoch(self, *args, **kwargs)):
            if i == 1 and self.train:
                os.kill(os.getpid(), sig)
            yield batch

    monkeypatch.setattr(TensorLoader, "epoch", signalling_epoch)
    previous = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        with pytest.raises(Preempted) as stop:
            train(tiny_cfg("trainer.epochs=3"), tmp_path)
        assert received == []  # our handler held it until the step was done
        stop.value.pass_on()
        assert received == [sig]
    finally:
        signal.signal(sig, previous)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt")
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["step"]) == (0, 2, 2)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "preempted"


def test_resume_from_a_path_starts_a_new_folder_with_the_records_so_far(tiny_cfg, tmp_path,
                                                                       caplog):
    cfg = tiny_cfg("trainer.epochs=3", "trainer.log_every_n_steps=3")
    train(cfg, tmp_path / "a")
    middle = tmp_path / "a" / "checkpoints" / "previous.pt"  # the end of epoch 2 of 3
    assert torch.load(middle)["epoch"] == 2
    resumed = compose_config([*TINY, "trainer.epochs=3", "trainer.log_every_n_steps=3",
                              f"trainer.resume={middle}"])
    train(resumed, tmp_path / "b")
    a, b = ((tmp_path / x / "metrics.jsonl").read_bytes() for x in "ab")
    assert a == b
    assert summary_of(tmp_path / "a") == summary_of(tmp_path / "b")
    caplog.set_level("INFO")
    assert train(cfg, tmp_path / "b")["status"] == "completed"  # b is a run folder of its own
    assert "nothing to do" in caplog.text


def test_divergence_is_data_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.epochs=3", "model.scale_invariant=false", "optimizer.lr=1e30",
                   "optimizer.rest_lr=1e30",
                   "trainer.renormalize_above=null", "trainer.log_every_n_steps=100")
    summary = train(cfg, tmp_path)
    assert summary["status"] == "diverged", summary
    assert "NaN or infinite" in summary["error"]
    assert summary["diverged_at_step"] <= summary["steps"]
    checkpoints = list((tmp_path / "checkpoints").glob("*.pt"))
    for path in checkpoints:  # none was written after the divergence
        weights = torch.load(path)["model"].values()
        assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())
    assert train(cfg, tmp_path) == summary  # a diverged run is done: relaunching skips it


def test_grid_relaunch_skips_done_jobs_and_lists_failed_ones(tmp_path):
    def grid(*logger):
        run = [o for o in tiny("trainer.max_steps=2", "optimizer.lr=0.1,-1",
                               f"hydra.sweep.dir={tmp_path}") if o != "logger=none"]
        return subprocess.run([sys.executable, "-m", "src.train", "-m", *logger, *run],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)

    first = grid("logger=none")
    assert first.returncode == 1
    assert "1 completed, 1 failed" in first.stderr
    assert "optimizer.lr=-1" in first.stderr and "a number > 0" in first.stderr
    assert "Traceback" not in first.stderr
    # The logger changes no number: it is not in the job folder's name (run_format.NOT_IDENTITY)
    (done,) = tmp_path.glob("*optimizer.lr=0.1,*")
    before = {p.name: p.stat().st_mtime_ns for p in done.iterdir() if p.is_file()}

    # with the default logger, and a key under it: the same jobs, the same folders
    second = grid("logger.mode=disabled")
    assert second.returncode == 1 and "1 completed, 1 failed" in second.stderr
    assert "nothing to do" in (done / "train.log").read_text()
    after = {p.name: p.stat().st_mtime_ns for p in done.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "train.log"} == {
        k: v for k, v in before.items() if k != "train.log"}


@pytest.mark.parametrize("no_flock", [None, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_second_process_in_a_run_folder_is_refused(no_flock, tmp_path, monkeypatch):
    """flock where the file system has it; where it answers ENOSYS or EOPNOTSUPP (Lustre
    without flock, some NFS), a lock file that names its process."""
    if no_flock:
        def flock(fd, operation):
            raise OSError(no_flock, os.strerror(no_flock))
        monkeypatch.setattr(fcntl, "flock", flock)
    first, second = RunFolder(tmp_path), RunFolder(tmp_path)
    first.lock()
    with pytest.raises(UserError, match="in use by another process"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()
    if no_flock == errno.EOPNOTSUPP:  # a lock file left by a killed process is broken
        code = (f"import os, filelock; lock = filelock.SoftFileLock({str(tmp_path)!r} + "
                f"'/.lock.soft'); lock.acquire(); os._exit(9)")
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
        assert (tmp_path / ".lock.soft").exists()
        first.lock()
        first.unlock()
