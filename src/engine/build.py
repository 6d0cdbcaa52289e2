"""config -> (data, model, optimizer, schedule): what training, the verifier and the benchmark
all start from, after the backend settings of the trainer config (precision auto, TF32,
determinism, compile mode) are applied."""

import logging
import os

import torch
from omegaconf import DictConfig

from src.data import build_data
from src.engine.distributed import World
from src.errors import UserError
from src.models import build_model
from src.optim.optimizer import build_optimizer
from src.optim.schedules import build_schedule

# cfg.task: a network's training, or paper A's toy example (src/engine/toy.py)
TASKS = ("train", "toy_wd_bn")
# trainer.precision -> the dtype of the weights (bf16: float32 weights under bf16 autocast)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.float32}
# trainer.precision=auto: bf16 where the hardware computes it natively, else fp32
PRECISIONS = (*DTYPES, "auto")
# trainer.compile_mode: torch.compile's modes (inductor's option sets)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# cuBLAS needs a fixed workspace to be deterministic (read when cuBLAS first starts)
CUBLAS_WORKSPACE = ":4096:8"

log = logging.getLogger(__name__)
# What the last build applied, for metadata.json (src/tracking/metadata.py)
APPLIED: dict = {}


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


def resolve_precision(trainer: DictConfig, device: torch.device) -> None:
    """Replace trainer.precision=auto by the precision this device computes fastest, and say
    so: the run's config.yaml then holds the precision its numbers come from."""
    if trainer.precision != "auto":
        return
    precision, why = choose_precision(bf16_support(device))
    trainer.precision = precision
    log.info("trainer.precision=auto on %s: %s (%s)", device.type, precision, why)


def backend_settings(trainer: DictConfig, device_type: str) -> dict:
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


def configure(trainer: DictConfig, device: torch.device) -> None:
    """Apply the trainer's backend settings for this device (every build: a process may run
    several jobs) and keep what was applied for the run's metadata."""
    resolve_precision(trainer, device)
    settings = backend_settings(trainer, device.type)
    apply_backend_settings(settings)
    mode = trainer.get("compile_mode") or "default"  # torch.compile's own (src/engine/step.py)
    support = bf16_support(device)
    APPLIED.clear()
    APPLIED.update({
        "device": device.type, "precision": trainer.precision,
        "tf32": bool(trainer.get("tf32")), "deterministic": bool(trainer.get("deterministic")),
        "compile": trainer.compile, "compile_mode": mode,
        "settings": settings,  # empty on a CPU: the switches change nothing there
        "bf16_support": support,
        "auto_precision": choose_precision(support)[0],
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    })


def total_steps(trainer: DictConfig, steps_per_epoch: int) -> int:
    """The run's length in updates: trainer.epochs, cut short by trainer.max_steps."""
    total = trainer.epochs * steps_per_epoch
    return total if trainer.max_steps is None else min(total, trainer.max_steps)


def build(cfg: DictConfig, device: torch.device, world: World | None = None):
    """(data, model, optimizer, schedule) for a validated config, ready for the loop."""
    world = world or World()
    configure(cfg.trainer, device)
    dtype = DTYPES[cfg.trainer.precision]
    data = build_data(cfg.dataset, batch_size=cfg.trainer.batch_size, seed=cfg.seed,
                      device=device, dtype=dtype, rank=world.rank, world=world.size)
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(cfg.model, data.num_classes)
    except (TypeError, ValueError) as e:
        raise UserError(f"model.name={cfg.model.name} with model.norm={cfg.model.norm}: {e}"
                        ) from None
    model.to(device=device, dtype=dtype)
    if cfg.trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.trainer.sync_batchnorm and world.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model, cfg.optimizer, input_shape=data.input_shape,
                                scale_invariant=cfg.model.scale_invariant)
    invariant = optimizer.param_groups[0]["name"] == "scale_invariant"
    if cfg.trainer.full_gradient_images and not (invariant and hasattr(data.train, "first")):
        raise UserError("trainer.full_gradient_images needs scale-invariant weights and "
                        "dataset.loader=device (the training set as one tensor)")
    try:
        schedule = build_schedule(cfg.schedule, cfg.optimizer, len(data.train),
                                  total_steps(cfg.trainer, len(data.train)))
    except ValueError as e:  # no real alpha, or no exact twin for this schedule
        raise UserError(f"schedule={cfg.schedule.name} with optimizer={dict(cfg.optimizer)}: {e}"
                        ) from None
    return data, model, optimizer, schedule
