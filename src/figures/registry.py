"""The figures by name, as conf/experiment/fig_*.yaml names them (`figure: <name>`).

A module of src/figures/gallery registers each of its figures with @register_figure on a
function that takes no argument and returns the Figure; the function's name is the figure's.
src/figures imports the whole gallery once, so every figure is known before one is looked up.
"""

from collections.abc import Callable
from pathlib import Path

from src.errors import UserError
from src.figures.figure import Figure
from src.figures.jobs import Job
from src.tracking import run_format

FIGURES: dict[str, Callable[[], Figure]] = {}


def register_figure(build: Callable[[], Figure]) -> Callable[[], Figure]:
    name = build.__name__
    if name in FIGURES:
        raise ValueError(f"figure {name!r} is registered twice")
    FIGURES[name] = build
    return build


def names() -> list[str]:
    return sorted(FIGURES)


def get_figure(name: str) -> Figure:
    if name not in FIGURES:
        raise UserError(f"no figure named {name!r}; known: {', '.join(names())}")
    return FIGURES[name]()


def figure_of(jobs: list[Job], sweep_dir: Path) -> tuple[str, Figure]:
    """The name and figure of a grid's jobs (config key `figure`)."""
    found = {job.config.get("figure") for job in jobs}
    if not jobs or found == {None}:
        raise UserError(f"{sweep_dir} holds no job of a figure grid (folders with a "
                        f"{run_format.CONFIG} from an experiment=fig_* run)")
    if len(found) > 1:
        raise UserError(f"{sweep_dir} mixes jobs of several figures: {sorted(map(str, found))}")
    name = found.pop()
    try:
        return name, get_figure(name)
    except UserError as e:
        raise UserError(f"{sweep_dir}: {e}") from None
