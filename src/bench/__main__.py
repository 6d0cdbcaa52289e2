"""python -m src.bench [--json] [--device cpu|cuda] [--steps N] [--rounds R] [--images N]
                    [--batch B] [--workers W] [--no-compile] [--compile-modes M,...]
                    [--bf16 auto|on|off]
python -m src.bench --suite gpu [options of src/bench/gpu.py]

The speed of the training path, side by side in one run (src/bench/__init__.py says what each
number is); --json ends stdout with one line of JSON holding every number.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from src.bench.speed import BATCH, measure, options
from src.bench.table import results_section, table, write_section
from src.engine.backends import COMPILE_MODES


def parse(argv: list[str]):
    parser = argparse.ArgumentParser(prog="python -m src.bench", allow_abbrev=False,
                                     description="Speed of the training path, measured side "
                                     "by side in one process.")
    parser.add_argument("--json", action="store_true",
                        help="end stdout with one line of JSON holding every number")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="updates per timed run (cpu 6, cuda 200)")
    parser.add_argument("--rounds", type=int, help="timed runs of each contender (3)")
    parser.add_argument("--images", type=int,
                        help="images per loader pass (cpu 5,000, cuda 50,000)")
    parser.add_argument("--batch", type=int, help=f"images per update, training and loading "
                        f"({BATCH})")
    parser.add_argument("--workers", type=int,
                        help="torchvision DataLoader workers (default: min(4, cpu count))")
    parser.add_argument("--no-compile", action="store_true",
                        help="fast mode without torch.compile")
    parser.add_argument("--compile-modes", help="comma-separated torch.compile modes to time "
                        "besides the default (cuda: max-autotune,reduce-overhead; cpu: none)")
    parser.add_argument("--bf16", choices=("auto", "on", "off"),
                        help="the bf16 rung: where native (auto), always, never")
    parser.add_argument("--results", type=Path, help="also write the table as the `Bench` "
                        "section of this markdown file (e.g. benchmarks/RESULTS.md)")
    parser.add_argument("--suite", choices=("gpu",), help="run the GPU acceptance check "
                        "(src/bench/gpu.py; --suite gpu --help) instead")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    modes = None if args.compile_modes is None else [
        m for m in args.compile_modes.split(",") if m and m != "default"]
    unknown = [m for m in modes or () if m not in COMPILE_MODES]
    if unknown:
        parser.error(f"--compile-modes: {unknown} unknown; use {', '.join(COMPILE_MODES)}")
    chosen = options(args.device, steps=args.steps, rounds=args.rounds, images=args.images,
                     batch=args.batch, workers=args.workers, no_compile=args.no_compile,
                     compile_modes=modes, bf16=args.bf16)
    if min(chosen.steps, chosen.rounds, chosen.images, chosen.batch) < 1 or chosen.workers < 0:
        parser.error("--steps, --rounds, --images and --batch must be >= 1, --workers >= 0")
    chosen.results = args.results
    return args.json, chosen


def main(argv: list[str]) -> None:
    suite = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    suite.add_argument("--suite", choices=("gpu",))
    chosen, rest = suite.parse_known_args(argv)
    if chosen.suite:
        from src.bench import gpu  # the acceptance check takes the other options

        return gpu.main(rest)
    as_json, args = parse(argv)
    result = measure(args, torch.device(args.device))
    print(table(result))
    if args.results:
        write_section(args.results, "## Bench",
                      results_section(result, "python -m src.bench " + " ".join(argv)))
    if as_json:
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
