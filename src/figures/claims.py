"""A figure's claims, measured: named checks computed from its grid's finished jobs.

Each check reads the jobs' configs (LR, weight decay, momentum, milestones) and records (steps
per epoch, LRs, norms, accuracies), takes its theory from src/theory, and returns a Claim: the
statement, the numbers measured, the threshold and whether it holds. A grid too small to
decide (one seed, a run shorter than a milestone) gives a claim that holds neither way, with
the reason ("n/a: ...").
"""

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from src.figures.jobs import Job, series


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    threshold: str       # for people
    thresholds: dict     # the same as named numbers, for programs ({} when there is none)
    measured: dict
    holds: bool | None   # None: the records cannot decide it
    why: str = ""        # "n/a: ..." or what fell short; empty when it holds

    def verdict(self) -> str:
        return "n/a" if self.holds is None else "yes" if self.holds else "no"


class NotEvaluable(Exception):
    """The grid's records cannot decide the claim; the message says why."""


@dataclass(frozen=True)
class Check:
    name: str
    statement: str
    threshold: str
    # finished jobs -> (measured numbers, what fell short: empty when the claim holds)
    measure: Callable[[list[Job]], tuple[dict, list[str]]]
    thresholds: dict = field(default_factory=dict)  # the numbers `threshold` names

    def __call__(self, jobs: list[Job]) -> Claim:
        claim = Claim(self.name, self.statement, self.threshold, self.thresholds, {}, None)
        try:
            measured, failures = self.measure(jobs)
        except NotEvaluable as e:
            return replace(claim, why=f"n/a: {e}")
        return replace(claim, measured=measured, holds=not failures, why="; ".join(failures))


# Helpers the checks share: selecting jobs, reading lengths and finals from the records.

def where(jobs: list[Job], key: str, value) -> list[Job]:
    return [job for job in jobs if job.value(key) == value]


def need(jobs: list[Job], what: str) -> list[Job]:
    if not jobs:
        raise NotEvaluable(f"the grid has no finished {what} job")
    return jobs


def completed(jobs: list[Job], what: str, failures: list[str]) -> list[Job]:
    """The completed jobs; the diverged ones are written down as failures."""
    diverged = sum(job.status == "diverged" for job in jobs)
    if diverged:
        failures.append(f"{diverged} of {len(jobs)} {what} job(s) diverged")
    return [job for job in jobs if job.status == "completed"]


def seed_stats(jobs: list[Job], key: str) -> tuple[float, float, int]:
    """Mean, sample sd (NaN below 2) and number of the jobs' finite final values of key."""
    values = [v for v in (job.final(key) for job in jobs) if math.isfinite(v)]
    mean = statistics.fmean(values) if values else math.nan
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return mean, sd, len(values)


def steps_per_epoch(job: Job) -> int:
    """The update count of the record that closes the first whole epoch."""
    for r in job.records:
        if "train/epoch_loss" in r and float(r["epoch"]) == 1.0:
            return int(r["step"])
    raise NotEvaluable(f"{job.path.name} has no whole first epoch: steps per epoch unknown")


def total_steps(job: Job) -> int:
    steps = job.summary.get("steps")
    if not steps:
        raise NotEvaluable(f"{job.path.name}: its summary has no step count")
    return int(steps)


def points(job: Job, key: str, first: int = 0, end: float = math.inf) -> list[tuple[int, float]]:
    """(step, value) of the records of key with first <= step < end."""
    return [(int(r["step"]), float(r[key])) for r in job.records
            if key in r and first <= r["step"] < end]


def at_least_two(found: list, what: str) -> list:
    if len(found) < 2:
        raise NotEvaluable(f"fewer than 2 records of {what}")
    return found


def by_lr(jobs: list[Job]) -> dict[float, list[Job]]:
    """The jobs of each optimizer.lr, in increasing order of the LR."""
    groups: dict[float, list[Job]] = {}
    for job in sorted(jobs, key=lambda j: j.value("optimizer.lr")):
        groups.setdefault(float(job.value("optimizer.lr")), []).append(job)
    return groups


def seed(job: Job) -> str:
    return f"seed {job.value('seed')}"


# Inside a seed band: the means are float sums, a rounding above the band's edge is not out.
BAND_ROUNDING = 1e-12


def band_null_fraction(n_a: int, n_b: int, draws: int = 200_000) -> float:
    """How often two curves with the same distribution are outside each other's band at one
    epoch: the chance that the mean of n_a normal draws leaves the min-max of n_b others, or
    the other way round (Monte Carlo, fixed generator: the same number every time, +-0.002).
    0.75 for 2 seeds a curve, 0.51 for 3, 0.14 for 6: with few seeds the claim fails at some
    epoch even for a schedule and itself, which is what a reader must compare with."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((draws, n_a)), rng.standard_normal((draws, n_b))
    mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
    out = ((mean_a < b.min(axis=1)) | (mean_a > b.max(axis=1))
           | (mean_b < a.min(axis=1)) | (mean_b > a.max(axis=1)))
    return float(out.mean())


def band_check(name: str, what: str, key: str, a: tuple[str, str], b: tuple[str, str],
               aside: str = "") -> Check:
    """The claim that each curve's seed-mean of key (`what` in words) lies in the other's
    min-max band over seeds at every epoch both have; a and b are (schedule.name, label)."""
    def measure(jobs: list[Job]) -> tuple[dict, list[str]]:
        failures: list[str] = []
        sets = [completed(need(where(jobs, "schedule.name", name), f"schedule={name}"), label,
                          failures) for name, label in (a, b)]
        if min(len(s) for s in sets) < 2:
            raise NotEvaluable("a seed band needs at least 2 finished seeds per curve")
        (xa, ma, la, ha), (xb, mb, lb, hb) = (series(s, "epoch", key) for s in sets)
        at_a, at_b = ({x: i for i, x in enumerate(xs)} for xs in (xa, xb))
        common = sorted(at_a.keys() & at_b.keys())
        if not common:
            raise NotEvaluable(f"no epoch with {key} in both curves")
        excess = {}
        for x in common:
            i, j = at_a[x], at_b[x]
            excess[x] = max(ma[i] - hb[j], lb[j] - ma[i], mb[j] - ha[i], la[i] - mb[j], 0.0)
        outside = [x for x in common if excess[x] > BAND_ROUNDING]
        worst = max(common, key=excess.get)
        null = band_null_fraction(*(len(s) for s in sets))
        if outside:
            failures.append(f"{len(outside)} of {len(common)} epochs outside a band (the "
                            f"furthest: epoch {worst:g}, by {excess[worst]:.3g}); two curves "
                            f"of one distribution with these seeds: {null:.0%} of epochs")
        return {"epochs": len(common), "epochs_outside": len(outside),
                "largest_excess": excess[worst], "at_epoch": worst,
                "seeds": [len(s) for s in sets],
                "fraction_outside": len(outside) / len(common),
                "fraction_outside_if_same_distribution": null}, failures
    return Check(name, f"each curve's seed-mean {what} lies inside the other's min-max band "
                 f"over seeds at every epoch{aside}", "inside", measure,
                 {"rounding": BAND_ROUNDING})
