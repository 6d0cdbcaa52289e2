"""Every run's own records, with or without W&B: metrics.jsonl and summary.json.

metrics.jsonl has one JSON object a line, each with `step` and `epoch`; it is flushed line by
line so a killed run keeps everything up to its last record. Figures and tests read these files;
W&B only mirrors them.
"""

import json
from pathlib import Path

from src.errors import UserError
from src.tracking.run_format import METRICS, SUMMARY, jsonable


def _check_size(path: Path, keep_bytes: int) -> None:
    if path.stat().st_size < keep_bytes:  # truncate() would pad it with zeros
        raise UserError(f"{path} is shorter than its checkpoint says ({keep_bytes} bytes): "
                        f"it was changed; restore it, or start the run over")


def kept_records(run_dir: Path, keep_bytes: int) -> list[dict]:
    """The records a resumed run keeps: the first keep_bytes of metrics.jsonl (its new W&B
    run gets them again, see wandb_sink.start_wandb)."""
    path = Path(run_dir) / METRICS
    if not keep_bytes:
        return []
    _check_size(path, keep_bytes)
    with open(path, "rb") as f:
        return [json.loads(line) for line in f.read(keep_bytes).splitlines()]


class Recorder:
    def __init__(self, run_dir: Path, sinks=(), keep_bytes: int = 0):
        """keep_bytes: how much of an existing metrics.jsonl to keep (a checkpoint's offset);
        records written after it, by a launch that was killed, are dropped."""
        self.run_dir = Path(run_dir)
        path = self.run_dir / METRICS
        path.touch()
        _check_size(path, keep_bytes)
        # Open for the whole run, unbuffered: a line is in the file once logged.
        self.metrics = open(path, "r+b", buffering=0)  # noqa: SIM115 -- closed in finish()
        self.metrics.truncate(keep_bytes)
        self.metrics.seek(keep_bytes)
        self.sinks = list(sinks)  # objects with .log(record) and .finish(summary)

    def offset(self) -> int:
        """The size of metrics.jsonl so far."""
        return self.metrics.tell()

    def log(self, record: dict) -> None:
        record = {k: jsonable(v) for k, v in record.items()}
        self.metrics.write((json.dumps(record) + "\n").encode())
        for sink in self.sinks:
            sink.log(record)

    def finish(self, summary: dict) -> None:
        summary = {k: jsonable(v) for k, v in summary.items()}
        path = self.run_dir / SUMMARY
        tmp = path.with_name(SUMMARY + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(path)
        self.metrics.close()
        for sink in self.sinks:
            sink.finish(summary)


class NullRecorder:
    """The records of processes other than rank 0 under DDP: rank 0 writes them all."""

    def log(self, record: dict) -> None:
        pass

    def offset(self) -> int:
        return 0

    def finish(self, summary: dict) -> None:
        pass
