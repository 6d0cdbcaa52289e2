"""Why budget=mini runs a grid's jobs two at a time (hydra/launcher=joblib_2), measured side by
side in one command.

python -m benchmarks.jobs_at_once [--steps 300] [--model preresnet32] [--image-size 8]

The miniature's training step (PreResNet32 at 8x8, batch 32, Figure 1's recipe, metrics
every 10 updates) timed in the training loop three ways: one job on 2 threads
(hydra/launcher=basic on 2 cores), one job on 1 thread, and two 1-thread jobs in two
processes at once (joblib_2). Prints ms per update of each and the grid's speed-up: updates
per second of the two jobs together over those of the one 2-thread job.
"""

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path


def ms_per_update(threads: int, steps: int, model: str, image_size: int,
                  barrier=None) -> float:
    """The training loop's `steps` updates on `threads` threads; barrier: wait there once built (the
    two processes of the concurrent case start their timed runs together)."""
    import torch

    from src.config.prepare import prepare
    from src.config.resolvers import compose_config
    from src.engine.build import build
    from src.engine.loop import Loop
    from src.engine.step import TrainStep
    from src.tracking.records import Recorder

    torch.set_num_threads(threads)
    cfg = prepare(compose_config([
        "+experiment=exp_lr", "dataset=synthetic", "dataset.num_train=1024",
        f"dataset.image_size={image_size}", "dataset.crop_padding=1", f"model={model}",
        "logger=none", "trainer.device=cpu", "trainer.batch_size=32",
        f"trainer.max_steps={steps}", "trainer.epochs=1000",
        "trainer.checkpoint_every_n_epochs=null"]))
    data, net, optimizer, scheduler = build(cfg, torch.device("cpu"))
    step = TrainStep(net, optimizer, scheduler, cfg.trainer, torch.device("cpu"))
    if barrier is not None:
        barrier.wait()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        Loop(step, data, Recorder(Path(folder)), cfg.trainer).fit()
        return (time.perf_counter() - start) / steps * 1000


def _child(args, barrier, out):
    out.put(ms_per_update(1, *args, barrier=barrier))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--model", default="preresnet32")
    parser.add_argument("--image-size", type=int, default=8)
    args = parser.parse_args()
    run = (args.steps, args.model, args.image_size)
    two_threads = ms_per_update(2, *run)
    one_thread = ms_per_update(1, *run)
    context = multiprocessing.get_context("spawn")
    out, barrier = context.Queue(), context.Barrier(2)
    jobs = [context.Process(target=_child, args=(run, barrier, out)) for _ in range(2)]
    for job in jobs:
        job.start()
    together = [out.get() for _ in jobs]
    for job in jobs:
        job.join()
    speedup = sum(1000 / t for t in together) / (1000 / two_threads)
    print(f"one job, 2 threads:         {two_threads:6.1f} ms/update")
    print(f"one job, 1 thread:          {one_thread:6.1f} ms/update")
    print(f"two 1-thread jobs at once:  {together[0]:6.1f} and {together[1]:.1f} ms/update")
    print(f"updates/s of two 1-thread jobs over one 2-thread job: x{speedup:.2f}")


if __name__ == "__main__":
    main()
