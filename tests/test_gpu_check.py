"""The GPU acceptance check runs on a CPU (--device cpu): every part that a CPU can run passes,
the JSON file says what was skipped, and a part that fails makes the command fail."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_check(tmp_path, *extra):
    out = tmp_path / "check.json"
    done = subprocess.run([str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu",
                           "--no-compile", "--bench-steps", "1", "--image-size", "8",
                           f"--out={out}",
                           f"--work={tmp_path / 'work'}", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHON": sys.executable})
    return done, json.loads(out.read_text()) if out.exists() else None


# The parts that start runs of their own. The bench is src.bench as tests/test_bench.py runs it
# (with the keys the report keeps); verify is src.verify as tests/test_verify.py runs it, whose
# result the check judges there (test_the_gpu_checks_verify_part_...): the suite runs each once.
PARTS = ["fast_run", "resume", "torchrun"]


@pytest.mark.slow
def test_gpu_check_on_cpu(tmp_path):
    done, report = run_check(tmp_path, "--parts", ",".join(PARTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["passed"] and report["device"] == "cpu" and report["skipped"]
    parts = report["parts"]
    assert list(parts) == PARTS
    assert all(p["status"] == "passed" for p in parts.values())
    assert parts["fast_run"]["renorm_scale_last"] != 1.0
    assert parts["resume"]["byte_identical"] and parts["resume"]["resumes"] >= 1
    assert 0 < parts["resume"]["killed_after_records"] < parts["resume"]["records"]
    assert parts["torchrun"]["nproc_1"]["status"] == "completed"
    assert any("SyncBatchNorm" in s for s in parts["torchrun"]["skipped"])


def test_gpu_check_reports_a_failed_part(tmp_path, monkeypatch, capsys):
    """A part whose check does not hold is written down as failed, with its message, the parts
    after it still run, and the command exits with 1 (in this process: the parts stubbed)."""
    from src.bench import gpu

    def fails(args, work):
        raise gpu.Failed("the overflow guard never triggered (si/renorm_scale stayed 1)")

    monkeypatch.setitem(gpu.PARTS, "fast_run", fails)
    monkeypatch.setitem(gpu.PARTS, "resume", lambda args, work: {"records": 3})
    out = tmp_path / "check.json"
    with pytest.raises(SystemExit) as stop:
        gpu.main(["--device", "cpu", "--parts", "fast_run,resume", f"--out={out}"])
    report = json.loads(out.read_text())
    assert stop.value.code == 1 and not report["passed"]
    assert report["parts"]["fast_run"]["status"] == "failed"
    assert "never triggered" in report["parts"]["fast_run"]["error"]
    assert report["parts"]["resume"] == {"status": "passed", "records": 3,
                                         "seconds": report["parts"]["resume"]["seconds"]}
    assert "FAILED" in capsys.readouterr().out


def test_gpu_check_bad_input(capsys):
    """In this process: argparse's one message and exit status 2 (an exception would raise)."""
    from src.bench import gpu

    with pytest.raises(SystemExit) as stop:
        gpu.main(["--device", "cpu", "--parts", "nothing"])
    assert stop.value.code == 2 and "--parts" in capsys.readouterr().err
