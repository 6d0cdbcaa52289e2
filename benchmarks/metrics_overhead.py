"""Overhead of the online scale-invariance metrics, measured side by side in one process.

python -m benchmarks.metrics_overhead [--steps 60] [--rounds 3] [--device cpu|cuda]
                                      [--image-size 32] [--batch-size 128]

Trains PreResNet32 on synthetic data with metrics every 10 steps (the default: the group, one
tracked tensor and the summary over the invariant sets), with every set's own metrics too
(trainer.track_params=all), those every 2 steps (as fig_rotational_equilibrium records), and
with logging off, in turn, and prints the ratios of the median times per step. At
--image-size 8 a step is about 10x cheaper, so the metrics weigh more (the miniature's
grids: --image-size 8 --batch-size 32).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from src.config.prepare import prepare
from src.config.resolvers import compose_config
from src.engine.build import build
from src.engine.loop import Loop
from src.engine.step import TrainStep
from src.tracking.records import Recorder


def time_run(cfg, device, log_every: int, tracked) -> float:
    cfg.trainer.log_every_n_steps, cfg.trainer.track_params = log_every, tracked
    data, model, optimizer, scheduler = build(prepare(cfg), device)
    step = TrainStep(model, optimizer, scheduler, cfg.trainer, device)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        Loop(step, data, Recorder(Path(folder)), cfg.trainer).fit()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / cfg.trainer.max_steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    cfg = compose_config(["dataset=synthetic", "dataset.num_train=8192", "logger=none",
                          f"dataset.image_size={args.image_size}",
                          f"trainer.batch_size={args.batch_size}",
                          f"trainer.max_steps={args.steps}",
                          f"trainer.device={args.device}"])
    device = torch.device(args.device)
    runs = {"metrics every 10 steps": (10, ["stages.0.1.conv1.weight"]),
            "and every set's own (track_params=all)": (10, "all"),
            "every set's own, every 2 steps": (2, "all"),
            "no metrics": (10**9, [])}
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (log_every, tracked) in runs.items():
            times[name].append(time_run(cfg, device, log_every, tracked))
    medians = {name: statistics.median(t) for name, t in times.items()}
    bare = medians["no metrics"]
    print(f"{args.device}, PreResNet32, batch {args.batch_size}, "
          f"3x{args.image_size}x{args.image_size}:")
    for name, m in medians.items():
        print(f"  {name:<40} {m * 1e3:8.1f} ms/step   ratio {m / bare:.3f}")


if __name__ == "__main__":
    main()
