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


# Every part but the bench, which is src.bench as tests/test_bench.py runs it (with the keys
# the report keeps): the suite runs it once.
PARTS = ["verify", "fast_run", "resume", "torchrun"]


@pytest.mark.slow
def test_gpu_check_on_cpu(tmp_path):
    done, report = run_check(tmp_path, "--parts", ",".join(PARTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["passed"] and report["device"] == "cpu" and report["skipped"]
    parts = report["parts"]
    assert list(parts) == PARTS
    assert all(p["status"] == "passed" for p in parts.values())
    for twin in parts["verify"]["corrected"].values():
        assert twin["max_rel_param_dev"] <= 1e-9 and twin["max_abs_output_dev"] <= 1e-9
    assert parts["fast_run"]["renorm_scale_last"] != 1.0
    assert parts["resume"]["byte_identical"] and parts["resume"]["resumes"] >= 1
    assert 0 < parts["resume"]["killed_after_records"] < parts["resume"]["records"]
    assert parts["torchrun"]["nproc_1"]["status"] == "completed"
    assert any("SyncBatchNorm" in s for s in parts["torchrun"]["skipped"])


def test_gpu_check_reports_a_failed_part(tmp_path):
    """A fast run whose guard cannot trigger (an epoch too few images to log a record
    after it) fails the part, and with it the command."""
    done, report = run_check(tmp_path, "--parts", "fast_run", "--images", "128")
    assert done.returncode == 1
    assert report["parts"]["fast_run"]["status"] == "failed" and not report["passed"]
    assert "Traceback" not in done.stderr


def test_gpu_check_bad_input(tmp_path):
    done, _ = run_check(tmp_path, "--parts", "nothing")
    assert done.returncode == 2 and "--parts" in done.stderr and "Traceback" not in done.stderr
