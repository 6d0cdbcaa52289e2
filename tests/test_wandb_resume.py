"""A resumed run's W&B run holds what metrics.jsonl holds, read back from the offline
.wandb files.

wandb 0.31 has no reader of its .wandb files in Python, so `wandb_records` below reads the
framing itself and parses each record with wandb's own protobuf class.
"""

import json
import os
import signal
import struct
import zlib

from wandb.proto.wandb_internal_pb2 import Record

from tests.test_resume import finish, launch, stop_after

BLOCK = 32 * 1024


def wandb_records(path) -> list:
    """The Records of a .wandb file. Its framing (wandb-core's leveldb package): a 7-byte
    header (b":W&B", uint16 0xBEE1, version byte 0), then LevelDB log chunks in 32 KiB blocks:
    CRC-32 of type + payload (uint32), payload length (uint16), type (1 full, 2 first,
    3 middle, 4 last), payload. A block's tail too short for a chunk header is zeros."""
    data = path.read_bytes()
    assert data[:7] == b":W&B" + struct.pack("<HB", 0xBEE1, 0), data[:7]
    records, payload, pos = [], b"", 7
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or kind == 0:  # the rest of the block is padding
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"bad chunk at byte {pos} of {path}"
        payload, pos = payload + chunk, pos + 7 + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(payload)
            records.append(record)
            payload = b""
    return records


def launch_of(run_folder):
    """(run record or None, {step: row}) of one launch's offline W&B run; a row without W&B's
    own `_` keys, as metrics.jsonl would hold it."""
    (path,) = run_folder.glob("*.wandb")
    records = wandb_records(path)
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    rows = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                   for i in r.history.item}
            rows[row.pop("_step")] = {k: v for k, v in row.items() if not k.startswith("_")}
    return (runs[0] if runs else None), rows


def metrics_rows(run_dir) -> dict:
    """metrics.jsonl as W&B holds it: the records of a step merged into one row."""
    rows = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        rows.setdefault(record.pop("step"), {}).update(record)
    return rows


def test_killed_then_resumed_run_goes_to_a_wandb_run_that_matches_the_records(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    # Killed mid-epoch 1, 3 records after the checkpoint of epoch 0 (long before the next).
    stop_after(launch(tmp_path, "logger=wandb", env=env), tmp_path, 7, signal.SIGKILL)
    finish(tmp_path, "logger=wandb", env=env)
    first, resumed = sorted((tmp_path / "wandb").glob("offline-run-*"))
    killed_id = first.name.split("-")[-1]  # its .wandb file may hold no run record at all
    run, rows = launch_of(resumed)
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert run.run_id != killed_id and "resumed" in run.tags
    assert config["resumed_from"] == {"run_id": killed_id, "step": 3}
    assert run.display_name == f"{killed_id}-resumed-3"
    assert rows == metrics_rows(tmp_path) and len(rows) == 13  # 12 updates and the final row
