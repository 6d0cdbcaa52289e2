"""Paper A's equivalence as what it is: each twin beside its source, same seed and batches,
in float64 and float32. The gap of their training losses starts at round-off and grows at the
rate the dynamics amplify round-off; float64 keeps it small for longer than float32."""

from src.figures.claims import Check, NotEvaluable, completed, need, where
from src.figures.figure import Figure, Panel
from src.figures.gallery.common import SCHEDULES
from src.figures.registry import register_figure

ROUND_OFF = 1e-12   # float64's loss gap over the first FIRST_UPDATES updates stays below it
FIRST_UPDATES = 10
PARTED = 1e-3       # the gap at which two runs count as parted
GAP = "gap/loss"


def label(cfg) -> str:
    return f"{SCHEDULES[cfg.schedule.name]}, {cfg.trainer.precision}"


def gaps(job) -> list[tuple[int, float]]:
    found = [(int(r["step"]), float(r[GAP])) for r in job.records if GAP in r]
    if not found:
        raise NotEvaluable(f"{job.path.name} has no {GAP} records (task=twin_gap)")
    return found


def parted_at(job) -> int | None:
    """The first update whose loss gap exceeds PARTED (None: never within the run)."""
    return next((step for step, gap in gaps(job) if gap > PARTED), None)


def round_off_measure(jobs):
    failures, measured = [], {}
    for job in need(where(completed(jobs, "twin", failures), "trainer.precision", "fp64"),
                    "float64"):
        first = [gap for step, gap in gaps(job) if step < FIRST_UPDATES]
        if len(first) < FIRST_UPDATES:
            raise NotEvaluable(f"{job.path.name} has fewer than {FIRST_UPDATES} updates")
        within = next((step for step, gap in gaps(job) if gap > ROUND_OFF), None)
        measured[label(job.config)] = {"largest_gap": max(first), "updates_within": within}
        if max(first) > ROUND_OFF:
            failures.append(f"{label(job.config)}: {max(first):.3g} within the first "
                            f"{FIRST_UPDATES} updates")
    return measured, failures


def parting_measure(jobs):
    failures, measured = [], {}
    done = completed(jobs, "twin", failures)
    for name in dict.fromkeys(job.value("schedule.name") for job in done):
        found = {p: where(where(done, "schedule.name", name), "trainer.precision", p)
                 for p in ("fp64", "fp32")}
        if not all(found.values()):
            raise NotEvaluable(f"schedule={name} lacks a float64 or a float32 run")
        steps = {p: parted_at(js[0]) for p, js in found.items()}
        measured[SCHEDULES[name]] = {f"{p}_parts_at": s for p, s in steps.items()}
        if steps["fp32"] is None:
            raise NotEvaluable(f"{SCHEDULES[name]}: float32's gap stays below {PARTED:g}")
        if steps["fp64"] is not None and steps["fp64"] <= steps["fp32"]:
            failures.append(f"{SCHEDULES[name]}: float64 parts at update {steps['fp64']}, "
                            f"float32 at {steps['fp32']}")
    return measured, failures


@register_figure
def fig_twin_divergence() -> Figure:
    return Figure(
        "Paper A's twins beside their sources, one seed: exact, then round-off amplified",
        curve=label, group_by=("schedule.name", "trainer.precision"),
        facet="schedule.name",
        panels=(Panel("relative gap of the training losses", (GAP,), "|L~ - L| / L",
                      log_y=True, x="step"),
                Panel("relative gap of the weights (c_t theta_t)", ("gap/weights",),
                      "||theta~ - c theta|| / ||c theta||", log_y=True, x="step")),
        final=(GAP, "gap/weights"),  # at the last update
        note="In exact arithmetic each twin computes its source's network functions at every "
             "update (python -m src.verify checks it to round-off). In a computer the two "
             "runs differ by round-off from the first update, and training amplifies any "
             "difference: the gap grows until the runs are as far apart as two seeds.",
        checks=(
            Check("float64_round_off", f"in float64 the relative gap of the training losses "
                  f"stays at round-off over the first {FIRST_UPDATES} updates (updates_within: "
                  f"the first update whose gap exceeds {ROUND_OFF:g})", f"<= {ROUND_OFF:g}",
                  round_off_measure, {"round_off": ROUND_OFF, "updates": FIRST_UPDATES}),
            Check("float64_parts_later", f"for each twin the float64 runs' loss gap passes "
                  f"{PARTED:g} later than the float32 runs' (the update each passes it; null: "
                  "not within the run)", "later", parting_measure, {"parted": PARTED}),
        ),
    )
