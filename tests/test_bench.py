"""python -m src.bench runs end to end and its JSON line holds every number (no speed checks)."""

import json
import math
import subprocess
import sys

from tests.conftest import ROOT

NUMBERS = ["overhead_ratio", "loader_speedup", "bare_ms_per_step", "fit_ms_per_step",
           "fast_ms_per_step", "tensor_loader_images_per_s", "torchvision_images_per_s",
           "fp32_images_per_s", "fast_images_per_s", "fp32_epoch_s", "fast_epoch_s",
           "fast_speedup", "fit_8px_ms_per_step", "resolution_speedup", "threads"]


def test_bench_json():
    tiny = ["--steps", "2", "--rounds", "1", "--images", "512", "--no-compile", "--device", "cpu"]
    done = subprocess.run([sys.executable, "-m", "src.bench", "--json", *tiny], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert len(lines) > 1  # the table comes first
    for key in NUMBERS:
        value = result[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    assert result["fast_mode"] == {"precision": "bf16", "channels_last": True, "compile": False}
    assert result["device"] == "cpu" and result["device_name"] and result["torch"]
    assert result["date"] and result["workers"] >= 0
