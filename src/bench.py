"""Speed of the training path, measured side by side in one process.

python -m src.bench [--json] [--device cpu|cuda] [--steps N] [--rounds R] [--images N]
                    [--workers W] [--no-compile]

  --json        the last line of stdout is one JSON object with every number below
  --device      cpu or cuda (default: cuda when available)
  --steps       updates per timed training run (default: 20 on cpu, 200 on cuda)
  --rounds      rounds; each runs every contender once, in turn (default: 3 on cpu, 5 on cuda)
  --images      images per loader pass (default: 10,000 on cpu, 50,000 on cuda)
  --workers     worker processes of torchvision's DataLoader (default: min(4, os.cpu_count()))
  --no-compile  the fast mode without torch.compile (compiling takes a minute or more on a CPU)

What is measured (PreResNet32, CIFAR-shaped synthetic images, batch 128; medians over rounds):

* overhead_ratio: ms/step of src.engine.loop.fit as training runs it (loader augmentations,
  scale-invariance metrics every 10 steps with one tracked tensor, the end-of-epoch checks)
  over ms/step of a bare PyTorch loop (plain SGD on one fixed, pre-made batch). fit evaluates
  at the end of the epoch: the test set is one image and BN recalibration is off, so that
  evaluation stays out of the ratio.
* loader_speedup: images/s of TensorLoader (on-device pad-crop, flip, normalise) over
  torchvision's usual path (PIL image per item, RandomCrop, RandomHorizontalFlip, ToTensor,
  Normalize, DataLoader with W workers, batches moved to the device), one epoch of the same
  images each.
* images/s of fit in fp32 eager (the run of overhead_ratio) and in the fast mode
  (trainer.precision=bf16, trainer.channels_last=true, trainer.compile=true), and the time of
  a CIFAR-10 epoch (50,000 images) extrapolated from the time per step.
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
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from src.data import build_data
from src.engine.build import build
from src.engine.loop import fit
from src.resolvers import compose_config
from src.tracking.records import Recorder

BATCH = 128
CIFAR_EPOCH = 50_000
WARMUP_STEPS = 3
FAST_MODE = ["trainer.precision=bf16", "trainer.channels_last=true"]


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


def training_config(device: torch.device, steps: int, *overrides):
    """The config of training runs of `steps` updates inside one epoch, metrics as exp_lr."""
    return compose_config([
        "dataset=synthetic", f"dataset.num_train={steps * BATCH}", "dataset.num_test=1",
        "model=preresnet32", "logger=none", "trainer.epochs=1", f"trainer.batch_size={BATCH}",
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


def loaders(images: int, device: torch.device, workers: int):
    """The device loader and torchvision's usual path (dataset.loader=torch: PIL image per item,
    RandomCrop, RandomHorizontalFlip, ToTensor, Normalize, DataLoader) over the same images."""
    def train_loader(*overrides):
        cfg = compose_config(["dataset=synthetic", f"dataset.num_train={images}",
                              "dataset.num_test=1", "dataset.crop_padding=4",
                              "dataset.flip=true", *overrides])
        return build_data(cfg.dataset, batch_size=BATCH, seed=0, device=device,
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


def measure(args, device: torch.device) -> dict:
    fast = FAST_MODE + [f"trainer.compile={'false' if args.no_compile else 'true'}"]
    bare = BareRun(training_config(device, args.steps), device)
    eager = FitRun(training_config(device, args.steps), device)
    small = FitRun(training_config(device, args.steps, "dataset.image_size=8"), device)
    fast_run = FitRun(training_config(device, args.steps, *fast), device)
    tensor_loader, standard = loaders(args.images, device, args.workers)
    epochs = iter(range(args.rounds + 1))  # a new epoch (order, augmentation) each pass
    contenders = {
        "bare": bare.seconds_per_step,
        "fit": eager.seconds_per_step,
        "fit_8px": small.seconds_per_step,
        "fast": fast_run.seconds_per_step,
        "tensor_loader": lambda _: images_per_second(tensor_loader.epoch(next(epochs)), device),
        "torchvision": lambda _: images_per_second(standard.epoch(0), device),
    }
    for run in contenders.values():  # warm-up: allocations, cuDNN's choices, compilation
        run(min(WARMUP_STEPS, args.steps))
    samples = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            samples[name].append(run(args.steps))
    m = {name: statistics.median(values) for name, values in samples.items()}
    steps_per_epoch = math.ceil(CIFAR_EPOCH / BATCH)
    return {
        "overhead_ratio": m["fit"] / m["bare"],
        "loader_speedup": m["tensor_loader"] / m["torchvision"],
        "bare_ms_per_step": m["bare"] * 1e3,
        "fit_ms_per_step": m["fit"] * 1e3,
        "fast_ms_per_step": m["fast"] * 1e3,
        "tensor_loader_images_per_s": m["tensor_loader"],
        "torchvision_images_per_s": m["torchvision"],
        "fp32_images_per_s": BATCH / m["fit"],
        "fast_images_per_s": BATCH / m["fast"],
        "fp32_epoch_s": m["fit"] * steps_per_epoch,
        "fast_epoch_s": m["fast"] * steps_per_epoch,
        "fast_speedup": m["fit"] / m["fast"],
        "fit_8px_ms_per_step": m["fit_8px"] * 1e3,
        "resolution_speedup": m["fit"] / m["fit_8px"],
        "fast_mode": {"precision": "bf16", "channels_last": True, "compile": not args.no_compile},
        "model": "preresnet32", "batch_size": BATCH, "steps": args.steps, "rounds": args.rounds,
        "images": args.images, "workers": args.workers,
        "device": device.type, "device_name": device_name(device), "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "samples": samples,  # per round: seconds per step, or images/s for the loaders
    }


def table(r: dict) -> str:
    fast = "bf16 + channels_last" + (" + compile" if r["fast_mode"]["compile"] else "")
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
        "",
        f"(b) loader, {r['images']:,} images per pass, crop (padding 4) + flip",
        f"  TensorLoader                     {r['tensor_loader_images_per_s']:10,.0f} images/s",
        f"  torchvision, {r['workers']} workers            "
        f"{r['torchvision_images_per_s']:10,.0f} images/s",
        f"  loader speedup                   {r['loader_speedup']:10.2f}",
        "",
        "(c) training with fit; CIFAR-10 epoch (50,000 images) extrapolated from ms/step",
        f"  fp32 eager (the fit of (a))      {r['fp32_images_per_s']:10,.0f} images/s, "
        f"epoch {r['fp32_epoch_s']:.1f} s",
        f"  {fast:<32} {r['fast_images_per_s']:10,.0f} images/s, epoch {r['fast_epoch_s']:.1f} s",
        f"  fast mode speedup                {r['fast_speedup']:10.2f}",
        "",
        "(d) one update of fit, fp32, by image size (the embedded digits are 8x8)",
        f"  3x32x32                          {r['fit_ms_per_step']:10.1f} ms/step",
        f"  3x8x8                            {r['fit_8px_ms_per_step']:10.1f} ms/step",
        f"  resolution speedup               {r['resolution_speedup']:10.2f}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m src.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="end stdout with one line of JSON holding every number")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="updates per timed run (cpu 20, cuda 200)")
    parser.add_argument("--rounds", type=int, help="rounds of all contenders (cpu 3, cuda 5)")
    parser.add_argument("--images", type=int,
                        help="images per loader pass (cpu 10,000, cuda 50,000)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="torchvision DataLoader workers (default: min(4, cpu count))")
    parser.add_argument("--no-compile", action="store_true",
                        help="fast mode without torch.compile")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    cuda = args.device == "cuda"
    args.steps = args.steps or (200 if cuda else 20)
    args.rounds = args.rounds or (5 if cuda else 3)
    args.images = args.images or (50_000 if cuda else 10_000)
    if min(args.steps, args.rounds, args.images) < 1 or args.workers < 0:
        parser.error("--steps, --rounds and --images must be >= 1, --workers >= 0")
    result = measure(args, torch.device(args.device))
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
