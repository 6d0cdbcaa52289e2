"""Overhead of the online scale-invariance metrics, measured side by side in one process.

python -m benchmarks.metrics_overhead [--steps 60] [--rounds 3] [--device cpu|cuda]

Trains PreResNet32 on CIFAR-shaped synthetic data with metrics every 10 steps (the default)
and with logging off, alternating, and prints the ratio of the median times per step.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from src.engine.build import build
from src.engine.loop import fit
from src.resolvers import compose_config
from src.tracking.records import Recorder


def time_run(cfg, device, log_every: int) -> float:
    cfg.trainer.log_every_n_steps = log_every
    data, model, optimizer, schedule = build(cfg, device)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        fit(model, optimizer, schedule, data, Recorder(Path(folder)), cfg.trainer, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / cfg.trainer.max_steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    cfg = compose_config(["dataset=synthetic", "dataset.num_train=8192", "logger=none",
                          "trainer.batch_size=128", f"trainer.max_steps={args.steps}",
                          f"trainer.device={args.device}",
                          "trainer.track_params=[stages.0.1.conv1.weight]"])
    device = torch.device(args.device)
    with_metrics, without = [], []
    for _ in range(args.rounds):
        with_metrics.append(time_run(cfg, device, 10))
        without.append(time_run(cfg, device, 10**9))
    a, b = statistics.median(with_metrics), statistics.median(without)
    print(f"{args.device}: {a * 1e3:.1f} ms/step with metrics every 10 steps, "
          f"{b * 1e3:.1f} ms/step without; overhead ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
