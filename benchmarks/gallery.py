"""Every figure grid in miniature, one after another, timed; then the docs' figure pages.

python -m benchmarks.gallery [--only exp_lr,fig_a,...] [--out DIR] [--docs docs/figures]
                             [--results benchmarks/RESULTS.md] [--dry-run]

Runs the main job (`python -m src.train +experiment=exp_lr dataset=digits budget=mini`) and
each figure grid (`python -m src.train +experiment=<fig> dataset=digits budget=mini`) as a
subprocess, each a fresh launch into its own folder under --out (default
outputs/gallery/<UTC time>/), printing each one's progress and wall time. Then it writes the
docs from the grids' tables (`python -m src.figures --docs DOCS GRID ...`) and replaces the
"Gallery" section of RESULTS.md with each run's wall time, the claims that hold and that do
not, when it ran, the total, and the machine (CPU model, cores, torch version). --only runs a
subset: its rows replace theirs and the other runs' rows stay, each with its own date and
machine (the section keeps its rows as JSON in a comment); --dry-run prints the commands and
runs nothing.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.bench.table import write_section

ROOT = Path(__file__).resolve().parents[1]
MAIN = "exp_lr"
MINI = ("dataset=digits", "budget=mini")
HEADING = "## Gallery"
ROWS = re.compile(r"^<!-- gallery rows: (.*) -->$", re.MULTILINE)


def figure_grids() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("fig_*.yaml"))


@dataclass
class Result:
    name: str
    folder: Path
    seconds: float = 0.0
    exit_status: int = 0
    claims: dict = field(default_factory=lambda: {True: [], False: [], None: []})
    machine: str = ""   # CPU model, cores, torch version
    date: str = ""      # UTC, when the run ended


def parse(argv=None) -> argparse.Namespace:
    known = [MAIN, *figure_grids()]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gallery",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(known)}")
    parser.add_argument("--out", type=Path, help="the runs' folder (default: "
                        "outputs/gallery/<UTC time>; it must not exist yet)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    chosen = [n for n in (args.only or "").split(",") if n] or known
    unknown = [n for n in chosen if n not in known]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    args.names = [n for n in known if n in chosen]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d_%H-%M-%S")
    args.out = (args.out or ROOT / "outputs" / "gallery" / stamp).resolve()
    if args.out.exists() and any(args.out.iterdir()) and not args.dry_run:
        parser.error(f"--out {args.out} is not empty: each gallery is a fresh launch")
    return args


def command(name: str, folder: Path) -> list[str]:
    """The run's command line, run in the repository's root (folder relative to it when it is
    inside: the tables and the docs then name the grid by a path that means something)."""
    where = "hydra.run.dir" if name == MAIN else "hydra.sweep.dir"
    folder = folder.resolve()
    if folder.is_relative_to(ROOT):
        folder = folder.relative_to(ROOT)
    return [sys.executable, "-m", "src.train", f"+experiment={name}", *MINI, f"{where}={folder}"]


def claims_of(folder: Path) -> dict:
    """The grid's claims by verdict (True, False, None), from its table.json."""
    found = {True: [], False: [], None: []}
    table = folder / "table.json"
    if table.is_file():
        for claim in json.loads(table.read_text())["claims"]:
            found[claim["holds"]].append(claim["name"])
    return found


def run(names: list[str], out: Path) -> list[Result]:
    results = []
    for i, name in enumerate(names, 1):
        result = Result(name, out / name)
        cmd = command(name, result.folder)
        print(f"[{i}/{len(names)}] {name}: python {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        result.exit_status = subprocess.run(cmd, cwd=ROOT).returncode
        result.seconds = time.perf_counter() - start
        result.claims = claims_of(result.folder)
        result.machine, result.date = machine(), now()
        print(f"[{i}/{len(names)}] {name}: {duration(result.seconds)}, exit status "
              f"{result.exit_status}", flush=True)
        results.append(result)
    return results


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def machine() -> str:
    """CPU model (with its widest vector unit: one model name covers CPUs 2-3x apart),
    cores and torch version, for the record."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines
                      if line.startswith("model name")), model)
        flags = next((line.split(":", 1)[1].split() for line in lines
                      if line.startswith("flags")), [])
        vector = "AVX-512" if "avx512f" in flags else "AVX2 only" if "avx2" in flags else ""
        model += f" ({vector})" if vector else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    return f"{model}, {cores} cores, torch {torch}"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def earlier_rows(path: Path) -> list[Result]:
    """The runs the Gallery section of `path` holds, read back from its rows' comment."""
    found = ROWS.search(path.read_text()) if path.is_file() else None
    if not found:
        return []
    rows = json.loads(found.group(1))
    for row in rows:
        row["folder"] = Path(row["folder"])
        row["claims"] = {True: row["claims"]["holds"], False: row["claims"]["fails"],
                         None: row["claims"]["undecided"]}
    return [Result(**row) for row in rows]


def merged(earlier: list[Result], new: list[Result], order: list[str]) -> list[Result]:
    """The new runs' rows, and the earlier rows of the runs not re-run, in `order`."""
    by_name = {r.name: r for r in earlier} | {r.name: r for r in new}
    return [by_name[name] for name in order if name in by_name]


def section(results: list[Result]) -> str:
    """The Gallery section of RESULTS.md, its rows also as JSON in a comment (read back by a
    later --only run)."""
    def names(found: list[str]) -> str:
        return ", ".join(f"`{n}`" for n in found) or "—"

    machines = list(dict.fromkeys(r.machine for r in results))
    mark = {m: "" for m in machines} if len(machines) == 1 else {
        m: f" ({i})" for i, m in enumerate(machines, 1)}
    where = (f"Machine: {machines[0]}." if len(machines) == 1 else "Machines: " + "; ".join(
        f"({i}) {m}" for i, m in enumerate(machines, 1)) + ".")
    lines = [HEADING, "",
             "`python -m benchmarks.gallery` (written by it: run it again to replace this "
             "section, or with --only to replace some rows). Each run is `python -m src.train "
             "+experiment=NAME dataset=digits budget=mini`, a fresh launch, one after another. "
             f"{where}", "",
             "| run | wall time | exit status | claims that hold | do not hold | undecided | "
             "ended |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        label = f"{r.name} (the main job)" if r.name == MAIN else r.name
        lines.append(f"| {label} | {duration(r.seconds)} | {r.exit_status} | "
                     f"{names(r.claims[True])} | {names(r.claims[False])} | "
                     f"{names(r.claims[None])} | {r.date}{mark[r.machine]} |")
    total = sum(r.seconds for r in results)
    rows = [asdict(r) | {"folder": str(r.folder), "claims": {
        "holds": r.claims[True], "fails": r.claims[False], "undecided": r.claims[None]}}
        for r in results]
    lines += [f"| **total** | **{duration(total)}** | | | | | |", "",
              f"<!-- gallery rows: {json.dumps(rows)} -->", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse(argv)
    if args.dry_run:
        for name in args.names:
            print(" ".join(["python", *command(name, args.out / name)[1:]]))
        return 0
    results = run(args.names, args.out)
    grids = [command(r.name, r.folder)[-1].split("=", 1)[1] for r in results
             if r.name != MAIN and (r.folder / "table.json").is_file()]
    docs = subprocess.run([sys.executable, "-m", "src.figures", "--docs", str(args.docs),
                           *grids], cwd=ROOT).returncode
    every = [MAIN, *figure_grids()]
    write_section(args.results, HEADING,
                  section(merged(earlier_rows(args.results), results, every)))
    print(f"gallery: {duration(sum(r.seconds for r in results))} in all; docs exit status {docs}; "
          f"{args.results} updated")
    return 1 if docs or any(r.exit_status for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
