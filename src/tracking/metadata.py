"""Where a run came from: code version, exact environment, hardware and command line.

Written to the run folder as metadata.json and added to the W&B config, so a result can be
traced back to the commit, the lockfile and the machine that produced it.
"""

import hashlib
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata as packages
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "torchvision", "timm", "hydra-core", "omegaconf", "wandb", "numpy")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_metadata(backends: dict | None = None) -> dict:
    """backends: what the run computes with (src/engine/backends.py: backends_record)."""
    commit = _git("rev-parse", "HEAD")
    lockfile = ROOT / "uv.lock"
    cuda = torch.cuda.is_available()
    return {
        "git_commit": commit,
        "git_dirty": bool(_git("status", "--porcelain")) if commit else None,
        "lockfile_sha256": hashlib.sha256(lockfile.read_bytes()).hexdigest()
        if lockfile.exists() else None,
        "command": shlex.join(sys.orig_argv),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "packages": {name: packages.version(name) for name in PACKAGES},
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "backends": backends,
    }
