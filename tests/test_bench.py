"""python -m src.bench runs end to end and its JSON line holds every number (no speed checks)."""

import json
import math
import subprocess
import sys

import pytest

from src.bench.gpu import BENCH_KEYS
from tests.conftest import ROOT

NUMBERS = ["overhead_ratio", "overhead_ratio_all_sets", "loader_speedup", "bare_ms_per_step",
           "fit_ms_per_step",
           "fast_ms_per_step", "tensor_loader_images_per_s", "torchvision_images_per_s",
           "fp32_images_per_s", "fast_images_per_s", "fp32_epoch_s", "fast_epoch_s",
           "fast_speedup", "fit_8px_ms_per_step", "resolution_speedup", "threads"]


def test_bench_json():
    """One run of every contender, with the bf16 rung forced on (--bf16 on: the same rungs on
    every CPU; what auto picks is trainer.precision=auto's choice, tests/test_backends.py).
    Batch 16: an emulated bf16 update of batch 128 takes seconds on an AVX2 CPU."""
    tiny = ["--steps", "2", "--rounds", "1", "--images", "512", "--batch", "16", "--no-compile",
            "--device", "cpu"]
    done = subprocess.run([sys.executable, "-m", "src.bench", "--json", "--bf16", "on", *tiny],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert len(lines) > 1  # the table comes first
    for key in NUMBERS:
        value = result[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    assert set(BENCH_KEYS) <= set(result)  # what the GPU check's bench part reports
    assert result["fast_mode"] == {"precision": "bf16", "channels_last": True, "compile": False}
    assert result["bf16"]["bf16_rung"] == "on"
    rungs = [r["rung"] for r in result["switches"]]
    assert rungs == ["fp32", "channels_last", "bf16"]
    assert result["switches"][0]["gain"] is None
    assert all(r["gain"] > 0 and r["images_per_s"] > 0 for r in result["switches"][1:])
    assert result["fast_images_per_s"] == result["switches"][-1]["images_per_s"]
    assert result["batch_size"] == 16
    assert math.isclose(result["fp32_images_per_s"], 16e3 / result["fit_ms_per_step"],
                        rel_tol=1e-12)
    assert result["compile_s"] is None and result["recompiles"] is None
    assert result["device"] == "cpu" and result["device_name"] and result["torch"]
    assert result["date"] and result["workers"] >= 0
    mini = result["mini"]  # the miniature's update: batch 32 at 8x8 and 16x16, no compile here
    assert mini["batch_size"] == 32 and set(mini["ms_per_update"]) == {"8", "16"}
    assert all(ms > 0 for ms in mini["ms_per_update"].values())
    assert math.isclose(mini["cost_16px_over_8px"], mini["ms_per_update"]["16"]
                        / mini["ms_per_update"]["8"], rel_tol=1e-12)
    assert mini["compiled_8px_ms_per_update"] is None and mini["compile_speedup_8px"] is None
    assert "(e) the miniature's update (budget=mini): batch 32, fp32" in done.stdout
    layouts = mini["layouts_8px_one_thread_ms_per_update"]
    assert set(layouts) == {"fp32", "fp64"}
    assert all(ms > 0 for both in layouts.values() for ms in both.values())
    assert "channels_last speedup, fp64" in done.stdout
    assert mini["seeds_stacked"] == 5 and mini["bare_8px_ms_per_update"] > 0
    assert math.isclose(mini["stacking_speedup_8px"], mini["bare_8px_ms_per_update"] * 5
                        / (mini["stacked_8px_ms_per_seed_update"] * 5), rel_tol=1e-12)


def test_stacked_seeds_update_each_copy_as_alone():
    """The batched contender does the bare loop's update on every copy: after an update each
    stacked copy equals the bare loop's model to float32 rounding (the grouped convolutions sum
    in another order; the first updates at LR 0.1 amplify such a difference about 1000-fold an
    update, so one is compared). BatchNorm normalises by the batch's statistics in both."""
    import torch

    from src.bench.speed import BareRun, StackedSeedsRun, training_config

    device = torch.device("cpu")
    cfg = training_config(device, 1, 32, "dataset.image_size=8", "model=preresnet20")
    bare, stacked = BareRun(cfg, device), StackedSeedsRun(cfg, device, seeds=2)
    start = stacked.params | stacked.buffers
    with torch.no_grad():
        for name, p in bare.model.named_parameters():
            p.copy_(start[name][0])
    start = {name: p.clone() for name, p in start.items()}
    bare.x, bare.y = stacked.x[0], stacked.y[0]
    bare(1)
    stacked(1)
    moved = 0
    for name, p in bare.model.named_parameters():
        moved += p.requires_grad and not torch.equal(p, start[name][0])
        for copy in (stacked.params | stacked.buffers)[name]:
            assert torch.allclose(copy, p, rtol=1e-5, atol=1e-7), name
    assert moved == len(stacked.params)  # every trained tensor was updated


@pytest.mark.parametrize("args", [["--compile-modes", "fastest"], ["--batch", "0"]])
def test_bench_refuses_bad_arguments(args, capsys):
    """In this process: argparse's one message and exit status 2 (an exception would raise)."""
    from src.bench.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main([*args, "--device", "cpu"])
    assert stop.value.code == 2 and args[0] in capsys.readouterr().err
