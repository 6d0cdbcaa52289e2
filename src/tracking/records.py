"""Every run's own records, with or without W&B: metrics.jsonl and summary.json.

metrics.jsonl has one JSON object a line, each with `step` and `epoch`; it is flushed line by
line so a killed run keeps everything up to its last record. Figures and tests read these files;
W&B only mirrors them.
"""

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them readable instead of invalid
    return value


class Recorder:
    def __init__(self, run_dir: Path, sinks=()):
        self.run_dir = Path(run_dir)
        # Open for the whole run, line-buffered; closed in finish().
        self.metrics = open(self.run_dir / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        self.sinks = list(sinks)  # objects with .log(record) and .finish(summary)

    def log(self, record: dict) -> None:
        record = {k: _jsonable(v) for k, v in record.items()}
        self.metrics.write(json.dumps(record) + "\n")
        for sink in self.sinks:
            sink.log(record)

    def finish(self, summary: dict) -> None:
        summary = {k: _jsonable(v) for k, v in summary.items()}
        tmp = self.run_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(self.run_dir / "summary.json")
        self.metrics.close()
        for sink in self.sinks:
            sink.finish(summary)


def read_metrics(run_dir) -> list[dict]:
    with open(Path(run_dir) / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
