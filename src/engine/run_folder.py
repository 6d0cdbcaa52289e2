"""A run folder's life across launches: start, resume from a checkpoint, or skip when done.

A run folder holds one run (its files: src/tracking/run_format.py). Launching the same config
into it again resumes or skips; a different config is refused, so no record is ever
overwritten by a mistyped command.
"""

import errno
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock, SoftFileLock, Timeout
from omegaconf import OmegaConf

from src.errors import UserError
from src.tracking.run_format import (
    ADDED_KEYS,
    CHECKPOINT_FORMAT,
    CHECKPOINTS,
    CONFIG,
    FINAL,
    METRICS,
    SUMMARY,
    identity,
    read_summary,
)

log = logging.getLogger(__name__)


def _flatten(tree, prefix="") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def differences(saved: dict, current: dict) -> list[str]:
    """The keys whose values differ between a saved config's identity and this launch's; a
    key added since the save counts at the value runs had before it (ADDED_KEYS)."""
    a, b = _flatten(saved), _flatten(current)
    for key, value in ADDED_KEYS.items():
        if f"{key}." in b:
            a.setdefault(f"{key}.", value)
    return [f"{key.rstrip('.')}={a.get(key)!r} there, {b.get(key)!r} now"
            for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)]


def write_synced(path: Path, write) -> None:
    """write(file) into `path` and wait until it is on disk."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, write) -> None:
    """A reader sees the old file or the new one, never a part of one."""
    tmp = path.with_name(path.name + ".tmp")
    write_synced(tmp, write)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"trainer.resume={path}: no such checkpoint file (use auto, never or "
                        f"the path of a checkpoint)") from None
    except Exception as e:  # noqa: BLE001 -- truncated, not a checkpoint, unreadable
        raise CorruptCheckpoint(f"{path} is not a readable checkpoint ({type(e).__name__})"
                                ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CorruptCheckpoint(f"{path} is not a checkpoint of this program (format "
                                f"{CHECKPOINT_FORMAT})")
    return state


class CorruptCheckpoint(UserError):
    pass


@dataclass
class Start:
    """How a launch begins: `state` is the checkpoint to resume from (None: from scratch), read
    from `path`; `summary` is set when the run is already done."""
    state: dict | None = None
    summary: dict | None = None
    path: Path | None = None


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.checkpoints = self.path / CHECKPOINTS
        self._lock = None
        self.config = None  # the run's identity, set by start()

    def lock(self) -> None:
        """Refuse a second process in this folder (a grid launched twice, say). flock where
        the file system has it; where it has not (Lustre without -o flock, some NFS), a lock
        file naming its process, which a later launch breaks once that process is gone."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path / ".lock", timeout=0)  # flock's ENOSYS: filelock falls back
        try:
            try:
                lock.acquire()
            except OSError as e:
                if isinstance(e, Timeout) or e.errno not in (errno.EOPNOTSUPP, errno.ENOLCK):
                    raise
                log.warning("no flock in %s (%s): a lock file instead", self.path, e.strerror)
                lock = SoftFileLock(self.path / ".lock.soft", timeout=0)
                lock.acquire()
        except Timeout as e:
            raise UserError(f"run folder {self.path} is in use by another process; wait for it, "
                            f"or choose another folder (hydra.run.dir=...); if no process runs "
                            f"there, remove {e.lock_file}") from None
        self._lock = lock

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def holds_records(self) -> bool:
        """True once the folder holds anything worth keeping: records, a checkpoint, a result."""
        metrics = self.path / METRICS
        summary = self.summary() or {}
        return (any(self.checkpoints.glob("*.pt")) or summary.get("status") in FINAL
                or (metrics.exists() and metrics.stat().st_size > 0))

    def start(self, cfg, resume: str) -> Start:
        """Decide how this launch begins. Raises UserError for a folder that holds records of
        a different config, or any when trainer.resume=never. Writes nothing, except the
        records a checkpoint of another folder brings along (trainer.resume=PATH)."""
        self.config = config = identity(cfg)
        saved_config = self.path / CONFIG
        if self.holds_records():
            if not saved_config.exists():
                raise UserError(f"run folder {self.path} holds records but no config.yaml (an "
                                f"older version's run?): choose another folder")
            diff = differences(identity(OmegaConf.load(saved_config)), config)
            if diff:
                raise UserError(
                    f"run folder {self.path} holds a run of another config ({'; '.join(diff)}); "
                    f"launch the same config to resume it, or choose another folder "
                    f"(hydra.run.dir=... or hydra.sweep.dir=...)")
            if resume == "never":
                raise UserError(f"trainer.resume=never, but run folder {self.path} already holds "
                                f"a run; choose another folder, or trainer.resume=auto")
        if resume not in ("auto", "never"):
            return Start(state=self._from_path(Path(resume), config), path=Path(resume))
        summary = self.summary()
        if summary and summary.get("status") in FINAL:
            return Start(summary=summary)
        if resume == "never":
            return Start()
        state, path = self.latest_checkpoint()
        return Start(state=state, path=path)

    def _from_path(self, path: Path, config: dict) -> dict:
        """A checkpoint named by trainer.resume; one of another folder starts a new folder with
        a copy of that run's records up to the checkpoint."""
        state = load_checkpoint(path)
        diff = differences(state["config"], config)
        if diff:
            raise UserError(f"trainer.resume={path} is a checkpoint of another config "
                            f"({'; '.join(diff)})")
        source = path.resolve().parent.parent  # <run folder>/checkpoints/<file>
        if source != self.path.resolve():
            if self.holds_records():
                raise UserError(f"trainer.resume={path} belongs to another run folder, and "
                                f"{self.path} holds records already: resume into a new folder")
            metrics = source / METRICS
            records = metrics.read_bytes()[:state["records_offset"]] if metrics.exists() else b""
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path / METRICS, lambda f: f.write(records))
            state["records_offset"] = len(records)
        return state

    def write_config(self, cfg) -> None:
        """config.yaml: the run's full config, as it starts."""
        atomic_write(self.path / CONFIG,
                     lambda f: f.write(OmegaConf.to_yaml(cfg, resolve=True).encode()))

    def record_failure(self, error: str) -> None:
        """A summary for a job that failed before it started, unless that would hide records."""
        if not self.holds_records():
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path / SUMMARY, lambda f: f.write(
                (json.dumps({"status": "failed", "error": error}, indent=2) + "\n").encode()))

    def summary(self) -> dict | None:
        return read_summary(self.path)

    def latest_checkpoint(self) -> tuple[dict | None, Path | None]:
        """The newest readable checkpoint and its path; a corrupt last.pt falls back to
        previous.pt."""
        paths = [p for p in (self.checkpoints / "last.pt", self.checkpoints / "previous.pt")
                 if p.exists()]
        errors = []
        for path in paths:
            try:
                return load_checkpoint(path), path
            except CorruptCheckpoint as e:
                errors.append(str(e))
        if errors:
            raise CorruptCheckpoint(f"{'; '.join(errors)}: move the checkpoints away to start "
                                    f"this run over, or choose another folder")
        return None, None

    def save_checkpoint(self, state: dict) -> None:
        """Atomically: the new one becomes last.pt, the one before it previous.pt."""
        self.checkpoints.mkdir(exist_ok=True)
        last = self.checkpoints / "last.pt"
        tmp = last.with_name("last.pt.tmp")
        write_synced(tmp, lambda f: torch.save({"format": CHECKPOINT_FORMAT, **state}, f))
        if last.exists():
            last.replace(self.checkpoints / "previous.pt")
        tmp.replace(last)
        dir_fd = os.open(self.checkpoints, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the renames durable too
        finally:
            os.close(dir_fd)
