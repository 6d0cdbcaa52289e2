"""The papers' figures, drawn from a grid's run folders (read through
src/tracking/run_format.py, never from W&B). draw(sweep_dir) writes figure.png, figure.pdf,
table.md and table.json into the grid's folder.

The machinery is shared: jobs.py reads the jobs, figure.py says what a figure is, claims.py
measures claims, drawing.py and tables.py write the outputs, registry.py finds a figure by
name. Each figure (panels, paper's numbers, claims and thresholds) is one module of
src/figures/gallery, imported here once so that it registers.
"""

from src.figures import gallery  # noqa: F401 -- registers every figure
from src.figures.drawing import draw
from src.figures.figure import curves
from src.figures.jobs import Job, find_grids, load_jobs, series, setting
from src.figures.registry import figure_of, get_figure
from src.figures.tables import claims

__all__ = ["Job", "claims", "curves", "draw", "figure_of", "find_grids", "get_figure",
           "load_jobs", "series", "setting"]
