"""python -m src.figures SWEEP_DIR [SWEEP_DIR ...] | --all ROOT: redraw figures from records.
python -m src.figures --docs DOCS_DIR [SWEEP_DIR ...]: the figure pages of the docs.

SWEEP_DIR is a figure grid's folder (outputs/multirun/fig_*/<launch>/); --all ROOT redraws
every figure grid found under ROOT (e.g. outputs/). --docs DOCS_DIR (docs/figures) first copies
each SWEEP_DIR's figure.png and table.json there as <figure>.png and <figure>.json, then writes
every figure's page, the index and the README's figure table from the .json files it holds
(src/figures/docs.py); without SWEEP_DIR it only writes them again.
"""

import argparse
import sys
from pathlib import Path

from src.errors import UserError
from src.figures import draw, find_grids


def redraw(sweep_dirs: list[Path], root: Path | None) -> int:
    grids, failed = sweep_dirs, 0
    if root:
        if not root.is_dir():
            raise UserError(f"{root} is not a folder")
        grids = find_grids(root)
        if not grids:
            raise UserError(f"no figure grid under {root} (run an experiment=fig_* first)")
    for grid in grids:
        try:
            print(f"{grid}: " + ", ".join(p.name for p in draw(grid)))
        except UserError as e:
            if not root:
                raise
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.figures", description=__doc__.split(
        "\n")[0].split(": ", 1)[1])
    parser.add_argument("sweep_dirs", nargs="*", type=Path, metavar="SWEEP_DIR",
                        help="a figure grid's folder")
    parser.add_argument("--all", type=Path, metavar="ROOT",
                        help="redraw every figure grid under ROOT")
    parser.add_argument("--docs", type=Path, metavar="DOCS_DIR",
                        help="copy the grids' figures and tables into DOCS_DIR (docs/figures) "
                        "and write the figure pages from it")
    args = parser.parse_args(argv)
    if args.docs and args.all:
        parser.error("--docs takes grid folders (SWEEP_DIR ...), not --all")
    if not args.docs and bool(args.sweep_dirs) == bool(args.all):
        parser.error("give SWEEP_DIR(s) or --all ROOT")
    try:
        if args.docs:
            from src.figures.docs import render_docs

            for path in render_docs(args.docs, args.sweep_dirs):
                print(f"wrote {path}")
            return 0
        return redraw(args.sweep_dirs, args.all)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
