"""The bench's contenders and their timing (what each measures: src/bench/__init__.py)."""

import copy
import datetime
import math
import os
import tempfile
from argparse import Namespace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer, timer

from src.config.prepare import prepare
from src.config.resolvers import compose_config
from src.data import build_data
from src.engine.backends import bf16_support, choose_precision
from src.engine.build import build
from src.engine.loop import Loop
from src.engine.step import TrainStep
from src.tracking.metadata import cpu_model
from src.tracking.records import Recorder

BATCH = 128  # --batch's default
CIFAR_EPOCH = 50_000
CHANNELS_LAST = "trainer.channels_last=true"
GPU_COMPILE_MODES = ("max-autotune", "reduce-overhead")
# The miniature's update (budget=mini): its batch, the digits' 8x8 and twice that, and more
# updates per timed run than the CIFAR-sized contenders (an update is ~10x cheaper).
MINI_BATCH, MINI_SIZES, MINI_STEPS = 32, (8, 16), 8
MINI_SEEDS = 5  # a figure curve's seeds, trained as one stacked model by the batched contender
BARE_SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}  # the plain loops' optimizer


def options(device: str, **given) -> Namespace:
    """The bench's options with their defaults for the device (the command line's too)."""
    cuda = device == "cuda"
    values = {"device": device, "steps": 200 if cuda else 6, "rounds": 3,
              "images": 50_000 if cuda else 5_000, "batch": BATCH,
              "workers": min(4, os.cpu_count() or 1), "no_compile": False,
              "compile_modes": list(GPU_COMPILE_MODES) if cuda else [], "bf16": "auto",
              "miniature": True}
    values.update({k: v for k, v in given.items() if v is not None})
    return Namespace(**values)


def training_config(device: torch.device, steps: int, batch: int, *overrides):
    """The config of training runs of `steps` updates inside one epoch, metrics as exp_lr."""
    return prepare(compose_config([
        "dataset=synthetic", f"dataset.num_train={steps * batch}", "dataset.num_test=1",
        "model=preresnet32", "logger=none", "trainer.epochs=1", f"trainer.batch_size={batch}",
        f"trainer.max_steps={steps}", f"trainer.device={device.type}",
        "trainer.log_every_n_steps=10", "trainer.track_params=[stages.0.1.conv1.weight]",
        "trainer.bn_recalibration_batches=0", *overrides,
    ]))


class FitRun:
    """The training loop (src/engine/loop.py) on one built (data, model, optimizer,
    scheduler), run again for every timing: the model and optimizer go on from where they
    were, which changes nothing in the cost of a step; the scheduler starts over; a compiled
    forward is compiled once."""

    def __init__(self, cfg, device: torch.device):
        self.cfg = cfg
        self.data, model, optimizer, self.scheduler = build(cfg, device)
        self.train_step = TrainStep(model, optimizer, self.scheduler, cfg.trainer, device)

    def __call__(self, steps: int) -> None:
        self.cfg.trainer.max_steps = steps
        self.scheduler.load_state_dict({"last_epoch": 0, "scale": 1.0})
        with tempfile.TemporaryDirectory() as folder:
            recorder = Recorder(Path(folder))  # no run folder: no checkpoints
            summary = Loop(self.train_step, self.data, recorder, self.cfg.trainer).fit()
            recorder.finish(summary)
        if summary["status"] != "completed" or summary["steps"] != steps:
            raise RuntimeError(f"the timed run did not complete {steps} steps: {summary}")


class Repeat:
    """A contender run `times` as many updates as the others in each timed run; `threads`:
    timed on that many threads (None: the bench's)."""

    def __init__(self, run, times: int, threads: int | None = None):
        self.run, self.times, self.threads = run, times, threads

    def __call__(self, steps: int) -> None:
        self.run(steps * self.times)


def miniature(args, device: torch.device) -> dict:
    """The miniature's update at each image size, fp32 eager; at 8x8 in fp32 and fp64 in
    either memory layout, on one thread; at 8x8 compiled (fp32, no channels_last: compile
    alone) unless --no-compile; none when args.miniature is false."""
    def run(*overrides, threads=None):
        cfg = training_config(device, args.steps * MINI_STEPS, MINI_BATCH, *overrides)
        return Repeat(FitRun(cfg, device), MINI_STEPS, threads)

    if not args.miniature:
        return {}
    runs = {f"mini_{size}px": run(f"dataset.image_size={size}") for size in MINI_SIZES}
    # the layouts trainer.channels_last=auto chooses between (src/engine/backends.py), on one
    # thread as a grid's jobs run (conf/hydra/launcher/joblib_2.yaml)
    for precision in ("fp32", "fp64"):
        for layout in ("false", "true"):
            runs[f"mini_{precision}_nhwc_{layout}_8px"] = run(
                "dataset.image_size=8", f"trainer.precision={precision}",
                f"trainer.channels_last={layout}", threads=1)
    cfg = training_config(device, MINI_STEPS, MINI_BATCH, "dataset.image_size=8")
    runs["mini_bare_8px"] = Repeat(BareRun(cfg, device), MINI_STEPS)
    runs["mini_seeds_8px"] = Repeat(StackedSeedsRun(cfg, device, MINI_SEEDS), MINI_STEPS)
    if not args.no_compile:
        runs["compile_mini_8px"] = run("dataset.image_size=8", "trainer.compile=true")
    return runs


class BareRun:
    """The plain PyTorch loop on the same architecture, built the same way."""

    def __init__(self, cfg, device: torch.device):
        data, self.model, _, _ = build(cfg, device)
        self.x, self.y = next(iter(data.train.epoch(0)))
        self.optimizer = torch.optim.SGD(self.model.parameters(), **BARE_SGD)

    def __call__(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            loss = F.cross_entropy(self.model(self.x), self.y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


class StackedSeedsRun:
    """`seeds` copies of the model updated as one, each on its own batch: torch.func's stacked
    parameters, vmap over the copies (convolutions become grouped ones), BareRun's SGD on the
    stacked tensors. Under vmap BatchNorm keeps no running statistics
    (replace_all_batch_norm_modules_), which an update's cost does not notice: this measures
    what training a figure's seeds together would cost, it is not a training path."""

    def __init__(self, cfg, device: torch.device, seeds: int):
        data, model, _, _ = build(cfg, device)
        torch.func.replace_all_batch_norm_modules_(model)
        params, buffers = torch.func.stack_module_state(
            [copy.deepcopy(model) for _ in range(seeds)])
        trained = {name for name, p in model.named_parameters() if p.requires_grad}
        self.params = {name: p.detach() for name, p in params.items() if name in trained}
        # frozen parameters (the norms' affines) go with the buffers: no gradient, no update
        self.buffers = buffers | {n: p.detach() for n, p in params.items() if n not in trained}
        self.optimizer = torch.optim.SGD(self.params.values(), **BARE_SGD)
        skeleton = copy.deepcopy(model).to("meta")

        def loss(params, buffers, x, y):
            return F.cross_entropy(torch.func.functional_call(skeleton, (params, buffers),
                                                              (x,)), y)
        self.gradients = torch.func.vmap(torch.func.grad(loss))
        x, y = next(iter(data.train.epoch(0)))
        self.x, self.y = x.expand(seeds, *x.shape).clone(), y.expand(seeds, *y.shape).clone()

    def __call__(self, steps: int) -> None:
        for _ in range(steps):
            grads = self.gradients(self.params, self.buffers, self.x, self.y)
            for name, p in self.params.items():
                p.grad = grads[name]
            self.optimizer.step()  # elementwise: the same update for every copy


def loaders(images: int, batch: int, device: torch.device, workers: int):
    """One pass of the device loader and one of torchvision's usual path (dataset.loader=torch)
    over the same images, each a callable; a new epoch (order, augmentation) each pass."""
    def train_loader(*overrides):
        cfg = compose_config(["dataset=synthetic", f"dataset.num_train={images}",
                              "dataset.num_test=1", "dataset.crop_padding=4",
                              "dataset.flip=true", *overrides])
        return build_data(cfg.dataset, batch_size=batch, seed=0, device=device,
                          dtype=torch.float32).train

    def one_pass(loader):
        epochs = iter(range(1_000_000))

        def run(_steps=None):
            for x, y in loader.epoch(next(epochs)):
                x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return run
    return (one_pass(train_loader()),
            one_pass(train_loader("dataset.loader=torch", f"dataset.num_workers={workers}")))


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
    modes = [(f"compile[{m}]", [*rungs[-1][1], f"trainer.compile_mode={m}"])
             for m in args.compile_modes if not args.no_compile]
    return rungs + modes, {"precision": precision, "bf16_native": native == "bf16",
                           "why": why, "bf16_rung": args.bf16, "support": support}


def contenders(args, device: torch.device, rungs) -> dict:
    """name -> a callable that runs args.steps updates (or a loader pass)."""
    def config(*overrides):
        return training_config(device, args.steps, args.batch, *overrides)

    runs = {"bare": BareRun(config(), device)}
    runs.update({name: FitRun(config(*overrides), device) for name, overrides in rungs})
    runs["fit_8px"] = FitRun(config("dataset.image_size=8"), device)
    runs["fit_all_sets"] = FitRun(config("trainer.track_params=all"), device)
    runs["tensor_loader"], runs["torchvision"] = loaders(args.images, args.batch, device,
                                                         args.workers)
    return runs | miniature(args, device)


def seconds(runs: dict, args) -> tuple[dict, dict, int | None]:
    """Mean seconds of one run of each contender, after torch.utils.benchmark.Timer's warm-up;
    the compiled ones' first step timed on its own (compile_s), before anything else runs."""
    compiled = {}
    for name in (n for n in runs if n.startswith("compile")):
        before, start = graphs_compiled(), timer()
        runs[name](1)
        compiled[name] = {"compile_s": timer() - start, "graphs": graphs_compiled() - before}
    after_compiling = graphs_compiled() if compiled else None
    means = {}
    for name, run in runs.items():
        threads = getattr(run, "threads", None) or torch.get_num_threads()
        measurement = Timer(stmt="run(steps)", globals={"run": run, "steps": args.steps},
                            num_threads=threads, label=name).timeit(args.rounds)
        means[name] = measurement.mean
    recompiles = graphs_compiled() - after_compiling if compiled else None
    return means, compiled, recompiles


def measure(args, device: torch.device) -> dict:
    rungs, chosen = ladder(args, device)
    means, compiled, recompiles = seconds(contenders(args, device, rungs), args)
    m = {name: s / args.steps for name, s in means.items()}  # seconds per step
    loader = {name: args.images / means[name] for name in ("tensor_loader", "torchvision")}
    steps_per_epoch = math.ceil(CIFAR_EPOCH / args.batch)
    switches, previous = [], None
    for name, _ in rungs:
        switches.append({"rung": name, "ms_per_step": m[name] * 1e3,
                         "images_per_s": args.batch / m[name],
                         "gain": None if previous is None else m[previous] / m[name],
                         "speedup_over_fp32": m["fp32"] / m[name], **compiled.get(name, {})})
        if not name.startswith("compile["):  # each mode is compared with the default mode
            previous = name
    fast = [name for name, _ in rungs if not name.startswith("compile[")][-1]
    mini = {name: means[name] / (args.steps * MINI_STEPS) * 1e3 for name in means
            if "mini_" in name}  # ms per update
    return {
        "mini": None if not mini else {"batch_size": MINI_BATCH, "ms_per_update": {
            size: mini[f"mini_{size}px"] for size in MINI_SIZES},
            "cost_16px_over_8px": mini["mini_16px"] / mini["mini_8px"],
            "compiled_8px_ms_per_update": mini.get("compile_mini_8px"),
            "compile_speedup_8px": mini["mini_8px"] / mini["compile_mini_8px"]
            if "compile_mini_8px" in mini else None,
            "compile_8px_first_run_s": compiled.get("compile_mini_8px", {}).get("compile_s"),
            "bare_8px_ms_per_update": mini["mini_bare_8px"],
            "seeds_stacked": MINI_SEEDS,
            "stacked_8px_ms_per_seed_update": mini["mini_seeds_8px"] / MINI_SEEDS,
            "stacking_speedup_8px": mini["mini_bare_8px"] * MINI_SEEDS / mini["mini_seeds_8px"],
            "layouts_8px_one_thread_ms_per_update": {
                p: {"contiguous": mini[f"mini_{p}_nhwc_false_8px"],
                    "channels_last": mini[f"mini_{p}_nhwc_true_8px"]} for p in ("fp32", "fp64")}},
        "overhead_ratio": m["fp32"] / m["bare"],
        "overhead_ratio_all_sets": m["fit_all_sets"] / m["bare"],
        "fit_all_sets_ms_per_step": m["fit_all_sets"] * 1e3,
        "loader_speedup": loader["tensor_loader"] / loader["torchvision"],
        "bare_ms_per_step": m["bare"] * 1e3, "fit_ms_per_step": m["fp32"] * 1e3,
        "fast_ms_per_step": m[fast] * 1e3,
        "tensor_loader_images_per_s": loader["tensor_loader"],
        "torchvision_images_per_s": loader["torchvision"],
        "fp32_images_per_s": args.batch / m["fp32"], "fast_images_per_s": args.batch / m[fast],
        "fp32_epoch_s": m["fp32"] * steps_per_epoch, "fast_epoch_s": m[fast] * steps_per_epoch,
        "fast_speedup": m["fp32"] / m[fast],
        "fit_8px_ms_per_step": m["fit_8px"] * 1e3, "resolution_speedup": m["fp32"] / m["fit_8px"],
        "switches": switches, "recompiles": recompiles,
        "compile_s": compiled.get("compile", {}).get("compile_s"),
        "fast_mode": {"precision": chosen["precision"], "channels_last": True,
                      "compile": not args.no_compile},
        "bf16": chosen, "model": "preresnet32", "batch_size": args.batch, "steps": args.steps,
        "rounds": args.rounds, "images": args.images, "workers": args.workers,
        "device": device.type, "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda" else cpu_model(), "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
