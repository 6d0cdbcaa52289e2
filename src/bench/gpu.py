"""The GPU acceptance check: one command, one JSON file.

python -m src.bench --suite gpu [--device cuda|cpu] [--out FILE] [--work DIR]
                                [--bench-steps N] [--images N] [--image-size N]
                                [--no-compile]
scripts/gpu_check.sh [same options]

Parts, each passed, failed or skipped (with the reason), timed, in the order run:

* bench: the bench's measure (src/bench/speed.py: images/s in fp32 and in the fast mode,
  each switch's gain, overhead ratio, loader ratio, compile time and recompiles);
* verify: the verifier (src/verify.py) in float64 on the device, trainer.deterministic=true:
  the corrected twins within 1e-9 in weights and outputs, as on a CPU;
* fast_run: paper A's Figure 1 setting (+experiment=exp_lr) in the fast mode (trainer=fast)
  on CIFAR-shaped synthetic data for two epochs, with trainer.renormalize_above just above the
  initial norm: every record finite, the overflow guard triggered at least once;
* resume: the same setting in fp32 with trainer.deterministic=true, killed with SIGKILL
  mid-run and relaunched: metrics.jsonl byte-identical to an uninterrupted run;
* torchrun: torchrun --nproc_per_node=1, and 2 processes over NCCL where there are 2 GPUs,
  with trainer.sync_batchnorm=true (CUDA only).

--device cpu runs what a CPU can (no SyncBatchNorm, one process) and says what it skipped, so
CI runs the check too. The exit status is 0 when no part failed.
"""

import argparse
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from src.bench.speed import measure, options
from src.config.resolvers import compose_config
from src.tracking.run_format import read_metrics, read_summary

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-9  # the corrected twins in float64 (a CPU gives 1e-15 to 1e-14)
# CIFAR-shaped synthetic data (32x32, 10 classes; --image-size) under Figure 1's recipe, no W&B
FIGURE_1 = ["+experiment=exp_lr", "dataset=synthetic", "logger=none"]


def figure_1(args) -> list[str]:
    return [*FIGURE_1, f"dataset.image_size={args.image_size}"]


class Failed(Exception):
    """A part's check did not hold; the message says which."""


def python(*args: str, env: dict | None = None, timeout: float = 900) -> str:
    """Run `python ARGS` in the repository; its stdout, or Failed with its stderr's tail."""
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        raise Failed(f"{' '.join(args[:3])} ... exited with {done.returncode}: "
                     f"{done.stderr.strip()[-1500:]}")
    return done.stdout


records, summary = read_metrics, read_summary


def all_finite(rows: list[dict]) -> bool:
    return all(math.isfinite(v) for row in rows for v in row.values()
               if isinstance(v, float))


# src.bench's numbers the report keeps (tests/test_bench.py checks the bench writes them all)
BENCH_KEYS = ("fp32_images_per_s", "fast_images_per_s", "fast_speedup", "overhead_ratio",
              "loader_speedup", "fast_mode", "switches", "compile_s", "recompiles", "device_name")


def part_bench(args, work: Path) -> dict:
    cpu = {"rounds": 1, "images": 1024} if args.device == "cpu" else {}
    result = measure(options(args.device, steps=args.bench_steps, compile_modes=[],
                             no_compile=args.no_compile, miniature=False, **cpu),
                     torch.device(args.device))  # the check reports no miniature numbers
    return {key: result[key] for key in BENCH_KEYS}


def part_verify(args, work: Path) -> dict:
    from src.verify import verify

    run_dir = work / "verify"
    run_dir.mkdir(parents=True, exist_ok=True)
    return judge_verify(verify(compose_config(
        [f"trainer.device={args.device}", "trainer.precision=fp64", "trainer.deterministic=true"],
        config_name="verify"), run_dir))


def judge_verify(result: dict) -> dict:
    """The verify part's entry from src.verify's result: Failed if a corrected twin is beyond
    TOLERANCE in its weights or outputs."""
    worst = {pair: twins["corrected"] for pair, twins in result["pairs"].items()}
    off = {pair: dev for pair, dev in worst.items()
           if max(dev["max_rel_param_dev"], dev["max_abs_output_dev"]) > TOLERANCE}
    if off:
        raise Failed(f"corrected twins beyond {TOLERANCE}: {off}")
    return {"steps": result["steps"], "tolerance": TOLERANCE, "corrected": worst,
            "uncorrected": {p: t["uncorrected"] for p, t in result["pairs"].items()}}


def initial_norm(overrides: list[str]) -> float:
    """The scale-invariant group's norm at initialisation (the overflow guard's target)."""
    from src.config.prepare import prepare
    from src.engine.build import build

    cfg = prepare(compose_config([*overrides, "trainer.device=cpu", "trainer.precision=fp32",
                          "trainer.compile=false", "dataset.num_train=128", "dataset.num_test=1"]))
    _, _, optimizer, _ = build(cfg, torch.device("cpu"))
    group = next(g for g in optimizer.param_groups if g["name"] == "scale_invariant")
    return float(torch.nn.utils.get_total_norm(group["params"]))


def sizes(args) -> list[str]:
    train = args.images or (50_000 if args.device == "cuda" else 512)
    return [f"dataset.num_train={train}", f"dataset.num_test={min(train, 10_000)}",
            "trainer.epochs=2", f"trainer.device={args.device}"]


def part_fast_run(args, work: Path) -> dict:
    run_dir = work / "fast_run"
    target = initial_norm(figure_1(args))
    above = target * (1 + 1e-5)  # the first updates cross it
    fast = ["trainer=fast", *(["trainer.compile=false"] if args.no_compile else [])]
    python("-m", "src.train", *figure_1(args), *sizes(args), *fast,
           f"trainer.renormalize_above={above!r}", "trainer.renormalize_every_n_steps=1",
           "trainer.log_every_n_steps=5", f"hydra.run.dir={run_dir}")
    rows, done = records(run_dir), summary(run_dir)
    scales = [r["si/renorm_scale"] for r in rows if "si/renorm_scale" in r]
    precision = json.loads((run_dir / "metadata.json").read_text())["backends"]["precision"]
    out = {"run_status": done["status"], "steps": done.get("steps"), "records": len(rows),
           "precision": precision, "renormalize_above": above,
           "renorm_scale_last": scales[-1] if scales else None,
           "test_acc": done.get("test/acc"), "wall_time_s": done.get("wall_time_s")}
    if done["status"] != "completed" or not all_finite(rows):
        raise Failed(f"the fast run is not finite: status {done['status']}")
    if not scales or all(s == 1.0 for s in scales):
        raise Failed("the overflow guard never triggered (si/renorm_scale stayed 1)")
    return out


def part_resume(args, work: Path) -> dict:
    train = 2048 if args.device == "cuda" else 128
    run = ["-m", "src.train", *figure_1(args), f"dataset.num_train={train}",
           "dataset.num_test=128",
           "trainer.epochs=2", "trainer.batch_size=32", f"trainer.device={args.device}",
           "trainer.precision=fp32", "trainer.deterministic=true",
           "trainer.log_every_n_steps=1", "trainer.checkpoint_every_n_steps=2"]
    reference, resumed = work / "resume_reference", work / "resume_killed"
    python(*run, f"hydra.run.dir={reference}")
    total = len(records(reference))
    process = subprocess.Popen([sys.executable, *run, f"hydra.run.dir={resumed}"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_at = total // 2  # records: past the first checkpoints, before the end
    while len(records(resumed)) < kill_at and process.poll() is None:
        time.sleep(0.005)
    if process.poll() is not None:
        raise Failed(f"the run ended before it could be killed: {process.stderr.read()[-800:]}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(records(resumed))
    python(*run, f"hydra.run.dir={resumed}")
    same = (reference / "metrics.jsonl").read_bytes() == (resumed / "metrics.jsonl").read_bytes()
    out = {"records": total, "killed_after_records": killed_at, "byte_identical": same,
           "resumes": len((resumed / "resumes.jsonl").read_text().splitlines())
           if (resumed / "resumes.jsonl").exists() else 0}
    if not same:
        raise Failed("metrics.jsonl after SIGKILL and resume differs from the reference")
    if out["resumes"] < 1:
        raise Failed("the relaunch did not resume from a checkpoint")
    return out


def part_torchrun(args, work: Path) -> dict:
    cuda = args.device == "cuda"
    gpus = torch.cuda.device_count() if cuda else 0
    out, skipped = {"gpus": gpus}, []
    counts = [1] + ([2] if gpus >= 2 else [])
    if gpus < 2:
        skipped.append("2 processes: needs 2 GPUs" if cuda else "2 processes over NCCL: CPU")
    if not cuda:
        skipped.append("trainer.sync_batchnorm=true: SyncBatchNorm has no CPU kernels")
    for n in counts:
        run_dir = work / f"torchrun_{n}"
        python("-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
               "-m", "src.train", *figure_1(args), "dataset.num_train=1024",
               "dataset.num_test=128",
               "trainer.epochs=1", f"trainer.device={args.device}",
               f"trainer.sync_batchnorm={'true' if cuda else 'false'}",
               f"hydra.run.dir={run_dir}")
        done = summary(run_dir)
        out[f"nproc_{n}"] = {"status": done["status"], "steps": done.get("steps"),
                             "test_acc": done.get("test/acc")}
        if done["status"] != "completed" or not all_finite(records(run_dir)):
            raise Failed(f"torchrun with {n} processes: {done['status']}")
    # With one process torchrun sets WORLD_SIZE=1 and the run starts no process group, so
    # NCCL and SyncBatchNorm are exercised by the 2-process run only.
    out["note"] = "1 process: no process group (WORLD_SIZE=1); NCCL and SyncBatchNorm need 2"
    out["skipped"] = skipped
    return out


PARTS = {"bench": part_bench, "verify": part_verify, "fast_run": part_fast_run,
         "resume": part_resume, "torchrun": part_torchrun}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.bench --suite gpu", allow_abbrev=False,
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="the JSON file (default: outputs/gpu_check/<time>.json)")
    parser.add_argument("--work", help="folder for the runs (default: a temporary one)")
    parser.add_argument("--bench-steps", type=int, help="src.bench --steps")
    parser.add_argument("--images", type=int,
                        help="training images of the fast run (cuda 50,000, cpu 512)")
    parser.add_argument("--image-size", type=int, default=32,
                        help="side of the synthetic images of the runs (CIFAR's 32; 8 for a "
                        "quick check on a CPU)")
    parser.add_argument("--no-compile", action="store_true", help="the fast mode without "
                        "torch.compile (bench and fast run)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (use --device cpu)")
    parts = args.parts.split(",")
    unknown = [p for p in parts if p not in PARTS]
    if unknown or (args.images is not None and args.images < 128) or (
            args.bench_steps is not None and args.bench_steps < 1) or args.image_size < 1:
        parser.error(f"--parts: use {', '.join(PARTS)}; --images >= 128; --bench-steps >= 1; "
                     "--image-size >= 1")
    stamp = datetime.datetime.now().astimezone()
    out = Path(args.out or ROOT / "outputs" / "gpu_check" / f"{stamp:%Y-%m-%d_%H-%M-%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": args.device, "gpu": torch.cuda.get_device_name(0)
              if args.device == "cuda" else None, "gpus": torch.cuda.device_count(),
              "torch": torch.__version__, "date": stamp.isoformat(timespec="seconds"),
              "command": " ".join(sys.orig_argv), "parts": {}}
    if args.device == "cpu":
        report["skipped"] = ["CUDA: this run is on the CPU; tf32 and deterministic change "
                             "nothing there, NCCL and SyncBatchNorm are not run"]
    # cuBLAS reads it when it starts: set before any child process touches CUDA
    env_before = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(args.work or tmp)
        for name in parts:
            began = time.perf_counter()
            try:
                entry = {"status": "passed", **PARTS[name](args, work)}
            except (Failed, subprocess.TimeoutExpired) as e:
                entry = {"status": "failed", "error": str(e)}
            entry["seconds"] = round(time.perf_counter() - began, 1)
            report["parts"][name] = entry
            print(f"{name:<9} {entry['status']:<7} {entry['seconds']:7.1f} s"
                  + (f"  {entry['error'][:300]}" if "error" in entry else ""), flush=True)
            out.write_text(json.dumps(report, indent=2) + "\n")  # kept if a later part hangs
    if env_before is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG")
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["passed"] = all(p["status"] == "passed" for p in report["parts"].values())
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'passed' if report['passed'] else 'FAILED'} in {report['seconds']} s: {out}")
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
