"""The loop of paper A's toy example: the three cases side by side, logged to the records."""

import math

from tqdm import tqdm

from src.theory.toy import CASES, gd_step, quadrature, zero_one_error


def run_toy(cfg, recorder) -> dict:
    """cfg: the `toy` config. Logs each case's 0-1 error (last and max over the window) and
    ||w|| every cfg.log_every steps; the summary has the final values and the largest error
    after the error first fell below cfg.threshold (0 for a case that settles)."""
    quad = quadrature(cfg.quadrature_points)
    state = {case: tuple(cfg.init) for case in CASES}
    window_max = dict.fromkeys(CASES, 0.0)
    relapse = dict.fromkeys(CASES, 0.0)
    settled_at = dict.fromkeys(CASES)
    for step in tqdm(range(cfg.steps), disable=None, dynamic_ncols=True, unit="step"):
        for case in CASES:
            a, b = state[case] = gd_step(*state[case], case, cfg.lr, cfg.weight_decay, quad)
            error = zero_one_error(a, b)
            window_max[case] = max(window_max[case], error)
            if settled_at[case] is None and error < cfg.threshold:
                settled_at[case] = step
            elif settled_at[case] is not None:
                relapse[case] = max(relapse[case], error)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            record = {"step": step + 1, "epoch": step + 1}  # one step = one pass over the data
            for case in CASES:
                a, b = state[case]
                record.update({f"{case}/error": zero_one_error(a, b),
                               f"{case}/error_max": window_max[case],
                               f"{case}/weight_norm": math.hypot(a, b)})
                window_max[case] = 0.0
            recorder.log(record)
    summary = {"status": "completed", "steps": cfg.steps}
    for case in CASES:
        a, b = state[case]
        summary.update({f"{case}/error": zero_one_error(a, b),
                        f"{case}/weight_norm": math.hypot(a, b),
                        f"{case}/settled_at": settled_at[case],
                        f"{case}/max_error_after_settling": relapse[case]})
    return summary
