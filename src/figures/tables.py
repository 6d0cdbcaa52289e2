"""A grid's numbers beside the paper's, and its claims, measured: table.md for people and
table.json (the same numbers, unrounded) for programs.

table.json: {"figure", "title", "grid", "setting", "jobs": {status: count}, "note",
"rows": [{"curve", "facet", "sweep", "metric", "mean", "sd", "n", "diverged", "jobs",
"paper": null | {"low", "high", "source", "setting"}, "difference": number | null,
"difference_text"}], "claims": [{"name", "statement", "threshold", "thresholds", "measured",
"holds": true | false | null, "why"}]}. "threshold" is the claim's bound in words,
"thresholds" the numbers it names ({"growth": 1e10}; {} for a claim with none, such as one
comparing two measured numbers). Non-finite numbers are written as strings ("nan", "inf").
"""

import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from src.figures.claims import Claim, seed_stats
from src.figures.figure import Figure, PaperNumber
from src.figures.jobs import Job, finished, setting
from src.figures.registry import get_figure
from src.tracking.run_format import FINAL, jsonable


def claims(name: str, jobs: list[Job]) -> list[Claim]:
    """The named figure's claims, measured on its finished jobs."""
    return [check(finished(jobs)) for check in get_figure(name).checks]


def _difference(paper: PaperNumber, mean: float, jobs: list[Job]) -> tuple[float | None, str]:
    other = sorted({f"{k}={job.value(k)}" for job in jobs for k, v in paper.setting.items()
                    if job.value(k) != v})
    if other:
        return None, "n/a: not the paper's setting (" + ", ".join(other) + ")"
    if not math.isfinite(mean):
        return None, "n/a"
    difference = mean - (paper.low + paper.high) / 2
    if paper.low <= mean <= paper.high and paper.low < paper.high:
        return difference, "within the range"
    return difference, f"{difference:+.3f}"


def rows(figure: Figure, groups: dict) -> list[dict]:
    """One row per curve and final metric: the seed statistics and the paper's number."""
    out = []
    for (facet, label, x), group in groups.items():
        for key in figure.final:
            mean, sd, n = seed_stats(group, key)
            paper = next((p for p in figure.paper if p.curve == label and p.key == key), None)
            difference, text = _difference(paper, mean, group) if paper else (None, "—")
            out.append({"curve": label, "facet": facet, "sweep": x, "metric": key,
                        "mean": mean, "sd": sd, "n": n,
                        "diverged": sum(job.status == "diverged" for job in group),
                        "jobs": len(group), "paper": paper and {
                            "low": paper.low, "high": paper.high, "source": paper.source,
                            "setting": paper.setting},
                        "difference": difference, "difference_text": text})
    return out


def _curve_name(figure: Figure, row: dict) -> str:
    facet, x = row["facet"], row["sweep"]
    return ", ".join(str(p) for p in (facet and f"{figure.facet}={facet}", row["curve"],
                                      x is not None and f"{figure.sweep}={x}") if p)


def _ours(row: dict) -> str:
    mean, sd, n = row["mean"], row["sd"], row["n"]
    return (f"{mean:.4g} ± {sd:.2g} ({n})" if n > 1 else f"{mean:.4g} (1)" if n else "—")


def _numbers(measured: dict) -> str:
    """measured as text: `name value, ...`, a nested dict as `name: (...)`."""
    items = []
    for key, value in measured.items():
        if isinstance(value, dict):
            items.append(f"{key}: ({_numbers(value)})")
        else:
            items.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(items)


def note(found: list[Claim], where: str) -> str:
    """Where a claim does not show, and why."""
    failed = [f"`{c.name}` does not hold ({c.why})" for c in found if c.holds is False]
    open_ = [f"`{c.name}` ({c.why})" for c in found if c.holds is None]
    return " ".join(([f"At this budget ({where}): " + "; ".join(failed) + "."] if failed else [])
                    + (["Not decided by these records: " + "; ".join(open_) + "."] if open_
                       else []))


def markdown(name: str, figure: Figure, jobs: list[Job], table_rows: list[dict],
             found: list[Claim], sweep_dir: Path) -> str:
    counts = Counter(job.status for job in jobs)
    where = setting(finished(jobs))
    lines = [f"# {name}: {figure.title}", "",
             f"Grid `{sweep_dir}`: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f". Setting: {where}.", ""]
    if counts.keys() - set(FINAL):
        lines += ["Jobs that did not finish are left out of the figure and the table.", ""]
    for text in (figure.note, note(found, where)):
        if text:
            lines += [text, ""]
    lines += ["| curve | metric | ours: mean ± sd (n) | diverged | paper | source | difference |",
              "|---|---|---|---|---|---|---|"]
    for row in table_rows:
        paper = row["paper"]
        cells = ([PaperNumber(row["curve"], row["metric"], paper["low"], paper["high"],
                              paper["source"]).text(), paper["source"], row["difference_text"]]
                 if paper else ["—", "—", "—"])
        lines.append(f"| {_curve_name(figure, row)} | {row['metric']} | {_ours(row)} | "
                     f"{row['diverged']}/{row['jobs']} | " + " | ".join(cells) + " |")
    if found:
        lines += ["", "## Claims", "", "| claim | statement | measured | threshold | holds |",
                  "|---|---|---|---|---|"]
        for claim in found:
            measured = _numbers(claim.measured) or claim.why
            verdict = claim.verdict() if claim.holds is not False else f"no: {claim.why}"
            cells = (claim.name, claim.statement, measured, claim.threshold, verdict)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _plain(value):
    """JSON-ready: nested containers, non-finite floats as strings, numpy scalars as floats."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return jsonable(value)


def to_json(name: str, figure: Figure, jobs: list[Job], table_rows: list[dict],
            found: list[Claim], sweep_dir: Path) -> str:
    where = setting(finished(jobs))
    data = {"figure": name, "title": figure.title, "grid": str(sweep_dir), "setting": where,
            "jobs": dict(Counter(job.status for job in jobs)),
            "note": " ".join(t for t in (figure.note, note(found, where)) if t),
            "rows": table_rows, "claims": [asdict(claim) for claim in found]}
    return json.dumps(_plain(data), indent=1) + "\n"
