"""python -m src.figures SWEEP_DIR [SWEEP_DIR ...] | --all ROOT: redraw figures from records.

SWEEP_DIR is a figure grid's folder (outputs/multirun/fig_*/<launch>/); --all ROOT redraws
every figure grid found under ROOT (e.g. outputs/).
"""

import argparse
import sys
from pathlib import Path

from src.errors import UserError
from src.figures import draw, find_grids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.figures", description=__doc__.split(
        "\n")[0].split(": ", 1)[1])
    parser.add_argument("sweep_dirs", nargs="*", type=Path, metavar="SWEEP_DIR",
                        help="a figure grid's folder")
    parser.add_argument("--all", type=Path, metavar="ROOT",
                        help="redraw every figure grid under ROOT")
    args = parser.parse_args(argv)
    if bool(args.sweep_dirs) == bool(args.all):
        parser.error("give SWEEP_DIR(s) or --all ROOT")
    try:
        grids = args.sweep_dirs
        if args.all:
            if not args.all.is_dir():
                raise UserError(f"{args.all} is not a folder")
            grids = find_grids(args.all)
            if not grids:
                raise UserError(f"no figure grid under {args.all} (run an experiment=fig_* first)")
        failed = 0
        for grid in grids:
            try:
                print(f"{grid}: " + ", ".join(p.name for p in draw(grid)))
            except UserError as e:
                if not args.all:
                    raise
                print(f"error: {e}", file=sys.stderr)
                failed += 1
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
