"""Paper A's toy example: weight decay only, BN only and BN + weight decay."""

from src.figures.claims import Check, NotEvaluable, completed, need
from src.figures.figure import Figure, Panel
from src.figures.registry import register_figure
from src.theory.toy import CASES

SETTLES = ("the 0-1 error falls below toy.threshold and stays below it (it settles at "
           "error 0)")
RELAPSES = "the 0-1 error falls below toy.threshold and rises above it again (it never settles)"


def settling_measure(case: str, settles: bool):
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


@register_figure
def fig_toy() -> Figure:
    # the threshold is the run's config (toy.threshold): measured, not a number of the claim
    checks = tuple(
        Check(f"{case}_{'settles' if settles else 'does_not_settle'}",
              f"{label}: " + (SETTLES if settles else RELAPSES), "toy.threshold",
              settling_measure(case, settles))
        for case, label, settles in zip(CASES, ("WD only", "BN only", "BN + WD"),
                                        (True, True, False), strict=True))
    return Figure(
        "Paper A's toy example: WD only, BN only, BN + WD",
        curve=lambda cfg: "toy", group_by=(),
        panels=(Panel("0-1 error (max over each window)",
                      tuple(f"{c}/error_max" for c in CASES), "0-1 error", x="step"),
                Panel("||w||", tuple(f"{c}/weight_norm" for c in CASES), "||w||",
                      log_y=True, x="step")),
        final=(*(f"{c}/error" for c in CASES),
               *(f"{c}/max_error_after_settling" for c in CASES)),
        labels={f"{case}/{k}": case.replace("_", " ") for case in CASES
                for k in ("error_max", "weight_norm")},
        note="Confirmed claim (abstract): WD alone and BN alone reach zero error; BN + WD "
             "does not converge. The paper's constants are not known to us.",
        checks=checks,
    )
