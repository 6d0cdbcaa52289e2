"""Paper B's rates: min over t < T of ||grad F||^2 falls as O~(1/T) for GD and O~(1/sqrt(T))
for SGD at any LR of the scale-invariant weights; projected GD has no such auto rate-tuning."""

import math
import statistics

from src.figures.claims import Check, NotEvaluable, by_lr, need, seed_stats, where
from src.figures.figure import Figure, Panel
from src.figures.jobs import MIN_GRAD_SQ
from src.figures.registry import register_figure

# The theorem's exponents of T, and the fitted log-log slope over the run's second half must
# reach: a log factor and a finite run leave room (-0.8 for -1, -0.4 for -0.5).
RATES = {"gd": (-1.0, -0.8), "sgd": (-0.5, -0.4)}
DECADES_ABOVE_BEST = 2  # the LRs the claims cover reach 100x GD's best LR at least
# A run that has not learnt ends with a training loss above this fraction of its first: a run
# at chance ends near ln 10 = 2.30 (10 classes), close to where a run starts, so "below its
# first loss" would depend on where the initial loss happens to lie.
NOT_LEARNT = 0.5


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
    for lr, group in by_lr(need(where(jobs, "method", method), f"method={method}")).items():
        fits = [rate(job, exponent) for job in group if job.status == "completed"]
        out[lr] = {"slope": statistics.fmean(f["slope"] for f in fits) if fits else math.nan,
                   "C": statistics.fmean(f["C"] for f in fits) if fits else math.nan,
                   "diverged": len(group) - len(fits), "jobs": len(group)}
    return out


def best_gd_lr(jobs) -> float:
    """The LR of GD's lowest seed-mean final training loss."""
    losses = {lr: seed_stats(group, "train/epoch_loss")[0]
              for lr, group in by_lr(need(where(jobs, "method", "gd"), "method=gd")).items()}
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


def projected_needs_tuning_measure(jobs):
    """Projected GD fails (diverges, or ends with a training loss above NOT_LEARNT times its
    first) at some LR of the sweep where GD does not."""
    def final_over_first(job) -> float:
        losses = [r["train/loss"] for r in job.records if "train/loss" in r]
        return losses[-1] / losses[0] if losses else math.nan

    def fails(job) -> bool:
        return job.status == "diverged" or not final_over_first(job) <= NOT_LEARNT
    projected = by_lr(need(where(jobs, "method", "projected_gd"), "method=projected_gd"))
    plain = by_lr(where(jobs, "method", "gd"))
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


def _rate_check(method: str, statement: str) -> Check:
    theorem, slope = RATES[method]
    return Check(f"{method}_rate", statement, f"<= {slope:g} (the theorem: {theorem:g})",
                 rate_measure(method), {"slope": slope, "theorem_slope": theorem,
                                        "decades_above_best": DECADES_ABOVE_BEST})


@register_figure
def fig_auto_rate_convergence() -> Figure:
    return Figure(
        "Paper B's rates: GD at O(1/T), SGD at O(1/sqrt(T)), at any LR of the scale-invariant "
        "weights",
        curve=lambda cfg: f"lr={cfg.optimizer.lr:g}", group_by=("optimizer.lr",),
        facet="method",
        panels=(Panel("min over t < T of ||grad F||^2 on spheres x R^d", (MIN_GRAD_SQ,),
                      "min ||grad F||^2", log_y=True, x="T", log_x=True, guides=(-1.0, -0.5)),),
        final=(MIN_GRAD_SQ, "train/epoch_loss", "test/acc"),
        note="Paper B ran SGD only, on CIFAR-10, and states no lengths; its rates are upper "
             "bounds (up to log factors), so steeper slopes agree with them.",
        checks=(
            _rate_check("gd", "full-batch GD: the slope of log min_{t<T} ||grad F||^2 against "
                        "log T over the run's second half, at every LR from GD's best (lowest "
                        "final training loss) up to the largest, which is at least 100x the "
                        "best"),
            _rate_check("sgd", "SGD: the same slope, ||grad F||^2 measured on the whole "
                        "training set after each epoch, over the same LRs"),
            Check("projected_gd_needs_tuning", "projected GD (no auto rate-tuning) fails at "
                  "some LR of the sweep where GD does not: it diverges or ends with a training "
                  f"loss above {NOT_LEARNT:g} times its first (it has not learnt)", ">= 1 LR",
                  projected_needs_tuning_measure, {"not_learnt": NOT_LEARNT, "failing_lrs": 1}),
        ),
    )
