"""metadata.json: every run says which code, environment and machine produced it."""

import hashlib
import json
import shlex
import subprocess
import sys

import torch

from tests.conftest import ROOT
from tests.helpers.runs import train


def test_metadata_is_written_and_mirrored_to_wandb(tiny_cfg, tmp_path, monkeypatch):
    import wandb

    seen = {}

    def init(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("offline test: stop here")

    monkeypatch.setattr(wandb, "init", init)
    train(tiny_cfg("logger=wandb", "trainer.max_steps=1"), tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout, as in development and CI
        assert meta["git_commit"] == head.stdout.strip()
        assert isinstance(meta["git_dirty"], bool)
    lock = (ROOT / "uv.lock").read_bytes()
    assert meta["lockfile_sha256"] == hashlib.sha256(lock).hexdigest()
    assert meta["packages"]["torch"] == torch.__version__.split("+")[0]
    assert meta["cuda"] == torch.version.cuda and meta["cpu"] and meta["host"]
    assert meta["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    assert meta["command"] == shlex.join(sys.orig_argv)  # this process's, xdist worker or not
    assert seen["config"]["metadata"] == meta
