"""The device and the torch backend settings a run computes with: precisions, torch.compile's
backends and modes, what the hardware offers for bf16, and the switches trainer.tf32 and
trainer.deterministic stand for. The config floor (src/config/prepare.py) resolves `auto`
with these facts; build applies the settings; metadata.json records them."""

import os

import torch

# trainer.precision -> the dtype of the weights (bf16: float32 weights under bf16 autocast)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.float32}
# trainer.precision=auto: bf16 where the hardware computes it natively, else fp32
PRECISIONS = (*DTYPES, "auto")
DEVICES = ("auto", "cpu", "cuda")
# trainer.compile: true (inductor), false, or one of these backends
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager", "cudagraphs")
# trainer.compile_mode: torch.compile's modes (inductor's option sets)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# cuBLAS needs a fixed workspace to be deterministic (read when cuBLAS first starts)
CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(name: str) -> torch.device:
    """trainer.device as a torch device: auto is CUDA where there is one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def bf16_support(device: torch.device) -> dict:
    """What this device offers for bf16, as torch reports it: the facts choose_precision
    decides on."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return {"device": "cuda", "capability": [major, minor],
                "bf16": bool(torch.cuda.is_bf16_supported(including_emulation=False))}
    cpu = getattr(torch, "cpu", None)

    def flag(name: str) -> bool:  # private probes: absent on some builds
        probe = getattr(cpu, name, None)
        return bool(probe()) if probe else False

    return {"device": "cpu", "capability": torch.backends.cpu.get_cpu_capability(),
            "avx512_bf16": flag("_is_avx512_bf16_supported"),
            "amx": flag("_is_amx_tile_supported")}


def choose_precision(support: dict) -> tuple[str, str]:
    """(precision, why) for trainer.precision=auto. bf16 only where it is native: CUDA sm80
    and newer, CPUs with AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32
    (10x on an AVX2-only CPU)."""
    if support["device"] == "cuda":
        major, minor = support["capability"]
        if (major, minor) >= (8, 0) and support["bf16"]:
            return "bf16", f"CUDA sm{major}{minor} computes bf16 natively"
        return "fp32", f"CUDA sm{major}{minor} has no native bf16 (sm80 and newer do)"
    native = [name for name in ("avx512_bf16", "amx") if support[name]]
    if native:
        return "bf16", f"the CPU has {' and '.join(n.upper() for n in native)}"
    return "fp32", (f"the CPU ({support['capability']}) has neither AVX512-BF16 nor AMX: "
                    f"bf16 would be emulated")


def choose_channels_last(device: torch.device, precision: str) -> tuple[bool, str]:
    """(channels_last, why) for trainer.channels_last=auto: NHWC where it is faster for every
    model here, float64 on a CPU, whose convolutions torch computes by im2col, cheaper in NHWC
    (the bench's (e): 1.8-1.9x an update at 8x8 on one thread). In float32 on a CPU the gain
    depends on the model and can be a loss (oneDNN's kernels); on a GPU it has not been
    measured."""
    if device.type == "cpu" and precision == "fp64":
        return True, "float64 convolutions on a CPU are faster in NHWC"
    return False, "measured faster only for float64 on a CPU"


def backend_settings(trainer, device_type: str) -> dict:
    """The torch settings trainer.tf32 and trainer.deterministic stand for on this device.
    CPUs get none: TF32 is a GPU format, and deterministic algorithms would change some CPU
    kernels, which are deterministic already."""
    if device_type != "cuda":
        return {}
    tf32, deterministic = bool(trainer.get("tf32")), bool(trainer.get("deterministic"))
    # fp32 means fp32: torch's own default runs fp32 convolutions in TF32 on sm80+.
    precision = "tf32" if tf32 else "ieee"
    return {"cuda.matmul.fp32_precision": precision, "cudnn.conv.fp32_precision": precision,
            "cudnn.rnn.fp32_precision": precision,
            "deterministic_algorithms": deterministic, "cudnn.deterministic": deterministic,
            # benchmark picks the fastest kernels by timing them: faster, not reproducible
            "cudnn.benchmark": not deterministic}


def apply_backend_settings(settings: dict) -> None:
    for key, value in settings.items():
        if key == "deterministic_algorithms":
            if value:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
            torch.use_deterministic_algorithms(value)
            continue
        *path, name = key.split(".")
        target = torch.backends
        for part in path:
            target = getattr(target, part)
        setattr(target, name, value)


def backends_record(trainer, device: torch.device) -> dict:
    """What metadata.json says of the backends: the run's precision, switches and the settings
    they stand for on this device (what build applied), what the device offers for bf16, and
    torch's global flags as they are now."""
    support = bf16_support(device)
    return {
        "device": device.type, "precision": trainer.precision,
        "tf32": bool(trainer.get("tf32")), "deterministic": bool(trainer.get("deterministic")),
        "compile": trainer.compile, "compile_mode": trainer.get("compile_mode") or "default",
        "settings": backend_settings(trainer, device.type),  # empty on a CPU
        "bf16_support": support, "auto_precision": choose_precision(support)[0],
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_flags": {
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cuda_matmul_fp32_precision": torch.backends.cuda.matmul.fp32_precision,
            "cudnn_conv_fp32_precision": torch.backends.cudnn.conv.fp32_precision,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()},
    }
