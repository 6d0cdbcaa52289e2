"""Beyond the papers: the rotational equilibrium. Each run's measured angle per update against
Delta* = sqrt(2 eta lambda / (1 + gamma)), equal eta*lambda giving equal angles, the balance
across sets, the ExpLR twin's rotation, the relaxation after an LR division, and the
equilibrium norm against Wan et al.'s Thm 2 with the measured L."""

import math
import statistics

from src.figures.claims import Check, NotEvaluable, completed, need, where
from src.figures.figure import Figure, Panel
from src.figures.gallery.common import SCHEDULES
from src.figures.registry import register_figure
from src.theory.equilibrium import (
    equilibrium_norm4,
    gradient_memory,
    relaxation_steps,
    stationary_norm_sq,
    steps_after_division,
)

ANGLE_TOLERANCE = 0.10    # measured / predicted - 1, for runs of >= RELAXATIONS relaxation times
RELAXATIONS = 5
SAME_ANGLE = 0.05         # max / min - 1 of the runs that share eta*lambda
BALANCE = 0.20            # (max - min) / mean over the sets of their angles
TWIN = 0.05               # |ExpLR twin's angle / its source's - 1|
NORM_TOLERANCE = 0.10     # measured ||w||^4 / Thm 2's, mean over the sets, - 1
MEMORYLESS = 0.10         # |M - 1| within which the gradients are as Thm 2 takes them
REACHED = 0.95            # the new equilibrium is reached when the angle is 95% of it
PREDICTED, MEAN = "si/angular_update_predicted", "si/sets/angular_update_mean"


def label(job) -> str:
    return (f"{job.value('schedule.name')} lr={job.value('optimizer.lr'):g} "
            f"wd={job.value('optimizer.weight_decay'):g}")


def _records(job) -> list[dict]:
    found = [r for r in job.records if PREDICTED in r and MEAN in r]
    if len(found) < 6:
        raise NotEvaluable(f"{job.path.name} has too few records with {PREDICTED} and {MEAN}")
    return found


def last_phase(job) -> tuple[list[dict], int]:
    """The records after the last change of the prediction (an LR division), and its step."""
    records = _records(job)
    start = max((i for i in range(1, len(records))
                 if records[i][PREDICTED] != records[i - 1][PREDICTED]), default=0)
    return records[start:], int(records[start]["step"]) if start else 0


def equilibrium(job) -> dict:
    """The job's last third of its last phase: the measured angle (mean over sets and
    records), Delta*, the relaxation time and how many fit in the phase, each set's mean angle
    (and, with per-set records, its mean L and norm^4)."""
    phase, start = last_phase(job)
    tail = phase[len(phase) * 2 // 3:]
    predicted = tail[-1][PREDICTED]
    momentum = job.value("optimizer.momentum")
    intrinsic = predicted**2 * (1.0 + momentum) / 2.0
    tau = relaxation_steps(intrinsic, momentum)
    measured = statistics.fmean(r[MEAN] for r in tail)
    sets = sorted({k.split("/")[2] for k in tail[0] if k.startswith("si/set/")})
    per_set = {n: statistics.fmean(r[f"si/set/{n}/angular_update"] for r in tail) for n in sets}
    return {"measured": measured, "predicted": predicted, "ratio": measured / predicted,
            "relaxation_steps": tau, "phase_steps": int(phase[-1]["step"]) - start,
            "phase_start": start, "per_set": per_set, "tail": tail, "intrinsic_lr": intrinsic}


def _jobs(jobs, failures):
    return need(completed(jobs, "rotation", failures), "completed")


def angle_measure(jobs):
    measured, failures = {}, []
    for job in _jobs(jobs, failures):
        e = equilibrium(job)
        relaxations = e["phase_steps"] / e["relaxation_steps"]
        row = {k: e[k] for k in ("measured", "predicted", "ratio", "relaxation_steps")}
        row["relaxations"] = relaxations
        measured[label(job)] = row
        if relaxations < RELAXATIONS:
            row["decided"] = False
        elif abs(e["ratio"] - 1.0) > ANGLE_TOLERANCE:
            failures.append(f"{label(job)}: measured {e['measured']:.4g} rad, "
                            f"{e['ratio']:.3f}x Delta*")
    if not any(row.get("decided", True) for row in measured.values()):
        raise NotEvaluable(f"no run lasts {RELAXATIONS} relaxation times")
    return measured, failures


def same_angle_spread(jobs, equilibrium, label, group_of) -> tuple[dict, list[str]]:
    """The constant-LR runs grouped by group_of(job, its equilibrium), which names the
    eta*lambda they share: each group's angles (by label(job)) and their spread (max/min - 1).
    Shared with fig_rotation_optimizers, whose equilibrium, labels and groups are its own."""
    failures, groups = [], {}
    for job in where(_jobs(jobs, failures), "schedule.name", "constant"):
        e = equilibrium(job)
        groups.setdefault(group_of(job, e), {})[label(job)] = e["measured"]
    shared = {key: g for key, g in groups.items() if len(g) > 1}
    if not shared:
        raise NotEvaluable("no two constant-LR runs share eta*lambda")
    measured = {}
    for key, group in shared.items():
        spread = max(group.values()) / min(group.values()) - 1.0
        measured[key] = {"angles": group, "spread": spread}
        if spread > SAME_ANGLE:
            failures.append(f"{key}: the angles differ by {spread:.3g} (max/min - 1)")
    return measured, failures


def same_angle_measure(jobs):
    return same_angle_spread(jobs, equilibrium, label,
                             lambda job, e: f"lr*wd={e['intrinsic_lr']:.6g}")


def balance_measure(jobs):
    measured, failures = {}, []
    for job in _jobs(jobs, failures):
        per_set = equilibrium(job)["per_set"]
        if len(per_set) < 2:
            raise NotEvaluable(f"{job.path.name}: no per-set records (trainer.track_params=all)")
        values = list(per_set.values())
        spread = (max(values) - min(values)) / statistics.fmean(values)
        measured[label(job)] = {"sets": len(values), "spread": spread, "min": min(values),
                                "max": max(values)}
        if spread > BALANCE:
            failures.append(f"{label(job)}: the sets' angles spread by {spread:.3g} of their mean")
    return measured, failures


def twin_against_source(jobs, equilibrium, label) -> tuple[dict, list[str]]:
    """Each ExpLR run's angle over its source's: the constant-LR run of its optimizer, LR and
    weight decay."""
    failures = []
    done = _jobs(jobs, failures)
    twins = where(done, "schedule.name", "exp")
    if not twins:
        raise NotEvaluable("the grid has no ExpLR run")
    same = ("optimizer.name", "optimizer.lr", "optimizer.weight_decay")
    measured = {}
    for twin in twins:
        source = [j for j in where(done, "schedule.name", "constant")
                  if all(j.value(k) == twin.value(k) for k in same)]
        if not source:
            raise NotEvaluable(f"no constant-LR run with {label(twin)}'s optimizer, LR and "
                               "weight decay")
        a, b = equilibrium(twin)["measured"], equilibrium(source[0])["measured"]
        measured[label(twin)] = {"twin": a, "source": b, "ratio": a / b}
        if abs(a / b - 1.0) > TWIN:
            failures.append(f"{label(twin)}: its angle is {a / b:.3f}x its source's")
    return measured, failures


def twin_measure(jobs):
    return twin_against_source(jobs, equilibrium, label)


def relaxation_measure(jobs):
    failures = []
    decays = where(_jobs(jobs, failures), "schedule.name", "step")
    if not decays:
        raise NotEvaluable("the grid has no step-decay run")
    measured = {}
    for job in decays:
        phase, start = last_phase(job)
        if not start:
            raise NotEvaluable(f"{job.path.name}: its LR was never divided")
        e = equilibrium(job)
        k = 1.0 / job.value("schedule.factor")
        momentum = job.value("optimizer.momentum")
        target = REACHED * e["predicted"]
        reached = next((int(r["step"]) - start for r in phase if r[MEAN] >= target), None)
        bound = steps_after_division(k, e["intrinsic_lr"], momentum)
        quoted = 2.0 * bound  # log(k) (1 - gamma) / (2 eta' lambda), as Wan et al. state it
        measured[label(job)] = {"steps_to_95pct": reached, "phase_steps": e["phase_steps"],
                                "lower_bound": bound, "wan_cor_3_1": quoted,
                                "angle_right_after": phase[0][MEAN],
                                "old_angle_over_k": _before(job, start) / k}
        if reached is None and e["phase_steps"] < bound:
            raise NotEvaluable(f"{job.path.name}: its last phase is shorter than the bound")
        if reached is not None and reached < bound:
            failures.append(f"{label(job)}: reached the new equilibrium in {reached} updates, "
                            f"below the bound {bound:.0f}")
    return measured, failures


def _before(job, start: int) -> float:
    """The measured angle at the last record before the division."""
    return [r[MEAN] for r in _records(job) if r["step"] < start][-1]


def set_means(job, tail: list[dict], name: str) -> dict[str, float]:
    """A set's means over the records `tail`: ||w||^2, ||w||^4, L = ||w||^2 ||grad_w||^2,
    ||grad_w||^2 and ||v||^2 of its optimizer's momentum (recorded with
    trainer.track_params=all)."""
    key = f"si/set/{name}/"
    if not all(key + "momentum_sq" in r for r in tail):
        raise NotEvaluable(f"{job.path.name}: no momentum in its records "
                           "(trainer.track_params=all)")
    norm_sq = [r[key + "weight_norm"] ** 2 for r in tail]
    unit = [r[key + "sphere_grad_sq"] for r in tail]
    return {"norm_sq": statistics.fmean(norm_sq),
            "norm4": statistics.fmean(n * n for n in norm_sq),
            "unit_grad_sq": statistics.fmean(unit),
            "grad_sq": statistics.fmean(u / n for u, n in zip(unit, norm_sq, strict=True)),
            "momentum_sq": statistics.fmean(r[key + "momentum_sq"] for r in tail)}


def norm_rows(jobs) -> tuple[dict, list[str]]:
    """Each run's norm at equilibrium against Thm 2 (ratio: ||w||^4 over Thm 2's with the
    measured L, per set, then its mean, min and max over the sets), the gradients' memory M
    (Thm 2 takes M = 1), the ratio over M (1 - lr wd / (2 (1 + momentum))), Thm 2's form
    without its assumption, and the stationary balance ||w||^2 over lr (1 + momentum) ||v||^2 /
    (2 wd), 1 wherever the records sample a stationary norm. Means over the last third."""
    failures, rows = [], {}
    for job in _jobs(jobs, failures):
        if job.value("schedule.name") == "exp":
            continue  # the twin's weights grow by design: no equilibrium norm
        e = equilibrium(job)
        lr = e["intrinsic_lr"] / job.value("optimizer.weight_decay")
        wd, momentum = job.value("optimizer.weight_decay"), job.value("optimizer.momentum")
        own = 1.0 - lr * wd / (2.0 * (1.0 + momentum))
        ratios, memories, balances = [], [], []
        for name in e["per_set"]:
            m = set_means(job, e["tail"], name)
            ratios.append(m["norm4"] / equilibrium_norm4(m["unit_grad_sq"], lr, wd, momentum))
            memories.append(gradient_memory(m["momentum_sq"], m["grad_sq"], momentum))
            balances.append(m["norm_sq"] / stationary_norm_sq(m["momentum_sq"], lr, wd, momentum))
        if not ratios:
            raise NotEvaluable(f"{job.path.name}: no per-set records (trainer.track_params=all)")
        rows[label(job)] = {
            "mean_ratio": statistics.fmean(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "gradient_memory": statistics.fmean(memories),
            "ratio_over_memory": statistics.fmean(
                r / (m * own) for r, m in zip(ratios, memories, strict=True)),
            "stationary_balance": statistics.fmean(balances)}
    if not rows:
        raise NotEvaluable("the grid has no run with weight decay")
    return rows, failures


def _off(value: float, tolerance: float) -> bool:
    return not math.isfinite(value) or abs(value - 1.0) > tolerance


def thm2_measure(jobs):
    """Thm 2 where its assumption holds: the runs whose M is within MEMORYLESS of 1."""
    measured, failures = norm_rows(jobs)
    for name, row in measured.items():
        row["decided"] = not _off(row["gradient_memory"], MEMORYLESS)
        if row["decided"] and _off(row["mean_ratio"], NORM_TOLERANCE):
            failures.append(f"{name}: ||w||^4 is {row['mean_ratio']:.3f}x Thm 2's (mean over "
                            f"the sets) with gradients' memory {row['gradient_memory']:.3f}")
    if not any(row["decided"] for row in measured.values()):
        raise NotEvaluable("no run's gradients are uncorrelated across updates (M within "
                           f"{MEMORYLESS:.0%} of 1): Thm 2 itself is not tested")
    return measured, failures


def memory_measure(jobs):
    measured, failures = norm_rows(jobs)
    for name, row in measured.items():
        if _off(row["ratio_over_memory"], NORM_TOLERANCE):
            failures.append(f"{name}: ||w||^4 is {row['ratio_over_memory']:.3f}x Thm 2's times "
                            "M (1 - lr wd / (2 (1 + momentum))) (mean over the sets)")
    return measured, failures


@register_figure
def fig_rotational_equilibrium() -> Figure:
    return Figure(
        "Beyond the papers: every scale-invariant set turns by sqrt(2 lr wd / (1 + momentum)) "
        "per update",
        curve=lambda cfg: (f"{SCHEDULES[cfg.schedule.name]}, lr {cfg.optimizer.lr:g}, "
                           f"wd {cfg.optimizer.weight_decay:g}"),
        group_by=("schedule.name", "optimizer.lr", "optimizer.weight_decay"),
        facet="schedule.name",
        # the sets' min and max (rotational balance) are in the table: as lines they crowd it
        panels=(Panel("angle per update, mean over sets", (MEAN, PREDICTED), "radians",
                      log_y=True, x="step"),),
        final=("test/acc", MEAN),
        labels={MEAN: "measured", PREDICTED: "Delta*"},
        note="Wan et al. (NeurIPS 2021) and Kosson et al. (ICML 2024) measured this on "
             "ImageNet; the relaxation time here is derived (src/theory/equilibrium.py), half "
             "the one Wan et al. state.",
        checks=(
            Check("angle_matches_prediction", "each run's angle per update (mean over the sets "
                  "and the last third of its last phase) is Delta* = sqrt(2 lr wd / (1 + "
                  f"momentum)), for every run whose last phase lasts >= {RELAXATIONS} "
                  "relaxation times (1 - momentum) / (4 lr wd)", f"within {ANGLE_TOLERANCE:.0%}",
                  angle_measure, {"tolerance": ANGLE_TOLERANCE, "relaxations": RELAXATIONS}),
            Check("equal_intrinsic_lr_equal_angle", "constant-LR runs that share lr x wd turn "
                  "by the same angle", f"max/min - 1 <= {SAME_ANGLE:g}", same_angle_measure,
                  {"spread": SAME_ANGLE}),
            Check("rotational_balance", "every set turns by about the same angle (their means "
                  "over the last third)", f"(max - min) / mean <= {BALANCE:g}",
                  balance_measure, {"spread": BALANCE}),
            Check("twin_same_rotation", "the ExpLR twin (no weight decay) turns by its "
                  "source's angle", f"within {TWIN:.0%}", twin_measure, {"tolerance": TWIN}),
            Check("relaxation_after_division", "after the LR is divided by k the angle needs "
                  "at least log(k) (1 - momentum) / (4 lr' wd) updates (lr' the new LR) to "
                  f"reach {REACHED:.0%} of the new Delta* (steps_to_95pct: null when it does "
                  "not within the run, which the bound allows)", ">= the bound",
                  relaxation_measure, {"reached": REACHED}),
            Check("norm_matches_thm2", "||w||^4 of each set equals Thm 2's "
                  "L lr / (wd (1 - momentum) (2 - lr wd / (1 + momentum))) with the measured "
                  "L = ||w||^2 ||grad_w||^2 (means over the last third, the ratio's mean over "
                  "the sets), for every run whose gradients are as Thm 2 takes them, "
                  "uncorrelated across updates: their memory M = (1 - momentum^2) ||v||^2 / "
                  f"||grad_w||^2 from the momentum buffers within {MEMORYLESS:.0%} of 1 (the "
                  "other runs are measured, not judged)", f"within {NORM_TOLERANCE:.0%}",
                  thm2_measure, {"tolerance": NORM_TOLERANCE, "memory": MEMORYLESS}),
            Check("norm_matches_memory", "||w||^4 of each set equals Thm 2's times M (1 - lr "
                  "wd / (2 (1 + momentum))), the stationary norm without Thm 2's assumption, "
                  "for every run (ratio_over_memory, mean over the sets); beside it ||w||^2 "
                  "over lr (1 + momentum) ||v||^2 / (2 wd), 1 at any stationary norm",
                  f"within {NORM_TOLERANCE:.0%}", memory_measure,
                  {"tolerance": NORM_TOLERANCE}),
        ),
    )
