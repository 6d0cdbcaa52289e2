"""A figure's claims, measured: named checks computed from its grid's finished jobs.

Each check reads the jobs' configs (LR, weight decay, momentum, milestones) and records (steps
per epoch, LRs, norms, accuracies), takes its theory from src/theory, and returns a Claim: the
statement, the numbers measured, the threshold and whether it holds. A grid too small to
decide (one seed, a run shorter than a milestone) gives a claim that holds neither way, with
the reason ("n/a: ...").
"""

import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from src.figures.jobs import Job


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


SIGNIFICANCE = 0.05  # a permutation test's level: p below it tells two distributions apart


def seed_curves(jobs: list[Job], key: str) -> dict[float, list[float]]:
    """epoch -> the jobs' values of key, at the epochs where every job has it."""
    at: dict[float, list[float]] = {}
    for job in jobs:
        for x, v in job.points("epoch", key):
            at.setdefault(x, []).append(v)
    return {x: v for x, v in sorted(at.items()) if len(v) == len(jobs)}


def permutation_test(a: np.ndarray, b: np.ndarray, draws: int = 20_000) -> tuple[float, float]:
    """(statistic, p) for two sets of curves, a (seeds, points) and b (seeds, points): the
    statistic is the mean over the points of |mean of a's seeds - mean of b's|, p the fraction
    of relabellings of the seeds into groups of the same sizes whose statistic is at least it:
    all of them when there are at most `draws`, else `draws` drawn from a fixed generator."""
    pooled, n = np.concatenate([a, b]), len(a)

    def statistic(first) -> float:
        rest = np.setdiff1d(np.arange(len(pooled)), first)
        return float(np.abs(pooled[first].mean(0) - pooled[rest].mean(0)).mean())

    observed = statistic(np.arange(n))
    if math.comb(len(pooled), n) <= draws:
        splits = [np.array(s) for s in itertools.combinations(range(len(pooled)), n)]
    else:
        rng = np.random.default_rng(0)
        splits = [rng.permutation(len(pooled))[:n] for _ in range(draws)]
    values = np.array([statistic(s) for s in splits])
    at_least = int(np.sum(values >= observed * (1 - 1e-12)))
    if math.comb(len(pooled), n) <= draws:  # every split counted, the observed one among them
        return observed, at_least / len(values)
    return observed, (1 + at_least) / (1 + draws)  # the observed split counts as one drawn


def distribution_check(name: str, what: str, key: str, a: tuple[str, str, object],
                       b: tuple[str, str, object]) -> Check:
    """The claim that two curves' seed sets are one distribution in key (`what` in words):
    a permutation test over seed labels does not tell them apart at SIGNIFICANCE, with the
    same test between two halves of a's seeds beside it as the control. a, b: (config key,
    label, value) selecting each curve's jobs."""
    def measure(jobs: list[Job]) -> tuple[dict, list[str]]:
        failures: list[str] = []
        sets = [completed(need(where(jobs, k, v), f"{k}={v}"), label, failures)
                for k, label, v in (a, b)]
        if min(len(s) for s in sets) < 3:
            if failures:  # seeds lost to divergence: a result, not a grid too small
                return {"seeds": [len(s) for s in sets]}, failures
            raise NotEvaluable("the test needs at least 3 finished seeds a curve")
        curves = [seed_curves(s, key) for s in sets]
        common = sorted(curves[0].keys() & curves[1].keys())
        if not common:
            raise NotEvaluable(f"no epoch with {key} in every job of both curves")
        arrays = [np.array([c[x] for x in common]).T for c in curves]
        statistic, p = permutation_test(*arrays)
        half = len(arrays[0]) // 2
        control, control_p = permutation_test(arrays[0][:half], arrays[0][half:])
        if p < SIGNIFICANCE:
            failures.append(f"told apart: p = {p:.3g} (statistic {statistic:.3g})")
        return {"statistic": statistic, "p": p, "seeds": [len(s) for s in sets],
                "epochs": len(common), "control": {"statistic": control, "p": control_p,
                                                   "seeds": [half, len(arrays[0]) - half]}}, \
            failures
    return Check(name, f"{a[1]} and {b[1]}: their seeds' {what} curves are one distribution "
                 "(a permutation test over seed labels, the statistic the mean over epochs of "
                 "the seed-means' absolute difference, does not reject at the level; the "
                 f"same test between two halves of {a[1]}'s seeds is the control)",
                 f"p >= {SIGNIFICANCE:g}", measure, {"significance": SIGNIFICANCE})
