"""Claims of paper B's LR sweep and rates, paper C's equilibrium and paper A's toy example."""

import math
import statistics

from src.figures.claims import Check, NotEvaluable, completed, need, seed_stats, where
from src.figures.jobs import MIN_GRAD_SQ
from src.theory.toy import CASES

LOSS_RATIO = 2.0   # paper B: SGD's final training loss at the largest LR within 2x of its best
LARGE_LR = 10.0    # paper B (recalled, unconfirmed): without normalisation LRs >= 10 diverge
EFFECTIVE_LR_SPREAD = 0.05  # paper C: the curves' final effective LRs, max/min - 1
LOSS = "train/epoch_loss_last5"
# Paper B's rates: min_{t<T} ||grad F||^2 = O~(1/T) for GD, O~(1/sqrt(T)) for SGD. The fitted
# log-log slope over the run's second half must reach these (a log factor and a finite run
# leave room: -0.8 for -1, -0.4 for -0.5).
RATES = {"gd": (-1.0, -0.8), "sgd": (-0.5, -0.4)}
DECADES_ABOVE_BEST = 2  # the LRs the GD claim covers reach 100x the best LR at least


def _sgd(jobs):
    """Plain SGD on the normalised net: not projected, normalisation on."""
    return need([job for job in jobs if job.value("model.norm") != "none"
                 and not job.value("optimizer.projected")], "SGD with normalisation")


def _by_lr(jobs) -> dict[float, list]:
    groups: dict[float, list] = {}
    for job in sorted(jobs, key=lambda j: j.value("optimizer.lr")):
        groups.setdefault(float(job.value("optimizer.lr")), []).append(job)
    return groups


def sgd_trains_measure(jobs):
    measured, failures = {}, []
    for lr, group in _by_lr(_sgd(jobs)).items():
        diverged = sum(job.status == "diverged" for job in group)
        measured[f"lr={lr:g}"] = {"diverged": diverged, "jobs": len(group)}
        if diverged:
            failures.append(f"{diverged} of {len(group)} diverged at lr={lr:g}")
    return measured, failures


def sgd_flat_loss_measure(jobs):
    means = {lr: seed_stats(group, LOSS)[0] for lr, group in _by_lr(_sgd(jobs)).items()}
    finite = [m for m in means.values() if m == m]
    if not finite:
        raise NotEvaluable(f"no SGD job has a final {LOSS}")
    largest, best = max(means), min(finite)
    ratio = means[largest] / best
    failures = [] if ratio <= LOSS_RATIO else [
        f"at lr={largest:g} the loss is {means[largest]:.3g}, {ratio:.3g}x its best {best:.3g}"]
    return {"largest_lr": largest, "loss_at_largest_lr": means[largest], "best_loss": best,
            "ratio": ratio}, failures


def no_norm_diverges_measure(jobs):
    groups = _by_lr(need(where(jobs, "model.norm", "none"), "model.norm=none"))
    large = {lr: group for lr, group in groups.items() if lr >= LARGE_LR}
    if not large:
        raise NotEvaluable(f"the sweep has no LR >= {LARGE_LR:g}")
    measured, failures = {}, []
    for lr, group in large.items():
        diverged = sum(job.status == "diverged" for job in group)
        measured[f"lr={lr:g}"] = {"diverged": diverged, "jobs": len(group)}
        if diverged < len(group):
            failures.append(f"{len(group) - diverged} of {len(group)} trained at lr={lr:g}")
    return measured, failures


def loglog_fit(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of log y against log T over the points with T >= T_end / 2."""
    end = points[-1][0]
    half = [(math.log(t), math.log(v)) for t, v in points if t >= end / 2 and v > 0]
    if len(half) < 3:
        raise NotEvaluable(f"fewer than 3 measures of {MIN_GRAD_SQ} in the second half")
    xs, ys = zip(*half, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return (sum((x - mx) * (y - my) for x, y in half)
            / sum((x - mx) ** 2 for x in xs))


def rate(job, exponent: float) -> dict:
    """The job's fitted slope, and C = T^-exponent min_{t<T} ||grad F||^2 at its last T (the
    constant of the guide C T^exponent)."""
    points = job.points("T", MIN_GRAD_SQ)
    if not points:
        raise NotEvaluable(f"{job.path.name} has no {MIN_GRAD_SQ} measure")
    end, value = points[-1]
    return {"slope": loglog_fit(points), "C": value * end ** -exponent, "T": end}


def _rates(jobs, method: str) -> dict[float, dict]:
    """Per LR, the seed means of slope and C of the completed jobs of `method`; diverged
    jobs are counted."""
    exponent = RATES[method][0]
    out = {}
    for lr, group in _by_lr(need(where(jobs, "method", method), f"method={method}")).items():
        fits = [rate(job, exponent) for job in group if job.status == "completed"]
        out[lr] = {"slope": statistics.fmean(f["slope"] for f in fits) if fits else math.nan,
                   "C": statistics.fmean(f["C"] for f in fits) if fits else math.nan,
                   "diverged": len(group) - len(fits), "jobs": len(group)}
    return out


def best_gd_lr(jobs) -> float:
    """The LR of GD's lowest seed-mean final training loss."""
    losses = {lr: seed_stats(group, "train/epoch_loss")[0]
              for lr, group in _by_lr(need(where(jobs, "method", "gd"), "method=gd")).items()}
    finite = {lr: v for lr, v in losses.items() if math.isfinite(v)}
    if not finite:
        raise NotEvaluable("no GD job has a final training loss")
    return min(finite, key=finite.get)


def rate_measure(method: str):
    """method's slope is at most its threshold at every LR from GD's best one up; for GD, C
    varies far less than the LR over that range, and below it C x lr tells whether C grows
    like 1/lr (the theorem's constant)."""
    def measure(jobs):
        best, threshold = best_gd_lr(jobs), RATES[method][1]
        fits = _rates(jobs, method)
        covered = {lr: f for lr, f in fits.items() if lr >= best}
        failures = [f"lr={lr:g}: slope {f['slope']:.3g}" + (f" ({f['diverged']} diverged)"
                                                             if f["diverged"] else "")
                    for lr, f in covered.items()
                    if f["diverged"] or not f["slope"] <= threshold]
        if max(covered) < best * 10**DECADES_ABOVE_BEST:
            failures.append(f"GD's best LR {best:g} is less than {DECADES_ABOVE_BEST} decades "
                            f"below the largest {max(covered):g}")
        measured = {"best_gd_lr": best, "covered_lrs": sorted(covered),
                    "per_lr": {f"lr={lr:g}": {**f, "C_times_lr": f["C"] * lr}
                               for lr, f in fits.items()}}
        constants = [f["C"] for f in covered.values() if math.isfinite(f["C"])]
        if len(constants) > 1:
            measured["C_ratio"] = max(constants) / min(constants)
            measured["lr_ratio"] = max(covered) / min(covered)
        return measured, failures
    return measure


# A run that has not learnt: its final training loss is still above this fraction of its
# first. Runs that stay at chance end near ln 10 = 2.30, just below the 2.46 at which the
# digits' runs start, so "not below its first" depended on where the initial loss happens to
# lie; GD of the sweep ends below a tenth of its first, a run at chance above 0.9 of it.
NOT_LEARNT = 0.5


def projected_needs_tuning_measure(jobs):
    """Projected GD fails (diverges, or ends with a training loss above NOT_LEARNT times its
    first) at some LR of the sweep where GD does not."""
    def final_over_first(job) -> float:
        losses = [r["train/loss"] for r in job.records if "train/loss" in r]
        return losses[-1] / losses[0] if losses else math.nan

    def fails(job) -> bool:
        return job.status == "diverged" or not final_over_first(job) <= NOT_LEARNT
    projected = _by_lr(need(where(jobs, "method", "projected_gd"), "method=projected_gd"))
    plain = _by_lr(where(jobs, "method", "gd"))
    failed = {lr: sum(map(fails, group)) for lr, group in projected.items()}
    gd_failed = {lr: sum(map(fails, plain.get(lr, []))) for lr in projected}
    measured = {"projected_failed": {f"lr={lr:g}": n for lr, n in failed.items()},
                "gd_failed": {f"lr={lr:g}": n for lr, n in gd_failed.items()},
                "projected_final_over_first_loss": {
                    f"lr={lr:g}": [final_over_first(job) for job in group]
                    for lr, group in projected.items()}}
    where_only = [lr for lr in projected if failed[lr] and not gd_failed[lr] and lr in plain]
    measured["fails_where_gd_does_not"] = where_only
    return measured, [] if where_only else [
        "projected GD does not fail at any LR of the sweep where GD does not"]


def equilibrium_measure(jobs):
    failures = []
    finals = {}
    for lr, group in _by_lr(jobs).items():
        mean, _, n = seed_stats(completed(group, f"lr={lr:g}", failures), "si/effective_lr")
        if n:
            finals[f"lr={lr:g}"] = mean
    if len(finals) < 2:
        raise NotEvaluable("fewer than 2 curves have a final si/effective_lr")
    spread = max(finals.values()) / min(finals.values()) - 1.0
    if not spread <= EFFECTIVE_LR_SPREAD:
        failures.append(f"the final effective LRs differ by {spread:.3g} (max/min - 1)")
    return {"final_effective_lr": finals, "spread": spread}, failures


def toy_measure(case: str, settles: bool):
    """settles: the error falls below toy.threshold and never rises above it again; else
    it falls below and rises above it again (a run where it never falls below cannot tell
    slow convergence from none)."""
    def measure(jobs):
        measured, failures = {}, []
        for job in need(completed(jobs, "toy", failures), "completed toy"):
            threshold, summary = job.config.toy.threshold, job.summary
            settled_at = summary.get(f"{case}/settled_at")
            relapse = summary.get(f"{case}/max_error_after_settling")
            if relapse is None:
                raise NotEvaluable(f"{job.path.name}: no {case} result in its summary")
            label = f"toy.weight_decay={job.value('toy.weight_decay'):g}"
            measured[label] = {"final_error": summary[f"{case}/error"],
                               "settled_at_step": settled_at,
                               "max_error_after_settling": relapse, "threshold": threshold}
            if settled_at is None:
                if not settles:
                    raise NotEvaluable(f"{case}: the error never fell below {threshold:g} in "
                                       f"{job.summary.get('steps')} steps")
                failures.append(f"{label}: the error never fell below {threshold:g}")
            elif (relapse < threshold) != settles:
                failures.append(f"{label}: after settling the error reached {relapse:.3g}")
        return measured, failures
    return measure


_SETTLES = ("the 0-1 error falls below toy.threshold and stays below it (it settles at "
            "error 0)")
CHECKS = {
    "fig_auto_rate": (
        Check("sgd_never_diverges", "SGD with normalisation diverges at no LR of the sweep",
              "0 diverged", sgd_trains_measure),
        Check("sgd_loss_flat_in_lr", "SGD with normalisation: the seed-mean final training "
              "loss at the largest LR is within the threshold of its best over the sweep",
              f"<= {LOSS_RATIO:g}x the best", sgd_flat_loss_measure),
        Check("no_norm_diverges", "the net without normalisation diverges at the large LRs of "
              "the sweep", f"every seed at lr >= {LARGE_LR:g}", no_norm_diverges_measure),
    ),
    "fig_auto_rate_convergence": (
        Check("gd_rate", "full-batch GD: the slope of log min_{t<T} ||grad F||^2 against log T "
              "over the run's second half, at every LR from GD's best (lowest final training "
              "loss) up to the largest, which is at least 100x the best",
              f"<= {RATES['gd'][1]:g} (the theorem: -1)", rate_measure("gd")),
        Check("sgd_rate", "SGD: the same slope, ||grad F||^2 measured on the whole training "
              "set after each epoch, over the same LRs",
              f"<= {RATES['sgd'][1]:g} (the theorem: -0.5)", rate_measure("sgd")),
        Check("projected_gd_needs_tuning", "projected GD (no auto rate-tuning) fails at some "
              "LR of the sweep where GD does not: it diverges or ends with a training loss "
              f"above {NOT_LEARNT:g} times its first (it has not learnt)", ">= 1 LR",
              projected_needs_tuning_measure),
    ),
    "fig_equilibrium": (
        Check("same_effective_lr", "the runs that started at different LRs end at the same "
              "effective LR lr/||w||^2 (si/effective_lr, seed-mean final values)",
              f"max/min - 1 <= {EFFECTIVE_LR_SPREAD:g}", equilibrium_measure),
    ),
    "fig_toy": tuple(
        Check(f"{case}_{'settles' if settles else 'does_not_settle'}",
              f"{label}: " + (_SETTLES if settles else "the 0-1 error falls below "
                              "toy.threshold and rises above it again (it never settles)"),
              "toy.threshold", toy_measure(case, settles))
        for case, label, settles in zip(CASES, ("WD only", "BN only", "BN + WD"),
                                        (True, True, False), strict=True)),
}
