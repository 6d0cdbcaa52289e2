"""Paper B's LR sweep: with normalisation SGD trains at every LR of the scale-invariant
weights; without it, or projected to the sphere, it does not."""

from src.figures.claims import Check, NotEvaluable, by_lr, need, seed_stats, where
from src.figures.figure import Figure, Panel
from src.figures.registry import register_figure

LOSS_RATIO = 2.0   # SGD's final training loss at the largest LR within 2x of its best
LARGE_LR = 10.0    # recalled, unconfirmed: without normalisation LRs >= 10 diverge
LOSS = "train/epoch_loss_last5"
CURVES = {"bn": "SGD", "none": "no normalisation"}


def _sgd(jobs):
    """Plain SGD on the normalised net: not projected, normalisation on."""
    return need([job for job in jobs if job.value("model.norm") != "none"
                 and not job.value("optimizer.projected")], "SGD with normalisation")


def sgd_trains_measure(jobs):
    measured, failures = {}, []
    for lr, group in by_lr(_sgd(jobs)).items():
        diverged = sum(job.status == "diverged" for job in group)
        measured[f"lr={lr:g}"] = {"diverged": diverged, "jobs": len(group)}
        if diverged:
            failures.append(f"{diverged} of {len(group)} diverged at lr={lr:g}")
    return measured, failures


def flat_loss_measure(jobs):
    means = {lr: seed_stats(group, LOSS)[0] for lr, group in by_lr(_sgd(jobs)).items()}
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
    groups = by_lr(need(where(jobs, "model.norm", "none"), "model.norm=none"))
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


@register_figure
def fig_auto_rate() -> Figure:
    return Figure(
        "Paper B: the LR of scale-invariant weights needs no tuning",
        curve=lambda cfg: ("projected SGD" if cfg.optimizer.projected
                           else CURVES.get(cfg.model.norm, cfg.model.norm)),
        group_by=("model.norm", "optimizer.projected"),
        sweep="optimizer.lr",
        panels=(Panel("training loss (mean of the last 5 epochs)", (LOSS,), "training loss",
                      log_y=True),
                Panel("test accuracy", ("test/acc",), "test accuracy")),
        final=(LOSS, "test/acc"),
        note="Recalled, not confirmed: SGD with BN trains at every LR of the sweep; projected "
             "SGD and the net without BN fail at large LRs (>= 10).",
        checks=(
            Check("sgd_never_diverges", "SGD with normalisation diverges at no LR of the sweep",
                  "0 diverged", sgd_trains_measure, {"diverged": 0}),
            Check("sgd_loss_flat_in_lr", "SGD with normalisation: the seed-mean final training "
                  "loss at the largest LR is within the threshold of its best over the sweep",
                  f"<= {LOSS_RATIO:g}x the best", flat_loss_measure,
                  {"loss_ratio": LOSS_RATIO}),
            Check("no_norm_diverges", "the net without normalisation diverges at the large LRs "
                  "of the sweep", f"every seed at lr >= {LARGE_LR:g}", no_norm_diverges_measure,
                  {"large_lr": LARGE_LR}),
        ),
    )
