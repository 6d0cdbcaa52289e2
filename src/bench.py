"""Speed of the training path, measured side by side in one process.

python -m src.bench [--json] [--device cpu|cuda] [--steps N] [--rounds R] [--images N]
                    [--batch B] [--workers W] [--no-compile] [--compile-modes M,...]
                    [--bf16 auto|on|off]
python -m src.bench --suite gpu [--device cpu|cuda] [--out FILE]   (src/gpu_check.py)

  --json           the last line of stdout is one JSON object with every number below
  --device         cpu or cuda (default: cuda when available)
  --steps          updates per timed training run (default: 6 on cpu, 200 on cuda)
  --rounds         rounds; each runs every contender once, in turn (default: 3)
  --images         images per loader pass (default: 5,000 on cpu, 50,000 on cuda)
  --batch          images per update, in training and loading (default: 128)
  --workers        worker processes of torchvision's DataLoader (default: min(4, cpu count))
  --no-compile     the fast mode without torch.compile
  --compile-modes  torch.compile modes to time besides the default (default on cuda:
                   max-autotune,reduce-overhead; on cpu none)
  --bf16           the bf16 rung: auto (where native, as trainer.precision=auto chooses), on, off
  --suite gpu      the GPU acceptance check instead: bench, verify, fast run, resume, torchrun

What is measured (PreResNet32, CIFAR-shaped synthetic images, batch 128 unless --batch; medians
over rounds):

* overhead_ratio: ms/step of src.engine.loop.fit as training runs it (loader augmentations,
  scale-invariance metrics every 10 steps with one tracked tensor, the end-of-epoch checks)
  over ms/step of a bare PyTorch loop (plain SGD on one fixed, pre-made batch). fit evaluates
  at the end of the epoch: the test set is one image and BN recalibration is off, so that
  evaluation stays out of the ratio.
* overhead_ratio_all_sets: overhead_ratio with every invariant set's own metrics
  (trainer.track_params=all, the rotational equilibrium's records).
* loader_speedup: images/s of TensorLoader (on-device pad-crop, flip, normalise) over
  torchvision's usual path (PIL image per item, RandomCrop, RandomHorizontalFlip, ToTensor,
  Normalize, DataLoader with W workers, batches moved to the device), one epoch of the same
  images each.
* the fast mode built up one switch at a time (`switches`): fp32 eager (the run of
  overhead_ratio), + channels_last, + bf16 (only where the device computes it natively, unless
  --bf16 on), + torch.compile; each rung's images/s and its gain over the rung before. The
  last rung is the fast mode (trainer=fast), fast_speedup its gain over fp32 eager; the time of
  a CIFAR-10 epoch (50,000 images) is extrapolated from the time per step. compile_s: the
  compiled rung's warm-up (compilation included: a cold cache costs most of it);
  recompiles: graphs compiled during the timed rounds (0 when nothing recompiles). With
  --compile-modes each mode is one more compiled contender.
* resolution_speedup: ms/step of fit on 3x32x32 images (the run of overhead_ratio) over
  ms/step on 3x8x8 images, the embedded digits' own size (the PreResNets' stages then run at
  8, 4 and 2 pixels instead of 32, 16 and 8).

Every contender is warmed up (and compiled) before the first timed round. Timings depend on
what else the machine runs: compare numbers from one run, not across runs.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from src.data import build_data
from src.engine.build import bf16_support, build, choose_precision
from src.engine.loop import fit
from src.resolvers import compose_config
from src.tracking.records import Recorder

BATCH = 128  # --batch's default
CIFAR_EPOCH = 50_000
WARMUP_STEPS = 2  # the compiled rung compiles in its first step
CHANNELS_LAST = "trainer.channels_last=true"
GPU_COMPILE_MODES = ("max-autotune", "reduce-overhead")


def sync(device: torch.device) -> None:
    """CUDA runs asynchronously: wait for its work before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def training_config(device: torch.device, steps: int, batch: int, *overrides):
    """The config of training runs of `steps` updates inside one epoch, metrics as exp_lr."""
    return compose_config([
        "dataset=synthetic", f"dataset.num_train={steps * batch}", "dataset.num_test=1",
        "model=preresnet32", "logger=none", "trainer.epochs=1", f"trainer.batch_size={batch}",
        f"trainer.max_steps={steps}", f"trainer.device={device.type}",
        "trainer.log_every_n_steps=10", "trainer.track_params=[stages.0.1.conv1.weight]",
        "trainer.bn_recalibration_batches=0", *overrides,
    ])


class FitRun:
    """fit on one built (data, model, optimizer, schedule), run again for every timing: the
    model and optimizer go on from where they were, which changes nothing in the cost of a
    step, and a compiled forward is compiled once."""

    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        data, model, optimizer, schedule = build(cfg, device)
        self.args = (model, optimizer, schedule, data)

    def seconds_per_step(self, steps: int) -> float:
        self.cfg.trainer.max_steps = steps
        with tempfile.TemporaryDirectory() as folder:
            recorder = Recorder(Path(folder))  # no folder for fit: no checkpoints
            sync(self.device)
            start = time.perf_counter()
            summary = fit(*self.args, recorder, self.cfg.trainer, self.device)
            sync(self.device)
            seconds = time.perf_counter() - start
            recorder.finish(summary)
        if summary["status"] != "completed" or summary["steps"] != steps:
            raise RuntimeError(f"the timed run did not complete {steps} steps: {summary}")
        return seconds / steps


class BareRun:
    """The plain PyTorch loop on the same architecture, built the same way."""

    def __init__(self, cfg, device: torch.device):
        self.device = device
        data, self.model, _, _ = build(cfg, device)
        self.x, self.y = next(iter(data.train.epoch(0)))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=5e-4)

    def seconds_per_step(self, steps: int) -> float:
        self.model.train()
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(self.model(self.x), self.y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        sync(self.device)
        return (time.perf_counter() - start) / steps


def loaders(images: int, batch: int, device: torch.device, workers: int):
    """The device loader and torchvision's usual path (dataset.loader=torch: PIL image per item,
    RandomCrop, RandomHorizontalFlip, ToTensor, Normalize, DataLoader) over the same images."""
    def train_loader(*overrides):
        cfg = compose_config(["dataset=synthetic", f"dataset.num_train={images}",
                              "dataset.num_test=1", "dataset.crop_padding=4",
                              "dataset.flip=true", *overrides])
        return build_data(cfg.dataset, batch_size=batch, seed=0, device=device,
                          dtype=torch.float32).train
    return train_loader(), train_loader("dataset.loader=torch", f"dataset.num_workers={workers}")


def images_per_second(batches, device: torch.device) -> float:
    """One pass over `batches`, each (x, y) made to be on the device."""
    n = 0
    sync(device)
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        n += len(y)
    sync(device)
    return n / (time.perf_counter() - start)


def graphs_compiled() -> int:
    """Graphs torch.compile has made in this process (dynamo's own counter)."""
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


def ladder(args, device: torch.device) -> tuple[list, dict]:
    """The fast mode one switch at a time: (name, overrides) of each rung, and what the
    precision rung is based on."""
    support = bf16_support(device)
    native, why = choose_precision(support)
    bf16 = {"auto": native == "bf16", "on": True, "off": False}[args.bf16]
    precision = "bf16" if bf16 else "fp32"
    rungs = [("fp32", []), ("channels_last", [CHANNELS_LAST])]
    if bf16:
        rungs.append(("bf16", [CHANNELS_LAST, "trainer.precision=bf16"]))
    if not args.no_compile:
        rungs.append(("compile", [CHANNELS_LAST, f"trainer.precision={precision}",
                                  "trainer.compile=true"]))
    return rungs, {"precision": precision, "bf16_native": native == "bf16", "why": why,
                   "bf16_rung": args.bf16, "support": support}


def measure(args, device: torch.device) -> dict:
    rungs, chosen = ladder(args, device)
    modes = [m for m in args.compile_modes if not args.no_compile]
    contenders, timed_compile = {}, {}

    def config(*overrides):
        return training_config(device, args.steps, args.batch, *overrides)

    def add(name, seconds_per_step, compiled=False):
        """Warm up at once (allocations, cuDNN's choices, compilation)."""
        before, start = graphs_compiled() if compiled else 0, time.perf_counter()
        seconds_per_step(min(WARMUP_STEPS, args.steps))
        if compiled:
            timed_compile[name] = {"compile_s": time.perf_counter() - start,
                                   "graphs": graphs_compiled() - before}
        contenders[name] = seconds_per_step

    add("bare", BareRun(config(), device).seconds_per_step)
    for name, overrides in rungs:
        run = FitRun(config(*overrides), device)
        add(name, run.seconds_per_step, compiled=name == "compile")
    add("fit_8px", FitRun(config("dataset.image_size=8"), device).seconds_per_step)
    add("fit_all_sets", FitRun(config("trainer.track_params=all"), device).seconds_per_step)
    for mode in modes:
        overrides = [*rungs[-1][1], f"trainer.compile_mode={mode}"]
        name = f"compile[{mode}]"
        add(name, FitRun(config(*overrides), device).seconds_per_step, compiled=True)
    tensor_loader, standard = loaders(args.images, args.batch, device, args.workers)
    epochs = iter(range(args.rounds + 1))  # a new epoch (order, augmentation) each pass
    add("tensor_loader", lambda _: images_per_second(tensor_loader.epoch(next(epochs)), device))
    add("torchvision", lambda _: images_per_second(standard.epoch(0), device))

    compiled_before = graphs_compiled() if timed_compile else 0
    samples = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            samples[name].append(run(args.steps))
    recompiles = graphs_compiled() - compiled_before if timed_compile else None
    m = {name: statistics.median(values) for name, values in samples.items()}
    steps_per_epoch = math.ceil(CIFAR_EPOCH / args.batch)
    switches, previous = [], None
    for name, _ in rungs + [(f"compile[{mode}]", None) for mode in modes]:
        gain = None if previous is None else m[previous] / m[name]
        switches.append({"rung": name, "ms_per_step": m[name] * 1e3,
                         "images_per_s": args.batch / m[name], "gain": gain,
                         "speedup_over_fp32": m["fp32"] / m[name],
                         **timed_compile.get(name, {})})
        if not name.startswith("compile["):  # each mode is compared with the default mode
            previous = name
    fast = rungs[-1][0]
    return {
        "overhead_ratio": m["fp32"] / m["bare"],
        "overhead_ratio_all_sets": m["fit_all_sets"] / m["bare"],
        "fit_all_sets_ms_per_step": m["fit_all_sets"] * 1e3,
        "loader_speedup": m["tensor_loader"] / m["torchvision"],
        "bare_ms_per_step": m["bare"] * 1e3,
        "fit_ms_per_step": m["fp32"] * 1e3,
        "fast_ms_per_step": m[fast] * 1e3,
        "tensor_loader_images_per_s": m["tensor_loader"],
        "torchvision_images_per_s": m["torchvision"],
        "fp32_images_per_s": args.batch / m["fp32"],
        "fast_images_per_s": args.batch / m[fast],
        "fp32_epoch_s": m["fp32"] * steps_per_epoch,
        "fast_epoch_s": m[fast] * steps_per_epoch,
        "fast_speedup": m["fp32"] / m[fast],
        "fit_8px_ms_per_step": m["fit_8px"] * 1e3,
        "resolution_speedup": m["fp32"] / m["fit_8px"],
        "switches": switches,
        "compile_s": timed_compile.get("compile", {}).get("compile_s"),
        "recompiles": recompiles,
        "fast_mode": {"precision": chosen["precision"], "channels_last": True,
                      "compile": not args.no_compile},
        "bf16": chosen,
        "model": "preresnet32", "batch_size": args.batch, "steps": args.steps,
        "rounds": args.rounds, "images": args.images, "workers": args.workers,
        "device": device.type, "device_name": device_name(device), "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "samples": samples,  # per round: seconds per step, or images/s for the loaders
    }


def table(r: dict) -> str:
    lines = [
        f"{r['device_name']} ({r['device']}, {r['threads']} threads), torch {r['torch']}, "
        f"{r['date']}",
        f"PreResNet32, batch {r['batch_size']}, synthetic 3x32x32 images; medians of "
        f"{r['rounds']} rounds",
        "",
        f"(a) training loop, fp32, {r['steps']} steps per run",
        f"  bare PyTorch loop                {r['bare_ms_per_step']:10.1f} ms/step",
        f"  fit (metrics every 10 steps)     {r['fit_ms_per_step']:10.1f} ms/step",
        f"  overhead ratio                   {r['overhead_ratio']:10.3f}",
        f"  fit, every set's own metrics     {r['fit_all_sets_ms_per_step']:10.1f} ms/step",
        f"  overhead ratio, every set's      {r['overhead_ratio_all_sets']:10.3f}",
        "",
        f"(b) loader, {r['images']:,} images per pass, crop (padding 4) + flip",
        f"  TensorLoader                     {r['tensor_loader_images_per_s']:10,.0f} images/s",
        f"  torchvision, {r['workers']} workers            "
        f"{r['torchvision_images_per_s']:10,.0f} images/s",
        f"  loader speedup                   {r['loader_speedup']:10.2f}",
        "",
        "(c) the fast mode one switch at a time; CIFAR-10 epoch (50,000 images) extrapolated",
        f"  bf16: {r['bf16']['precision']} ({r['bf16']['why']}; --bf16 {r['bf16']['bf16_rung']})",
    ]
    for rung in r["switches"]:
        gain = "" if rung["gain"] is None else f", x{rung['gain']:.2f} over the rung before"
        label = "fp32 eager (the fit of (a))" if rung["rung"] == "fp32" else f"+ {rung['rung']}"
        lines.append(f"  {label:<32} {rung['images_per_s']:10,.0f} images/s{gain}")
        if "compile_s" in rung:
            lines.append(f"  {'':<32} warm-up with compilation {rung['compile_s']:.1f} s, "
                         f"{rung['graphs']} graphs")
    lines += [
        f"  fast mode: {r['fast_images_per_s']:,.0f} images/s, epoch {r['fast_epoch_s']:.1f} s "
        f"(fp32 eager: epoch {r['fp32_epoch_s']:.1f} s), speedup {r['fast_speedup']:.2f}",
    ]
    if r["recompiles"] is not None:
        lines.append(f"  recompiles during the timed rounds {r['recompiles']}")
    lines += [
        "",
        "(d) one update of fit, fp32, by image size (the embedded digits are 8x8)",
        f"  3x32x32                          {r['fit_ms_per_step']:10.1f} ms/step",
        f"  3x8x8                            {r['fit_8px_ms_per_step']:10.1f} ms/step",
        f"  resolution speedup               {r['resolution_speedup']:10.2f}",
    ]
    return "\n".join(lines)


def suite(argv: list[str]) -> None:
    """--suite gpu: the acceptance check takes the other options (src/gpu_check.py)."""
    parser = argparse.ArgumentParser(prog="python -m src.bench --suite", add_help=False,
                                     allow_abbrev=False)
    parser.add_argument("--suite", choices=("gpu",), required=True)
    args, rest = parser.parse_known_args(argv)
    from src import gpu_check
    gpu_check.main(rest)


def main() -> None:
    argv = sys.argv[1:]
    if any(a == "--suite" or a.startswith("--suite=") for a in argv):
        return suite(argv)
    parser = argparse.ArgumentParser(prog="python -m src.bench", allow_abbrev=False,
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="end stdout with one line of JSON holding every number")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="updates per timed run (cpu 6, cuda 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all contenders (3)")
    parser.add_argument("--images", type=int,
                        help="images per loader pass (cpu 5,000, cuda 50,000)")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"images per update, training and loading ({BATCH})")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="torchvision DataLoader workers (default: min(4, cpu count))")
    parser.add_argument("--no-compile", action="store_true",
                        help="fast mode without torch.compile")
    parser.add_argument("--compile-modes", help="comma-separated torch.compile modes to time "
                        "besides the default (cuda: max-autotune,reduce-overhead; cpu: none)")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="the bf16 rung: where native (auto), always, never")
    parser.add_argument("--suite", choices=("gpu",), help="run the GPU acceptance check "
                        "(src/gpu_check.py; --suite gpu --help) instead")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    cuda = args.device == "cuda"
    args.steps = args.steps or (200 if cuda else 6)
    args.images = args.images or (50_000 if cuda else 5_000)
    if min(args.steps, args.rounds, args.images, args.batch) < 1 or args.workers < 0:
        parser.error("--steps, --rounds, --images and --batch must be >= 1, --workers >= 0")
    from src.engine.build import COMPILE_MODES
    if args.compile_modes is None:
        args.compile_modes = ",".join(GPU_COMPILE_MODES) if cuda else ""
    args.compile_modes = [m for m in args.compile_modes.split(",") if m and m != "default"]
    unknown = [m for m in args.compile_modes if m not in COMPILE_MODES]
    if unknown:
        parser.error(f"--compile-modes: {unknown} unknown; use {', '.join(COMPILE_MODES)}")
    result = measure(args, torch.device(args.device))
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
