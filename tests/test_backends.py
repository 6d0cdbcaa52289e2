"""trainer.precision=auto, trainer.channels_last=auto, trainer.tf32, trainer.deterministic,
trainer.compile_mode: the choice made per hardware (the CUDA branches with a described device),
the torch settings each stands for, what metadata.json records, and bad values refused."""

import json
import os

import pytest
import torch

from src.config.prepare import prepare
from src.engine.backends import (
    apply_backend_settings,
    backend_settings,
    bf16_support,
    choose_precision,
)
from src.errors import UserError
from tests.helpers.runs import train

AVX2 = {"device": "cpu", "capability": "AVX2", "avx512_bf16": False, "amx": False}


@pytest.mark.parametrize("support, expected", [
    (AVX2, "fp32"),
    ({**AVX2, "capability": "AVX512"}, "fp32"),  # AVX-512 without BF16: emulated
    ({**AVX2, "capability": "AVX512", "avx512_bf16": True}, "bf16"),
    ({**AVX2, "capability": "AVX512", "amx": True}, "bf16"),
    ({"device": "cuda", "capability": [7, 0], "bf16": False}, "fp32"),  # V100
    ({"device": "cuda", "capability": [7, 5], "bf16": True}, "fp32"),  # emulated only
    ({"device": "cuda", "capability": [8, 0], "bf16": True}, "bf16"),  # A100
    ({"device": "cuda", "capability": [9, 0], "bf16": True}, "bf16"),  # H100
])
def test_auto_precision_is_bf16_only_where_native(support, expected):
    precision, why = choose_precision(support)
    assert precision == expected and why


def test_auto_resolves_to_this_machines_choice_and_the_fast_preset(tiny_cfg):
    cfg = tiny_cfg("trainer=fast")
    assert (cfg.trainer.precision, cfg.trainer.channels_last, cfg.trainer.compile) == (
        "auto", True, True)
    assert prepare(cfg) is cfg
    expected = choose_precision(bf16_support(torch.device("cpu")))[0]
    assert cfg.trainer.precision == expected


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.precision=fp64"], True),   # a CPU's float64 convolutions: faster in NHWC
    (["trainer.precision=fp32"], False),  # model-dependent in float32: left contiguous
    (["trainer.precision=fp64", "trainer.channels_last=false"], False),  # as asked
    (["trainer.precision=fp32", "trainer.channels_last=true"], True),
])
def test_auto_channels_last_is_float64_on_a_cpu(tiny_cfg, overrides, expected):
    cfg = prepare(tiny_cfg("trainer.device=cpu", *overrides))
    assert cfg.trainer.channels_last is expected


def test_a_config_with_auto_left_is_not_built(tiny_cfg):
    from src.engine.build import build
    with pytest.raises(ValueError, match="trainer.channels_last=auto: prepare the config"):
        build(tiny_cfg("trainer.precision=fp64"), torch.device("cpu"))


def test_cuda_settings_fp32_means_fp32_and_deterministic(tiny_cfg):
    exact = backend_settings(tiny_cfg("trainer.deterministic=true").trainer, "cuda")
    assert exact["cudnn.conv.fp32_precision"] == "ieee"  # torch's default there is tf32
    assert exact["cuda.matmul.fp32_precision"] == "ieee"
    assert exact["deterministic_algorithms"] and exact["cudnn.deterministic"]
    assert exact["cudnn.benchmark"] is False
    fast = backend_settings(tiny_cfg("trainer.tf32=true").trainer, "cuda")
    assert fast["cudnn.conv.fp32_precision"] == "tf32" and fast["cudnn.benchmark"] is True
    assert not fast["deterministic_algorithms"]
    assert backend_settings(tiny_cfg("trainer.tf32=true", "trainer.deterministic=true").trainer,
                            "cpu") == {}


def test_cuda_settings_reach_torch(tiny_cfg, monkeypatch):
    """The CUDA branch applied on a CPU machine: the flags torch reads on a GPU are set."""
    names = ("benchmark", "deterministic")
    saved = ([getattr(torch.backends.cudnn, n) for n in names],
             torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision,
             torch.are_deterministic_algorithms_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        apply_backend_settings(backend_settings(
            tiny_cfg("trainer.deterministic=true").trainer, "cuda"))
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        for n, v in zip(names, saved[0], strict=True):
            setattr(torch.backends.cudnn, n, v)
        torch.backends.cudnn.conv.fp32_precision = saved[1]
        torch.backends.cuda.matmul.fp32_precision = saved[2]
        torch.use_deterministic_algorithms(saved[3])


def test_metadata_records_the_switches_and_the_choice(tiny_cfg, tmp_path):
    train(tiny_cfg("trainer.max_steps=1", "trainer.precision=auto", "trainer.tf32=true",
                   "trainer.deterministic=true"), tmp_path)
    backends = json.loads((tmp_path / "metadata.json").read_text())["backends"]
    assert backends["tf32"] is True and backends["deterministic"] is True
    assert backends["precision"] == backends["auto_precision"] in ("bf16", "fp32")
    assert backends["device"] == "cpu" and backends["settings"] == {}  # nothing on a CPU
    assert backends["bf16_support"]["capability"] == torch.backends.cpu.get_cpu_capability()
    assert backends["torch_flags"]["deterministic_algorithms"] is False
    assert "precision: " + backends["precision"] in (tmp_path / "config.yaml").read_text()


@pytest.mark.parametrize("override, message", [
    ("trainer.tf32=1", "trainer.tf32=1 is not allowed"),
    ("trainer.deterministic=yes", "trainer.deterministic='yes' is not allowed"),
    ("trainer.precision=fp16", "trainer.precision='fp16' is not allowed"),
    ("trainer.compile_mode=fastest", "trainer.compile_mode='fastest' is not allowed"),
    ("trainer.compile_mode=max-autotune", "needs trainer.compile=true"),
])
def test_bad_switches_are_refused(tiny_cfg, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        prepare(tiny_cfg(override))
