"""Claims of paper B's LR sweep, paper C's equilibrium and paper A's toy example."""

from src.figures.claims import Check, NotEvaluable, completed, need, seed_stats, where
from src.theory.toy import CASES

LOSS_RATIO = 2.0   # paper B: SGD's final training loss at the largest LR within 2x of its best
LARGE_LR = 10.0    # paper B (recalled, unconfirmed): without normalisation LRs >= 10 diverge
EFFECTIVE_LR_SPREAD = 0.05  # paper C: the curves' final effective LRs, max/min - 1
LOSS = "train/epoch_loss_last5"


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
